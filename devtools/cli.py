"""`banditore`: the operator's command line (dev-only; never packaged into Lambda).

  banditore run                      the local stack with the sample config, until Ctrl-C
  banditore demo                     one pass end to end on the samples, then a summary
  banditore config check FILE        validate a config file (exit 2 with file/field errors)
  banditore preview FEED [--config F] [--tenant T]   what each channel would get, as JSON
  banditore dlq redrive [--lane L]   move failed deliveries from a DLQ back to their queue
  banditore channels [--check]       each channel's health and token expiry (exit 1 if any is broken)
  banditore webhooks [--register]    each inbox channel's webhook at its platform (exit 1 if any is wrong)

Console text is Italian (the people using it are the comune's staff); logs stay English.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from devtools import commands

ROOT = Path(__file__).resolve().parent.parent
DEMO_CONFIG = ROOT / "config" / "demo.yaml"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="banditore", description="Banditore: il banditore del comune, in locale."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="avvia lo stack locale (fino a Ctrl-C)")
    run.add_argument("--config", type=Path, default=DEMO_CONFIG)
    run.add_argument("--poll-every", type=float, default=60.0, help="secondi tra due letture dei feed")
    run.add_argument("--api-port", type=int, default=8000)
    run.add_argument("--state-dir", type=Path, default=commands.STATE_DIR, help="dove conservare lo stato")
    run.set_defaults(handler=commands.run)

    demo = sub.add_parser("demo", help="un giro completo sui campioni, poi il riepilogo")
    demo.add_argument("--config", type=Path, default=DEMO_CONFIG)
    demo.add_argument("--fresh", action="store_true", help="dimentica lo stato delle esecuzioni precedenti")
    demo.add_argument("--state-dir", type=Path, default=commands.STATE_DIR, help="dove conservare lo stato")
    demo.set_defaults(handler=commands.demo)

    config = sub.add_parser("config", help="configurazione")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    check = config_sub.add_parser("check", help="valida un file di configurazione")
    check.add_argument("file", type=Path)
    check.set_defaults(handler=commands.config_check)

    preview = sub.add_parser("preview", help="mostra in JSON cosa riceverebbe ogni canale, senza pubblicare")
    preview.add_argument("feed", help="file o URL di un feed RSS/Atom")
    preview.add_argument("--config", type=Path)
    preview.add_argument("--tenant")
    preview.set_defaults(handler=commands.preview)

    dlq = sub.add_parser("dlq", help="code dei messaggi falliti")
    dlq_sub = dlq.add_subparsers(dest="dlq_command", required=True)
    redrive = dlq_sub.add_parser("redrive", help="rimette in coda le consegne fallite")
    redrive.add_argument("--lane", choices=["normal", "urgent", "inbox", "all"], default="all")
    _on_a_local_stack(redrive)
    redrive.set_defaults(handler=commands.dlq_redrive)

    channels = sub.add_parser("channels", help="stato di salute dei canali e scadenza dei token")
    channels.add_argument(
        "--check", action="store_true", help="verifica adesso ogni canale sulla piattaforma"
    )
    _on_a_local_stack(channels)
    channels.set_defaults(handler=commands.channels)

    webhooks = sub.add_parser("webhooks", help="webhook dei canali con la casella dei cittadini")
    webhooks.add_argument(
        "--register", action="store_true", help="registra presso la piattaforma i webhook mancanti"
    )
    _on_a_local_stack(webhooks)
    webhooks.set_defaults(handler=commands.webhooks)
    return parser


def _on_a_local_stack(command: argparse.ArgumentParser) -> None:
    """`--local`: the command talks to the stack `banditore run` started (its state folder)."""
    local_help = "usa lo stack locale avviato con `banditore run`"
    command.add_argument("--local", action="store_true", help=local_help)
    command.add_argument("--state-dir", type=Path, default=commands.STATE_DIR, help=argparse.SUPPRESS)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        print("\nInterrotto.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
