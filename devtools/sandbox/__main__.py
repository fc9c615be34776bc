"""Run the platform sandbox on its own:
`python -m devtools.sandbox [--port 8025] [--real-limits] [--latency 0.2]`."""

from __future__ import annotations

import argparse
import threading

from devtools.sandbox.server import Sandbox


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Le piattaforme social finte su 127.0.0.1, per provare Banditore."
    )
    parser.add_argument("--port", type=int, default=8025, help="porta (0: una libera)")
    parser.add_argument(
        "--real-limits", action="store_true", help="applica i limiti di frequenza delle piattaforme vere"
    )
    parser.add_argument(
        "--latency", type=float, default=0.0, help="secondi di ritardo di ogni risposta delle piattaforme"
    )
    args = parser.parse_args(argv)
    with Sandbox(port=args.port, enforce_rate_limits=args.real_limits, latency=args.latency) as sandbox:
        print(f"Sandbox in ascolto su {sandbox.url}/ (Ctrl-C per fermarla)")
        for platform, fake in sandbox.fakes.items():
            # The config field to point at the fake (api_base, instance, service, homeserver; for
            # Slack and Discord the webhook URL itself, under this base).
            print(f"  {fake.title:<10} {sandbox.base_for(platform)}")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("Sandbox fermata.")


if __name__ == "__main__":
    main()
