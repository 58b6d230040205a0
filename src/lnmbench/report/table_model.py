"""A format-neutral table (header, rows of cells with bold/underline marks and notes) and the
main per-cell tables built from a :class:`~lnmbench.report.cells.CellTable`."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lnmbench.report.cells import CellTable
from lnmbench.report.load import rate_label

MISSING = "–"
INCOMPLETE = "†"


@dataclass(frozen=True)
class Cell:
    """One table cell: its text, ``mark`` "best" (bold) / "second" (underlined) / None, an
    optional small ``note`` (the seed count) and ``flag`` (incomplete seeds)."""

    text: str
    mark: str | None = None
    note: str = ""
    flag: bool = False


@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list[Cell]]
    notes: list[str] = field(default_factory=list)
    key: str = ""  # file-name stem


def fmt(x: float, digits: int = 2) -> str:
    return MISSING if x is None or x != x else f"{x:.{digits}f}"


def mean_std_cell(mean: float, std: float, n: int, expected: int, rank: float) -> Cell:
    """ "mean ± std" (std omitted for one seed), note n seeds, flag when n < expected."""
    if n == 0 or mean != mean:
        return Cell(MISSING)
    text = fmt(mean) if std != std else f"{fmt(mean)} ± {fmt(std)}"
    mark = "best" if rank == 1 else "second" if rank == 2 else None
    note = f"{n}/{expected}" if n < expected else str(n)
    return Cell(text, mark, note, n < expected)


def main_tables(table: CellTable, metric_label: str) -> list[Table]:
    """One table per (dataset, noise): method rows × rate columns, best per column bold,
    second underlined, "–" where a method has no finished run, † where seeds are missing."""
    out = []
    groups: dict[tuple[str, str], list[int]] = {}
    for j, (d, n, _) in enumerate(table.cells):
        groups.setdefault((d, n), []).append(j)
    for (dataset, noise), cols in groups.items():
        header = ["method"] + [
            "rate " + rate_label(table.cells[j][2]) if table.cells[j][2] >= 0 else "real-world"
            for j in cols
        ]
        rows = []
        for i, m in enumerate(table.methods):
            if table.missing[i, cols].all():
                continue
            rows.append(
                [Cell(m)]
                + [
                    mean_std_cell(
                        table.mean[i, j],
                        table.std[i, j],
                        int(table.n[i, j]),
                        int(table.expected[j]),
                        table.rank[i, j],
                    )
                    for j in cols
                ]
            )
        notes = [
            f"{metric_label}; mean ± sample std over seeds, seed count in small type; best "
            f"per column bold, second underlined; {MISSING} no finished run; {INCOMPLETE} fewer "
            "seeds finished than planned."
        ]
        out.append(Table(f"{dataset} — {noise}", header, rows, notes, f"main_{dataset}_{noise}"))
    return out


def incomplete_count(table: CellTable) -> tuple[int, int]:
    """(method × cell entries with missing seeds, entries with no finished run)."""
    return int(np.sum(table.incomplete)), int(np.sum(table.missing))


def frame_table(
    df, title: str, key: str, digits: dict[str, int] | None = None, notes: list[str] | None = None
) -> Table:
    """A pandas DataFrame as a :class:`Table`: floats with ``digits[col]`` decimals (2 by
    default), NaN as "–"; integers and strings as they are."""
    digits = digits or {}
    rows = []
    for rec in df.itertuples(index=False):
        cells = []
        for col, v in zip(df.columns, rec, strict=True):
            if isinstance(v, float | np.floating):
                cells.append(Cell(fmt(float(v), digits.get(col, 2))))
            else:
                cells.append(Cell(str(v)))
        rows.append(cells)
    return Table(title, [str(c) for c in df.columns], rows, notes or [], key)
