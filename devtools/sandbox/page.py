"""The sandbox's home page: what was posted on each platform, newest first, for people (in Italian)."""

from __future__ import annotations

from html import escape
from typing import Any
from zoneinfo import ZoneInfo

from devtools.sandbox.fakes import PlatformFake
from devtools.sandbox.state import Post

_ROME = ZoneInfo("Europe/Rome")
CITIZEN_FORM = "/telegram/sandbox/citizen"  # served by the Telegram fake (inbox_webhooks.py)
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 70rem; padding: 0 1rem; }
table { border-collapse: collapse; width: 100%; margin-bottom: 2rem; }
th, td { border-bottom: 1px solid #ddd; padding: .5rem; text-align: left; vertical-align: top; }
pre { white-space: pre-wrap; margin: 0; font: inherit; }
.nota { color: #555; }
"""


def render_page(
    fakes: dict[str, PlatformFake], posts: list[Post], stats: dict[str, Any], faults: list[dict[str, Any]]
) -> str:
    sections = "".join(
        _platform_section(fake, [p for p in posts if p.platform == platform])
        for platform, fake in fakes.items()
    )
    requests = sum(sum(endpoints.values()) for endpoints in stats["requests"].values())
    return f"""<!doctype html>
<html lang="it">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="5">
<title>Sandbox delle piattaforme · Banditore</title>
<style>{_STYLE}</style>
</head>
<body>
<h1>Sandbox delle piattaforme</h1>
<p class="nota">Piattaforme finte, su questo computer: qui finisce ciò che Banditore pubblica quando
un canale non ha un token reale. Nessun messaggio esce da qui. Richieste ricevute: {requests}.
La pagina si aggiorna da sola ogni 5 secondi.</p>
<p><a href="{CITIZEN_FORM}">Scrivi come cittadino</a> a un bot Telegram della sandbox.</p>
{sections}
<h2>Guasti simulati attivi</h2>
{_faults_list(faults)}
</body>
</html>
"""


def _platform_section(fake: PlatformFake, posts: list[Post]) -> str:
    title = f"<h2>{escape(fake.title)} ({len(posts)} {'messaggio' if len(posts) == 1 else 'messaggi'})</h2>"
    if not posts:
        return title + '<p class="nota">Nessun messaggio pubblicato.</p>'
    rows = "".join(_row(post) for post in reversed(posts))
    header = (
        f"<tr><th>Quando</th><th>{escape(fake.target_label)}</th><th>Testo inviato</th><th>Link</th></tr>"
    )
    return f"{title}<table>{header}{rows}</table>"


def _row(post: Post) -> str:
    when = post.time.astimezone(_ROME).strftime("%d/%m/%Y %H:%M:%S")
    link = f'<a href="{escape(post.url)}">apri</a>' if post.url else "—"
    # Mastodon status URLs lead here (ids are unique there; Telegram's only within a chat).
    anchor = f' id="mastodon-{escape(post.id)}"' if post.platform == "mastodon" else ""
    return (
        f"<tr{anchor}><td>{when}</td><td>{escape(post.target)}</td>"
        f"<td><pre>{escape(post.text)}</pre></td><td>{link}</td></tr>"
    )


def _faults_list(faults: list[dict[str, Any]]) -> str:
    if not faults:
        return '<p class="nota">Nessun guasto simulato.</p>'
    items = "".join(
        f"<li>{escape(f['platform'])}: {escape(f['kind'])} "
        f"({escape(_how_often(f))}, già scattato {f['fired']} volte)</li>"
        for f in faults
    )
    return f"<ul>{items}</ul>"


def _how_often(fault: dict[str, Any]) -> str:
    if fault["rate"] is not None:
        return f"{fault['rate']:.0%} delle chiamate a {fault['endpoint']}"
    return f"ancora {fault['count'] - fault['fired']} chiamate a {fault['endpoint']}"


def render_citizen_form(bots: list[tuple[str, str]], outcome: str | None) -> str:
    """The form "Scrivi come cittadino": a private message to one of the bots whose webhook is
    registered with the Telegram fake (`bots`: key and webhook URL), delivered as Telegram would.
    `outcome` is the previous message's: the webhook's HTTP status, or why nothing was delivered."""
    options = "".join(
        f'<option value="{escape(key)}">{escape(_bot_label(url))}</option>' for key, url in bots
    )
    form = (
        f"""<form method="post" action="{CITIZEN_FORM}">
<p><label>Canale <select name="bot" required>{options}</select></label></p>
<p><label>Messaggio<br>
<textarea name="text" rows="4" cols="60" maxlength="4096" required></textarea></label></p>
<p><button type="submit">Invia su Telegram</button></p>
</form>"""
        if bots
        else '<p class="nota">Nessun bot ha un webhook registrato: avvia lo stack locale con '
        "<code>banditore run</code>, che li registra.</p>"
    )
    return f"""<!doctype html>
<html lang="it">
<head>
<meta charset="utf-8">
<title>Scrivi come cittadino · Sandbox · Banditore</title>
<style>{_STYLE}</style>
</head>
<body>
<h1>Scrivi come cittadino</h1>
<p class="nota">Un messaggio privato al bot del canale, consegnato al webhook di Banditore come farebbe
Telegram (con il token segreto del webhook). Lo si ritrova nella casella dello staff.</p>
{_outcome(outcome)}
{form}
<p><a href="/">Torna alla sandbox</a></p>
</body>
</html>
"""


def _bot_label(url: str) -> str:
    """ "ente/canale" from a webhook URL .../webhooks/telegram/{tenant}/{channel}, else the URL."""
    _, found, rest = url.partition("/webhooks/telegram/")
    return rest if found and rest else url


def _outcome(outcome: str | None) -> str:
    if outcome is None:
        return ""
    if outcome == "200":
        return "<p><strong>Consegnato:</strong> Banditore ha accettato il messaggio.</p>"
    if outcome == "nessun-webhook":
        return "<p><strong>Non consegnato:</strong> il bot non ha più un webhook registrato.</p>"
    return f"<p><strong>Non consegnato:</strong> il webhook ha risposto {escape(outcome)}.</p>"
