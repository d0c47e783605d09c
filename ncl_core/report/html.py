"""index.html: one self-contained page (no network), pictures beside it under ``images/``.

Every value that comes from a file name or from metadata goes through ``html.escape``; on top
of that a Content-Security-Policy forbids scripts and any network access, so even a value that
escaped escaping could not run or phone home.
"""

from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import quote

from ncl_core.report import present, shared
from ncl_core.report.forensic_views import view_lines
from ncl_core.views import VIEWS

INDEX_HTML = "index.html"

_CSP = (
    "default-src 'none'; img-src 'self' file: data:; style-src 'unsafe-inline'; "
    "base-uri 'none'; form-action 'none'"
)

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif;
       margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; margin-top: 0; word-break: break-all; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
td.mono, .mono { font-family: ui-monospace, "DejaVu Sans Mono", monospace; word-break: break-all; }
.banner { background: #b00020; color: #fff; padding: 0.6em 1em; font-weight: bold; margin: 0.5em 0; }
.alert { color: #b00020; font-weight: bold; }
.disclaimer { font-style: italic; color: #555; }
.item { border-top: 2px solid #888; padding-top: 1em; margin-top: 2em; page-break-inside: avoid; }
.figures { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; }
figure { margin: 0; } figure img { max-width: 360px; max-height: 360px; border: 1px solid #ccc; }
figcaption { font-size: 0.85em; color: #444; }
.scale { display: flex; gap: 4px; align-items: stretch; }
.scale .bar { width: 16px; height: 240px; border: 1px solid #ccc; }
.scale .ticks { display: flex; flex-direction: column; justify-content: space-between;
                font-size: 0.8em; height: 240px; }
td.thumb img { max-width: 160px; max-height: 160px; }
td.num { text-align: right; white-space: nowrap; }
.status-error { color: #b00020; font-weight: bold; }
"""


# Bidirectional overrides and isolates reorder what is shown ("photo\u202egnp.exe" reads as
# "photoexe.png"): in the page they are marked visibly instead, e.g. [U+202E].
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _e(value: Any) -> str:
    text = _BIDI.sub(lambda m: f"[U+{ord(m.group()):04X}]", str(value))
    return html.escape(text, quote=True)


def _src(rel_path: str) -> str:
    """A relative path of ours as an attribute value (URL-quoted, then HTML-escaped)."""
    return _e(quote(rel_path))


def _multiline(value: str) -> str:
    return "<br>".join(_e(part) for part in value.split("\n"))


def _anchor(row: dict[str, Any]) -> str:
    return f"item-{int(row['index']):05d}"


def _table(items: list[tuple[str, str]], mono: tuple[str, ...] = ()) -> str:
    cells = []
    for label, value in items:
        cls = ' class="mono"' if label in mono else ""
        cells.append(f"<tr><th>{_e(label)}</th><td{cls}>{_multiline(value)}</td></tr>")
    return "<table>" + "".join(cells) + "</table>"


def _summary(rows: list[dict[str, Any]]) -> str:
    head = (
        "<tr><th>#</th><th>Overlay</th><th>File</th><th>Score</th><th>Area</th>"
        "<th>Finding</th><th>Status</th></tr>"
    )
    body = []
    for rank, row in enumerate(rows, start=1):
        thumb = ""
        if row.get("thumbnail_path"):
            thumb = (
                f'<a href="#{_anchor(row)}"><img src="{_src(row["thumbnail_path"])}" '
                f'alt="overlay of {_e(row["name"])}" loading="lazy"></a>'
            )
        status = _e(row.get("status"))
        if row.get("status") == "error":
            status = f'<span class="status-error">{status}</span>'
        alert = present.row_alert(row)
        if alert:
            status += f'<br><span class="alert">{_e(alert)}</span>'
        body.append(
            f'<tr><td class="num">{rank}</td><td class="thumb">{thumb}</td>'
            f'<td><a href="#{_anchor(row)}">{_e(row["name"])}</a></td>'
            f'<td class="num">{_e(present.score_text(row))}</td>'
            f'<td class="num">{_e(present.area_text(row))}</td>'
            f"<td>{_e(present.text(row.get('finding')))}</td><td>{status}</td></tr>"
        )
    return f"<table>{head}{''.join(body)}</table>"


def _figure(rel_path: str | None, caption: str, alt: str) -> str:
    if not rel_path:
        return ""
    src = _src(rel_path)
    return (
        f'<figure><a href="{src}"><img src="{src}" alt="{_e(alt)}" loading="lazy"></a>'
        f"<figcaption>{_e(caption)}</figcaption></figure>"
    )


def _scale(colorbar_path: str) -> str:
    return (
        f'<figure><div class="scale"><img class="bar" src="{_src(colorbar_path)}" '
        'alt="colour scale"><div class="ticks"><span>1.0</span><span>0.5</span>'
        "<span>0.0</span></div></div><figcaption>probability</figcaption></figure>"
    )


def _views(row: dict[str, Any]) -> str:
    """The forensic views chosen for the report: their maps, and one line each."""
    views = row.get("views") or {}
    if not views:
        return ""
    figures = []
    for name, entry in views.items():
        meaning = VIEWS[name].brighter if name in VIEWS else ""
        caption = f"{VIEWS[name].title if name in VIEWS else name}: brighter = {meaning}"
        figures.append(_figure(entry.get("map_path"), caption, f"{name} of {row['name']}"))
    return (
        '<h3>Forensic views</h3><div class="figures">'
        + "".join(figures)
        + "</div>"
        + _table(view_lines(row))
    )


def _item(rank: int, row: dict[str, Any], colorbar_path: str) -> str:
    name = row["name"]
    parts = [f'<section class="item" id="{_anchor(row)}"><h2>{rank}. {_e(name)}</h2>']
    alert = present.row_alert(row)
    if alert:
        parts.append(f'<p class="banner">{_e(alert)}</p>')
    if row.get("status") == "skipped":
        parts.append(f"<p>{_e(present.skipped_text(row))}</p>")
    elif row.get("status") != "ok":
        parts.append(f'<p class="alert">Error: {_e(present.text(row.get("error")))}</p>')
    else:
        threshold = present.text(row.get("threshold"))
        parts.append('<div class="figures">')
        parts.append(_figure(row.get("image_path"), "original (display copy)", f"{name}"))
        parts.append(_figure(row.get("heatmap_path"), "probability heatmap", f"heatmap of {name}"))
        if row.get("heatmap_path"):
            parts.append(_scale(colorbar_path))
        parts.append(
            _figure(row.get("overlay_path"), f"overlay at threshold {threshold}", f"overlay {name}")
        )
        parts.append(
            _figure(row.get("mask_path"), f"mask at threshold {threshold}", f"mask {name}")
        )
        note = present.pictures_note(row)
        if note:
            parts.append(_figure(row.get("thumbnail_path"), "thumbnail", f"thumbnail {name}"))
        parts.append("</div>")
        if note:
            parts.append(f"<p>{_e(note)}</p>")
        parts.append(_views(row))
    mono = ("Path", "SHA-256 at start", "SHA-256 at end", "Output files")
    parts.append(_table(present.row_items(row), mono=mono))
    parts.append("</section>")
    return "".join(parts)


def html_document(header: dict[str, Any], rows: list[dict[str, Any]], colorbar_path: str) -> str:
    """The whole index.html as text."""
    ordered = present.rows_by_score(rows)
    case = header.get("case_id")
    title = present.TITLE + (f" — case {case}" if case else "")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_e(_CSP)}">',
        '<meta name="referrer" content="no-referrer">',
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
    ]
    parts += [f'<p class="banner">{_e(line)}</p>' for line in present.banners(header)]
    parts.append(f'<p class="disclaimer">{_e(present.DISCLAIMER)}</p>')
    parts.append('<section id="header"><h2>Report</h2>')
    parts.append(_table(present.header_items(header), mono=("Model file SHA-256", "Inputs")))
    parts.append("</section>")
    aliases = header.get("merged_aliases") or []
    if aliases:
        items = "".join(
            f'<li><span class="mono">{_e(a["path"])}</span> = '
            f'<span class="mono">{_e(a["same_as"])}</span></li>'
            for a in aliases[:200]
        )
        more = (
            f"<p>… and {len(aliases) - 200} more in report.json.</p>" if len(aliases) > 200 else ""
        )
        parts.append(
            '<section id="aliases"><h2>Other names of files analyzed once</h2>'
            "<p>Symbolic or hard links to a file listed under its first name.</p>"
            f"<ul>{items}</ul>{more}</section>"
        )
    problems = header.get("scan_problems") or []
    if problems:
        items = "".join(
            f'<li><span class="mono">{_e(p["path"])}</span>: {_e(p["message"])}</li>'
            for p in problems
        )
        parts.append(f'<section id="problems"><h2>Paths not scanned</h2><ul>{items}</ul></section>')
    parts.append('<section id="summary"><h2>Summary (by score)</h2>')
    parts.append(_summary(ordered))
    parts.append("</section>")
    parts.append(shared.html_section(header, _e, _src))
    parts += [_item(rank, row, colorbar_path) for rank, row in enumerate(ordered, start=1)]
    parts.append("</body></html>\n")
    return "\n".join(parts)
