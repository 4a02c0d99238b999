"""The HTML page: one file, plotly.js inlined once, no request to any network.

Cells are escaped here; a cell that is already markup is wrapped in `Raw`.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["LETTER_COLOURS", "Raw", "Section", "esc", "figure_html", "page", "stage_cells", "table"]

# Colours of the ordering picture's cells; other letters are grey.
LETTER_COLOURS = {"R": "#c44e52", "I": "#4c72b0"}

PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}

CSS = """
:root { --ink: #1d1d1f; --muted: #5f6368; --rule: #dadce0; --band: #f6f7f9; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff;
       font: 15px/1.45 "DejaVu Sans", Helvetica, Arial, sans-serif; }
main { max-width: 1240px; margin: 0 auto; padding: 24px 24px 60px; }
h1 { font-size: 1.6em; margin: 0 0 4px; }
h2 { font-size: 1.25em; margin: 36px 0 8px; padding-top: 8px; border-top: 1px solid var(--rule); }
h3 { font-size: 1.05em; margin: 20px 0 6px; }
p, .note { max-width: 80ch; }
.note { color: var(--muted); font-size: 0.92em; }
.warn { color: #8a4b00; }
.banner { max-width: none; margin: 10px 0; padding: 8px 12px; border-left: 5px solid #d93025;
          background: #fce8e6; color: #5c1008; font-weight: 600; }
dl.held { background: var(--band); padding: 8px 12px; border-radius: 4px; }
h4 { font-size: 0.98em; margin: 16px 0 4px; }
nav { font-size: 0.9em; margin: 8px 0 4px; display: flex; flex-wrap: wrap; gap: 4px 16px; }
nav a { color: #1a5fb4; text-decoration: none; white-space: nowrap; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 3px 18px; margin: 14px 0;
           font-size: 0.93em; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; font-size: 0.88em; margin: 8px 0; }
th, td { padding: 4px 7px; border-bottom: 1px solid var(--rule); text-align: left;
         vertical-align: top; }
th { background: var(--band); font-weight: 600; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.nowrap { white-space: nowrap; }
td.mono { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 0.95em; }
tr.baseline td { background: #fbf7ee; }
.remedy { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; font-size: 0.9em;
          color: var(--muted); white-space: normal; max-width: 30ch; }
.tag { display: inline-block; padding: 0 6px; border-radius: 8px; font-size: 0.85em;
       background: var(--band); border: 1px solid var(--rule); }
.tag.reported { background: #fff4e0; border-color: #f0c36d; }
.tag.measured { background: #e6f4ea; border-color: #81c995; }
.plot { width: 100%; }
.stage { display: inline-flex; gap: 2px; padding: 2px; border: 1px solid var(--rule);
         border-radius: 3px; }
.cell { display: inline-block; width: 18px; height: 20px; line-height: 20px; text-align: center;
        color: #fff; font-size: 11px; font-weight: 600; border-radius: 2px; }
code.cmd { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 0.9em;
           white-space: nowrap; user-select: all; }
.legend-cell { vertical-align: middle; margin: 0 4px 0 10px; }
"""


@dataclass(frozen=True)
class Raw:
    """Markup that goes into the page as it is (already escaped where needed)."""

    markup: str


@dataclass(frozen=True)
class Section:
    anchor: str
    title: str
    body: str


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _cell(value: Any) -> str:
    return value.markup if isinstance(value, Raw) else esc(value)


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    numeric: Iterable[int] = (),
    mono: Iterable[int] = (),
    nowrap: Iterable[int] = (),
    row_classes: Sequence[str] | None = None,
    table_id: str | None = None,
) -> str:
    """A plain table; columns in `numeric` are right-aligned, those in `mono` monospaced."""
    numeric, mono, nowrap = set(numeric), set(mono), set(nowrap)

    def cls(index: int) -> str:
        names = [
            name
            for name, columns in (("num", numeric), ("mono", mono), ("nowrap", nowrap))
            if index in columns
        ]
        return f' class="{" ".join(names)}"' if names else ""

    num = ' class="num"'
    head = "".join(f"<th{num if i in numeric else ''}>{esc(h)}</th>" for i, h in enumerate(headers))
    body = []
    for index, row in enumerate(rows):
        row_cls = row_classes[index] if row_classes else ""
        attr = f' class="{esc(row_cls)}"' if row_cls else ""
        cells = "".join(f"<td{cls(i)}>{_cell(v)}</td>" for i, v in enumerate(row))
        body.append(f"<tr{attr}>{cells}</tr>")
    ident = f' id="{esc(table_id)}"' if table_id else ""
    return (
        f'<div class="scroll"><table{ident}><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def figure_html(figure: Any, div_id: str) -> str:
    """The figure's div and the script that draws it; plotly.js comes once, in the page head."""
    height = figure.layout.height or 420
    return figure.to_html(
        full_html=False,
        include_plotlyjs=False,
        include_mathjax=False,
        div_id=div_id,
        config=PLOTLY_CONFIG,
        default_width="100%",
        default_height=f"{height}px",
    ).replace('class="plotly-graph-div"', 'class="plotly-graph-div plot"', 1)


def stage_cells(stage: str) -> str:
    """One stage of a canonical string as a box of coloured letter cells."""
    cells = "".join(
        f'<span class="cell" style="background:{LETTER_COLOURS.get(letter, "#888888")}"'
        f">{esc(letter)}</span>"
        for letter in stage
    )
    return f'<span class="stage">{cells}</span>'


def page(title: str, intro: str, sections: Sequence[Section], plotlyjs: str) -> str:
    nav = "".join(f'<a href="#{esc(s.anchor)}">{esc(s.title)}</a>' for s in sections)
    body = "".join(
        f'<section id="{esc(s.anchor)}"><h2>{esc(s.title)}</h2>{s.body}</section>' for s in sections
    )
    # "</script" inside the library would end the inline script early.
    library = plotlyjs.replace("</script", "<\\/script")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style>"
        f'<script type="text/javascript">{library}</script>'
        f"</head><body><main><h1>{esc(title)}</h1>{intro}<nav>{nav}</nav>{body}</main>"
        "</body></html>\n"
    )
