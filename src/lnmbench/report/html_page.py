"""The self-contained HTML page: inline CSS, figures as PNG data URIs, no script, no network."""

from __future__ import annotations

import html

from lnmbench.report.figures import FigureRef

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;color:#222;
background:#fff;line-height:1.4}
main{max-width:1200px;margin:0 auto;padding:1.2em 2em 4em}
h1{font-size:1.6em;margin:.2em 0 .4em}h2{border-bottom:2px solid #4c72b0;padding-bottom:.15em;
margin-top:2em}h3{font-size:1.05em;margin:1.4em 0 .4em}
div.tw{overflow-x:auto;max-width:100%}
table.t{border-collapse:collapse;font-size:.85em;margin:.3em 0 .6em}
table.t th,table.t td{padding:.25em .6em;border-bottom:1px solid #ddd;text-align:right;
white-space:nowrap}table.t th:first-child,table.t td:first-child{text-align:left}
table.t thead th{border-bottom:2px solid #444;background:#f4f6fa}
td.miss{color:#999}table.t td.s{text-align:left}
span.n{color:#888;font-size:.75em;vertical-align:sub}
span.flag{color:#c44e52;font-weight:bold}p.note{color:#555;font-size:.8em;margin:.1em 0 1em}
figure{margin:1em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.8em;color:#555}
.box{background:#f4f6fa;border-left:4px solid #4c72b0;padding:.6em 1em;font-size:.9em}
.box dt{font-weight:bold;float:left;clear:left;width:13em}.box dd{margin-left:13em}
nav.toc{font-size:.9em}nav.toc a{color:#245}
nav.toc ul{margin:.2em 0;list-style:none;padding-left:1em}
pre{background:#f7f7f7;padding:.6em;overflow-x:auto;font-size:.8em}.warn{color:#a15c00}
"""


def esc(text: object) -> str:
    return html.escape(str(text))


def figure_html(ref: FigureRef | None) -> str:
    if ref is None:
        return ""
    cap = f"<figcaption>{esc(ref.caption)}</figcaption>" if ref.caption else ""
    return (
        f'<figure><img src="{ref.data_uri}" alt="{esc(ref.name)}" '
        f'title="{esc(ref.png)}">{cap}</figure>'
    )


def definition_box(items: list[tuple[str, str]]) -> str:
    body = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in items)
    return f'<dl class="box">{body}</dl>'


def page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    )


def toc(sections: list[tuple[str, str]]) -> str:
    links = "".join(f'<li><a href="#{esc(a)}">{esc(t)}</a></li>' for a, t in sections)
    # the section titles carry their numbers ("1. Main tables"): an unnumbered list
    return f'<nav class="toc"><ul>{links}</ul></nav>'
