"""What each `banditore` sub-command does. Console text in Italian, for the comune's staff."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from chalicelib.config.loader import ConfigError, load_config
from devtools.stack import ROOT, LocalStack

STATE_DIR = ROOT / ".banditore"
ENV_FILE = "env.json"  # in the state folder while `banditore run` is up: how to reach its AWS
EXIT_INVALID = 2
ALERT_POLL_SECONDS = 15


def config_check(args: argparse.Namespace) -> int:
    try:
        config = load_config(str(args.file))
    except ConfigError as error:
        count = len(error.problems)
        print(f"Configurazione non valida ({count} {'errore' if count == 1 else 'errori'}):", file=sys.stderr)
        print(str(error), file=sys.stderr)
        return EXIT_INVALID
    sources = sum(len(t.sources) for t in config.tenants)
    channels = sum(len(t.channels) for t in config.tenants)
    print(f"{args.file}: valida — {len(config.tenants)} enti, {sources} fonti, {channels} canali.")
    return 0


def preview(args: argparse.Namespace) -> int:
    from chalicelib.alerts.errors import AlertError
    from chalicelib.sources.errors import FeedError
    from devtools.preview import build_preview

    try:
        document = build_preview(args.feed, args.config, args.tenant)
    except ConfigError as error:
        print(str(error), file=sys.stderr)
        return EXIT_INVALID
    except KeyError as error:
        print(f"Ente sconosciuto: {error}", file=sys.stderr)
        return EXIT_INVALID
    except (FeedError, AlertError, OSError) as error:
        print(f"{args.feed}: feed non leggibile: {error}", file=sys.stderr)
        return 1
    json.dump(document, sys.stdout, ensure_ascii=False, indent=2)
    print()
    return 0


def demo(args: argparse.Namespace) -> int:
    if not _config_ok(args.config):
        return EXIT_INVALID
    if args.fresh:
        shutil.rmtree(args.state_dir, ignore_errors=True)
    stack = LocalStack(args.config, state_dir=args.state_dir).start()
    try:
        print("Banditore — demo sullo stack locale (nessun account AWS, nessuna rete).")
        _print_sandboxed(stack)
        result = stack.poll()
        stack.drain()
        return _print_summary(stack, result)
    finally:
        stack.stop()


def run(args: argparse.Namespace) -> int:
    if not _config_ok(args.config):
        return EXIT_INVALID
    stack = LocalStack(args.config, state_dir=args.state_dir, api_port=args.api_port).start(serve_api=True)
    env_file = args.state_dir / ENV_FILE
    env_file.write_text(json.dumps(_stack_env(stack)), encoding="utf-8")
    try:
        print("Banditore è in esecuzione sullo stack locale. Ctrl-C per fermarlo.")
        print(f"  API locale:       {stack.api_url}/health")
        print(f"  Sandbox (post):   {stack.sandbox.url}/")
        print(f"  Log delle Lambda: {args.state_dir / 'lambda.log'}")
        _print_dev_tokens(stack)
        _print_sandboxed(stack)
        _serve(stack, poll_every=args.poll_every)
    except KeyboardInterrupt:
        print("\nArresto in corso: lo stato viene salvato in", args.state_dir)
    finally:
        env_file.unlink(missing_ok=True)
        stack.stop()
    return 0


def dlq_redrive(args: argparse.Namespace) -> int:
    from devtools.dlq import redrive
    from infra.resources import QUEUES

    if args.local and not _use_local_stack(args.state_dir):
        return 1
    env_names = {spec.lane: spec.url_env for spec in QUEUES}
    lanes = list(env_names) if args.lane == "all" else [args.lane]
    missing = [env_names[lane] for lane in lanes if not os.environ.get(env_names[lane])]
    if missing:
        print(f"Imposta {', '.join(missing)} (URL delle code), oppure usa --local.", file=sys.stderr)
        return EXIT_INVALID
    failed = 0
    for lane in lanes:
        result = redrive(lane, os.environ[env_names[lane]])
        failed += result.failed
        print(f"Coda {lane}: {result.moved} consegne rimesse in coda, {result.failed} non spostate.")
    return 1 if failed else 0


def channels(args: argparse.Namespace) -> int:
    """Each configured channel's recorded health (or a fresh check with --check) and token expiry;
    exit 1 when any channel is unhealthy, so scripts and cron can page on it."""
    from chalicelib.channel_checks import check_channels
    from chalicelib.clock import utcnow
    from chalicelib.config.loader import current_config
    from devtools.health_table import print_health

    if args.local and not _use_local_stack(args.state_dir):
        return 1
    missing = [name for name in ("BANDITORE_TABLE", "BANDITORE_CONFIG") if not os.environ.get(name)]
    if missing:
        print(f"Imposta {', '.join(missing)}, oppure usa --local.", file=sys.stderr)
        return EXIT_INVALID
    config = current_config()
    if args.check:
        check_channels(config, utcnow(), force=True)
    return print_health(config, utcnow())


def webhooks(args: argparse.Namespace) -> int:
    """Where each inbox channel's platform sends citizens' messages (registering the missing ones
    with --register); exit 1 when any channel's messages may not be arriving."""
    from chalicelib.clock import utcnow
    from chalicelib.config.loader import current_config
    from devtools.webhook_table import print_webhooks

    if args.local and not _use_local_stack(args.state_dir):
        return 1
    if not os.environ.get("BANDITORE_CONFIG"):
        print("Imposta BANDITORE_CONFIG, oppure usa --local.", file=sys.stderr)
        return EXIT_INVALID
    return print_webhooks(current_config(), utcnow(), register=args.register)


