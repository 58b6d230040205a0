"""``audit.html``: one self-contained page (no CDN, no script): the top suspects as a contact
sheet of embedded PNG images, per-class noise-rate bars and the estimated transition matrix."""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1d232a;
background:#fff;max-width:1240px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;
padding-bottom:4px}.meta{color:#555;font-size:13px;margin:2px 0}
.note{background:#fff6dd;border:1px solid #e8c66a;padding:6px 10px;font-size:13px;margin:10px 0}
.sheet{display:grid;grid-template-columns:repeat(auto-fill,minmax(118px,1fr));gap:8px}
.card{border:1px solid #d8dde3;border-radius:4px;padding:4px;text-align:center;font-size:11px;
background:#fafbfc}.card img{width:96px;height:96px;image-rendering:pixelated;display:block;
margin:0 auto 3px;background:#000}.lab{white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.giv{color:#b3261e;font-weight:600}.agr{color:#777}.sug{color:#1b6e20;font-weight:600}.sc{color:#555}
table{border-collapse:collapse;font-size:12px}td,th{padding:3px 6px;text-align:right}
th{background:#f1f3f5}td.l,th.l{text-align:left}.bars td{border-bottom:1px solid #eee}
.bar{height:11px;display:inline-block;vertical-align:middle}.b1{background:#d9822b}
.b2{background:#3d7ebf}.hm td{width:46px;height:30px;text-align:center;border:1px solid #fff}
.legend span{display:inline-block;width:11px;height:11px;margin:0 4px 0 12px;
vertical-align:middle}
"""


@dataclass
class Suspect:
    """One contact-sheet card: image (C, H, W) uint8, index, labels and score."""

    index: int
    image: np.ndarray
    given: str
    suggested: str
    score: float
    name: str = ""


@dataclass
class PageData:
    """Everything the page shows (class-indexed arrays have length C)."""

    title: str
    meta: list[str]
    class_names: Sequence[str]
    suspects: list[Suspect]
    flagged_fraction: np.ndarray  # (C,) fraction flagged by the audit, per given class
    given_counts: np.ndarray  # (C,) int
    cleanlab_wrong: np.ndarray | None = None  # (C,) confident-joint wrong fraction per given class
    transition: np.ndarray | None = None  # (C, C) estimated T, rows = clean class
    notes: list[str] = field(default_factory=list)
    tables: list[tuple[str, list[str], list[list[str]]]] = field(default_factory=list)


def png_data_uri(image: np.ndarray) -> str:
    """(C, H, W) or (H, W) uint8 -> ``data:image/png;base64,...``."""
    arr = np.asarray(image, dtype=np.uint8)
    if arr.ndim == 3:
        arr = arr[0] if arr.shape[0] == 1 else np.transpose(arr, (1, 2, 0))
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _e(x: object) -> str:
    return html.escape(str(x))


def _card(s: Suspect) -> str:
    title = f"#{s.index} {s.name}".strip()
    return (
        f'<div class="card" title="{_e(title)}"><img alt="sample {s.index}" '
        f'src="{png_data_uri(s.image)}"><div class="lab">#{s.index}</div>'
        f'<div class="lab giv" title="given">{_e(s.given)}</div>'
        + (
            f'<div class="lab sug" title="suggested">→ {_e(s.suggested)}</div>'
            if s.suggested != s.given
            else '<div class="lab agr" title="the out-of-fold argmax is the given label">'
            "→ (model agrees)</div>"
        )
        + f'<div class="sc">score {s.score:.3f}</div></div>'
    )


def _pct(x: float) -> str:
    return "n/a" if x is None or not math.isfinite(float(x)) else f"{100 * float(x):.1f}%"


def _bars(d: PageData) -> str:
    rows = []
    for c, name in enumerate(d.class_names):
        f = float(d.flagged_fraction[c])
        cells = [
            f'<td class="l">{_e(name)}</td><td>{int(d.given_counts[c])}</td>',
            f'<td class="l"><span class="bar b1" style="width:{300 * f:.0f}px"></span> '
            f"{_pct(f)}</td>",
        ]
        if d.cleanlab_wrong is not None:
            w = float(d.cleanlab_wrong[c])
            wv = w if math.isfinite(w) else 0.0
            cells.append(
                f'<td class="l"><span class="bar b2" style="width:{300 * wv:.0f}px"></span> '
                f"{_pct(w)}</td>"
            )
        rows.append("<tr>" + "".join(cells) + "</tr>")
    head = "<th class='l'>given class</th><th>samples</th><th class='l'>flagged by the audit</th>"
    if d.cleanlab_wrong is not None:
        head += "<th class='l'>estimated wrong (confident joint)</th>"
    return f'<table class="bars"><tr>{head}</tr>{"".join(rows)}</table>'


def _heat(t: np.ndarray, names: Sequence[str]) -> str:
    head = "".join(f"<th title='{_e(n)}'>{_e(n[:6])}</th>" for n in names)
    rows = []
    for i, name in enumerate(names):
        cells = []
        for j in range(len(names)):
            v = float(t[i, j])
            v = v if math.isfinite(v) else 0.0
            # white -> dark blue; light text on dark cells
            r, g, b = (int(255 - (255 - a) * v) for a in (24, 70, 140))
            fg = "#fff" if v > 0.5 else "#1d232a"
            cells.append(f'<td style="background:rgb({r},{g},{b});color:{fg}">{v:.2f}</td>')
        rows.append(f'<tr><th class="l">{_e(name)}</th>{"".join(cells)}</tr>')
    return (
        f'<table class="hm"><tr><th class="l">clean \\ given</th>{head}</tr>{"".join(rows)}</table>'
    )


def _table(title: str, header: list[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th{' class=l' if i == 0 else ''}>{_e(h)}</th>" for i, h in enumerate(header))
    body = "".join(
        "<tr>"
        + "".join(f"<td{' class=l' if i == 0 else ''}>{_e(v)}</td>" for i, v in enumerate(r))
        + "</tr>"
        for r in rows
    )
    return f"<h2>{_e(title)}</h2><table><tr>{th}</tr>{body}</table>"


def render(d: PageData) -> str:
    """The whole page as one HTML string."""
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{_e(d.title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{_e(d.title)}</h1>",
        *(f'<p class="meta">{_e(m)}</p>' for m in d.meta),
        *(f'<div class="note">{_e(n)}</div>' for n in d.notes),
        f"<h2>Top {len(d.suspects)} suspect labels (given → suggested, suspicion score)</h2>",
        f'<div class="sheet">{"".join(_card(s) for s in d.suspects)}</div>',
        "<h2>Per-class noise rates</h2>",
        '<p class="legend"><span class="b1"></span>flagged by the audit (its top n̂)',
        *(
            ['<span class="b2"></span>confident-joint estimate (cleanlab)']
            if d.cleanlab_wrong is not None
            else []
        ),
        "</p>",
        _bars(d),
    ]
    if d.transition is not None:
        parts += [
            "<h2>Estimated transition matrix T (confident joint; rows = clean class, "
            "columns = given label)</h2>",
            _heat(d.transition, d.class_names),
        ]
    parts += [_table(*t) for t in d.tables]
    parts.append("</body></html>")
    return "\n".join(parts)
