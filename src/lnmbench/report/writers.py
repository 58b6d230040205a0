"""Render :class:`~lnmbench.report.table_model.Table` as Markdown, LaTeX (booktabs) and HTML."""

from __future__ import annotations

import html
import re

from lnmbench.report.table_model import INCOMPLETE, Cell, Table

NUMBER = re.compile(r"^[-−+]?\.?\d")
LATEX_SPECIAL = {
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "\\": r"\textbackslash{}",
}


def _md_cell(c: Cell) -> str:
    t = c.text.replace("|", r"\|")
    t = f"**{t}**" if c.mark == "best" else f"<ins>{t}</ins>" if c.mark == "second" else t
    if c.note:
        t += f" <sub>{c.note}</sub>"
    return t + (INCOMPLETE if c.flag else "")


def to_markdown(table: Table) -> str:
    lines = [f"### {table.title}", ""]
    lines.append("| " + " | ".join(table.header) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(table.header) - 1)) + "|")
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in table.rows]
    lines += [""] + [f"{n}" for n in table.notes] + [""]
    return "\n".join(lines)


def latex_escape(text: str) -> str:
    out = "".join(LATEX_SPECIAL.get(ch, ch) for ch in text)
    return (
        out.replace("±", r"$\pm$").replace("–", "--").replace("—", "---").replace("×", r"$\times$")
    )


def _tex_cell(c: Cell) -> str:
    t = latex_escape(c.text)
    t = (
        rf"\textbf{{{t}}}"
        if c.mark == "best"
        else rf"\underline{{{t}}}"
        if c.mark == "second"
        else t
    )
    if c.note:
        t += rf"\,{{\scriptsize({latex_escape(c.note)})}}"
    return t + (r"$^\dagger$" if c.flag else "")


def to_latex(table: Table) -> str:
    """A booktabs ``table`` environment (needs \\usepackage{booktabs})."""
    spec = "l" + "r" * (len(table.header) - 1)
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        rf"\caption{{{latex_escape(table.title)}}}",
        rf"\begin{{tabular}}{{{spec}}}",
        r"\toprule",
        " & ".join(latex_escape(h) for h in table.header) + r" \\",
        r"\midrule",
    ]
    lines += [" & ".join(_tex_cell(c) for c in row) + r" \\" for row in table.rows]
    lines += [r"\bottomrule", r"\end{tabular}"]
    if table.notes:
        lines.append(r"\par\smallskip{\footnotesize " + latex_escape(" ".join(table.notes)) + "}")
    lines += [r"\end{table}", ""]
    return "\n".join(lines)


def _html_cell(c: Cell, tag: str = "td") -> str:
    t = html.escape(c.text)
    if c.mark == "best":
        t = f"<b>{t}</b>"
    elif c.mark == "second":
        t = f"<u>{t}</u>"
    if c.note:
        t += f' <span class="n">{html.escape(c.note)}</span>'
    if c.flag:
        t += f'<span class="flag" title="fewer seeds finished than planned">{INCOMPLETE}</span>'
    return f"<{tag}{cell_class(c.text)}>{t}</{tag}>"


def cell_class(text: str) -> str:
    """The class attribute of a cell: "miss" for "–", "s" (left-aligned) for words."""
    if text == "–":
        return ' class="miss"'
    return "" if NUMBER.match(text) else ' class="s"'


def to_html(table: Table, level: int = 3) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.header)
    body = "".join("<tr>" + "".join(_html_cell(c) for c in row) + "</tr>" for row in table.rows)
    notes = "".join(f'<p class="note">{html.escape(n)}</p>' for n in table.notes)
    table_html = f'<table class="t"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
    return f"<h{level}>{html.escape(table.title)}</h{level}>{scrolling(table_html)}{notes}"


def scrolling(table_html: str) -> str:
    """A table in a box that scrolls sideways when the table is wider than the page (long
    variant labels, many columns), so that the page itself never does."""
    return f'<div class="tw">{table_html}</div>'
