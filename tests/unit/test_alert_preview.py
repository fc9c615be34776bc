"""`banditore preview` of an alert document says, per tenant, whether the alert would be posted now and
if not why (status, areas, minimum level, expiry), as the pipeline decides it; in-process, offline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from devtools.preview import build_preview

CONFIG = """
version: 1
tenants:
  - id: comune-siena
    name: Comune di Siena
    alerts: {zones: [Tosc-B]}
    channels:
      - {id: telegram, platform: telegram, chat: "@ComuneSiena", token: "env:TG"}
  - id: comune-firenze
    name: Comune di Firenze
    alerts: {zones: [Tosc-B], min_level: red}
    channels:
      - {id: telegram, platform: telegram, chat: "@ComuneFirenze", token: "env:TG"}
  - id: comune-lucca
    name: Comune di Lucca
    alerts: {zones: [Tosc-A]}
    channels:
      - {id: telegram, platform: telegram, chat: "@ComuneLucca", token: "env:TG"}
"""


def _info(zone: str, level: str, expires: datetime) -> str:
    return f"""
  <info>
    <language>it-IT</language><category>Met</category><event>Temporali</event>
    <urgency>Expected</urgency><severity>Moderate</severity><certainty>Likely</certainty>
    <expires>{expires.isoformat()}</expires><senderName>Centro Funzionale</senderName>
    <parameter><valueName>awareness_level</valueName><value>{level}</value></parameter>
    <area><areaDesc>Zona {zone}</areaDesc>
      <geocode><valueName>Zona di Allerta</valueName><value>{zone}</value></geocode></area>
  </info>"""


def _document(tmp_path: Path, *infos: str, status: str = "Actual") -> str:
    now = datetime.now(UTC).replace(microsecond=0)
    path = tmp_path / "allerta.xml"
    path.write_text(
        f"""<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>PREVIEW-1</identifier><sender>cfr@example.it</sender><sent>{now.isoformat()}</sent>
  <status>{status}</status><msgType>Alert</msgType><scope>Public</scope>{"".join(infos)}
</alert>""",
        encoding="utf-8",
    )
    return str(path)


def _tenants(tmp_path: Path, document: str) -> dict[str, dict[str, Any]]:
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    [entry] = build_preview(document, config)["alerts"]
    return {tenant["tenant"]: tenant for tenant in entry["tenants"]}


LATER = datetime.now(UTC) + timedelta(days=1)
EARLIER = datetime.now(UTC) - timedelta(hours=1)


@pytest.mark.parametrize(
    ("status", "expires", "reasons"),
    [
        ("Actual", LATER, {"comune-siena": None, "comune-firenze": "below minimum level"}),
        ("Actual", EARLIER, {"comune-siena": "expired", "comune-firenze": "below minimum level"}),
        ("Exercise", LATER, {"comune-siena": "not a public alert", "comune-firenze": "not a public alert"}),
    ],
)
def test_each_tenant_is_told_whether_it_is_concerned_and_if_not_why(
    tmp_path: Path, status: str, expires: datetime, reasons: dict[str, str | None]
) -> None:
    tenants = _tenants(
        tmp_path, _document(tmp_path, _info("Tosc-B", "3; orange; Severe", expires), status=status)
    )

    assert {t: tenants[t]["reason"] for t in reasons} == reasons
    assert tenants["comune-siena"]["concerned"] is (reasons["comune-siena"] is None)
    # The text is shown wherever the alert covers the tenant's areas, posted now or not.
    assert all("🟠" in tenants[t]["channels"][0]["text"] for t in reasons)
    lucca = tenants["comune-lucca"]
    assert (lucca["reason"], lucca["matched_areas"], lucca["channels"]) == (
        "not a public alert" if status != "Actual" else "not for these areas",
        [],
        [],
    )


def test_a_bulletin_shows_each_tenant_the_block_for_its_own_zone_as_the_pipeline_posts_it(
    tmp_path: Path,
) -> None:
    """The DPC writes one info block per level: Lucca's zone is yellow, Siena's and Firenze's red."""
    document = _document(
        tmp_path, _info("Tosc-A", "2; yellow; Moderate", LATER), _info("Tosc-B", "4; red; Extreme", LATER)
    )
    tenants = _tenants(tmp_path, document)

    for name in ("comune-siena", "comune-firenze"):
        assert tenants[name]["concerned"] and tenants[name]["matched_areas"] == [
            "Zona Tosc-B (zona di allerta Tosc-B)"
        ]
        assert "🔴" in tenants[name]["channels"][0]["text"]
    assert tenants["comune-lucca"]["concerned"] and "🟡" in tenants["comune-lucca"]["channels"][0]["text"]
