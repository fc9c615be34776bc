"""CDK entry point: `python infra/app.py` synthesises the Banditore stack offline, no CDK CLI needed.

Output goes to $CDK_OUTDIR (the CDK CLI sets it) or cdk.out/. Settings, from CDK context
(`cdk deploy -c NAME=value`) or else the environment:
  BANDITORE_CONFIG_FILE   the YAML configuration to deploy (default config/banditore.example.yaml);
                          it is validated here and synth fails with every problem it has
  BANDITORE_ALARM_EMAIL   an address to subscribe to the alarm topic (none by default)
  BANDITORE_STAFF_CALLBACK_URL  where the staff web app receives sign-ins (default: a localhost URL)
  BANDITORE_STAFF_ORIGIN  the staff web app's origin (https://host), allowed to call the staff API
                          from a browser (CORS); none by default: no CORS headers at all
The stack deploys to eu-south-1 (Milan) in the account of the caller's credentials.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_FILE = PROJECT_DIR / "config" / "banditore.example.yaml"
STACK_NAME = "Banditore"


def feature_flags() -> dict[str, Any]:
    """cdk.json's context (the CDK feature flags), which only the CLI reads by itself."""
    flags: dict[str, Any] = json.loads((PROJECT_DIR / "cdk.json").read_text(encoding="utf-8"))["context"]
    return flags


def main() -> int:
    # Imported here, after __main__ has fixed sys.path (see below).
    import aws_cdk as cdk

    from chalicelib.config.loader import ConfigError
    from chalicelib.inbox.cors import STAFF_ORIGIN_ENV, check_origin
    from infra.resources import DEFAULT_REGION
    from infra.stack import BanditoreStack

    # Chalice asks botocore for a region while packaging (for API Gateway's service principal):
    # give it the stack's own, whatever the caller's shell says.
    os.environ["AWS_DEFAULT_REGION"] = DEFAULT_REGION
    outdir = Path(os.environ.get("CDK_OUTDIR", PROJECT_DIR / "cdk.out")).resolve()
    app = cdk.App(outdir=str(outdir), context=feature_flags())

    def setting(name: str) -> str | None:
        return app.node.try_get_context(name) or os.environ.get(name) or None

    config_file = Path(setting("BANDITORE_CONFIG_FILE") or DEFAULT_CONFIG_FILE).resolve()
    staff_origin = setting(STAFF_ORIGIN_ENV)
    try:
        if staff_origin:
            check_origin(staff_origin)
    except ValueError as error:
        print(f"Invalid setting, nothing synthesised:\n{error}", file=sys.stderr)
        return 1
    # chalice.cdk leaves a copy of the deployment package in ./chalice.out on every synth; run it
    # in a scratch directory so neither the work tree nor the caller's directory fills up.
    with tempfile.TemporaryDirectory(prefix="banditore-synth-") as scratch, contextlib.chdir(scratch):
        try:
            BanditoreStack(
                app,
                STACK_NAME,
                config_file=config_file,
                alarm_email=setting("BANDITORE_ALARM_EMAIL"),
                staff_callback_url=setting("BANDITORE_STAFF_CALLBACK_URL"),
                staff_origin=staff_origin,
                env=cdk.Environment(account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=DEFAULT_REGION),
            )
        except ConfigError as error:
            print(f"Invalid configuration, nothing synthesised:\n{error}", file=sys.stderr)
            return 1
        app.synth()
    return 0


if __name__ == "__main__":
    # `python infra/app.py` puts infra/ first on sys.path, where this file would shadow the Chalice
    # app that chalice.cdk imports as `app`, and infra/constructs/ the `constructs` library.
    sys.path[0] = str(PROJECT_DIR)
    sys.exit(main())