def _use_local_stack(state_dir: Path) -> bool:
    """Point this process at the AWS, config and secrets of the running `banditore run`."""
    env_file = state_dir / ENV_FILE
    if not env_file.is_file():
        print("Nessuno stack locale in esecuzione (avvialo con `banditore run`).", file=sys.stderr)
        return False
    os.environ.update(json.loads(env_file.read_text(encoding="utf-8")))
    return True


def _config_ok(path: Path) -> bool:
    try:
        load_config(str(path))
    except ConfigError as error:
        print(f"Configurazione non valida:\n{error}", file=sys.stderr)
        return False
    return True


def _serve(stack: LocalStack, *, poll_every: float) -> None:
    next_poll = next_alerts = next_housekeeping = 0.0
    while True:
        now = time.monotonic()
        if now >= next_alerts:
            stack.poll_alerts()
            next_alerts = now + ALERT_POLL_SECONDS
        if now >= next_poll:
            result = stack.poll()
            new = sum(s.get("new", 0) for s in result.get("sources", []))
            if new:
                print(f"{time.strftime('%H:%M:%S')} nuovi annunci: {new}")
            next_poll = now + poll_every
        if now >= next_housekeeping:
            stack.housekeeping()
            stack.renew_websub()
            stack.check_channels()
            stack.check_inbox_sla()
            stack.poll_mentions()
            next_housekeeping = now + 300
        if not stack.pump_once():
            time.sleep(0.5)


def _stack_env(stack: LocalStack) -> dict[str, str]:
    names = (
        "BANDITORE_WEBSUB_CALLBACK_URL",  # the public base `banditore webhooks --local` registers
        "AWS_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_DEFAULT_REGION",
        "BANDITORE_CONFIG",
        "BANDITORE_SECRETS_FILE",
        "BANDITORE_MEDIA_ALLOW_PRIVATE",
    )
    # Where `python -m devtools.sandbox.citizens` finds this run's API and platform sandbox.
    urls = {"BANDITORE_API_URL": stack.api_url or "", "BANDITORE_SANDBOX_URL": stack.sandbox.url}
    return {name: os.environ[name] for name in names} | stack.resources.env() | urls


def _print_dev_tokens(stack: LocalStack) -> None:
    """The staff API's dev tokens of this run (new at every start; docs in openapi/inbox.yaml)."""
    print(f"  Inbox (staff):    {stack.api_url}/inbox/<ente>/conversations")
    print('                    con l\'header "Authorization: Bearer <token>"; token di questa esecuzione:')
    for scope, token in stack.dev_tokens.items():
        print(f"    {'tutti gli enti' if scope == '*' else scope}: {token}")


def _print_sandboxed(stack: LocalStack) -> None:
    if stack.sandboxed:
        print(f"Canali sulla sandbox (nessun token reale configurato): {', '.join(stack.sandboxed)}")


_SOURCE_STATUS = {
    "polled": "letto",
    "unchanged": "invariato (304)",
    "not_due": "letto da poco, non riletto",
    "deferred": "rimandato al prossimo giro (tempo esaurito)",
    "error": "in errore",
}
_SKIP_REASON = {"first_run": "storici", "too_old": "troppo vecchi", "deferred": "al prossimo giro"}


def _print_summary(stack: LocalStack, result: dict[str, Any]) -> int:
    from chalicelib.storage.deliveries import deliveries_of

    sources = result.get("sources", [])
    announcements = [(s["tenant"], a) for s in sources for a in s.get("announcements", [])]
    for source in sources:
        status = _SOURCE_STATUS.get(source["status"], source["status"])
        skipped = ", ".join(f"{n} {_SKIP_REASON.get(r, r)}" for r, n in source.get("skipped", {}).items())
        detail = (
            f" ({source['reason']})" if source.get("reason") else f" — scartati: {skipped}" if skipped else ""
        )
        print(f"  {source['tenant']}/{source['source']}: {status}, {source.get('new', 0)} nuovi{detail}")
    if not announcements:
        print("Niente di nuovo da pubblicare: nessun elemento nuovo nei feed.")
        return 0
    print(f"Nuovi annunci: {len(announcements)}. Pubblicato:")
    problems = 0
    for tenant, announcement_id in announcements:
        for d in deliveries_of(tenant, announcement_id):
            where = f"{tenant:<16} {d.channel:<10} {d.platform:<9}"
            if d.status == "posted":
                # A sandbox post's link has the real platform's shape but leads nowhere real.
                place = (
                    f"{d.url or ''} (sandbox)" if f"{tenant}/{d.channel}" in stack.sandboxed else d.url or ""
                )
                print(f"  ✓ {where} id {d.remote_id:<24} {place}")
            else:
                problems += 1
                print(f"  ✗ {where} {d.status} ({d.error_reason or 'in coda'})")
    return 1 if problems else 0
