"""``lnmbench datasets``, ``methods``, ``models``: what is registered."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from lnmbench.cli.console import console


def datasets(
    data_dir: Annotated[
        Path | None, typer.Option(help="dataset folder to check for local files")
    ] = None,
    size: Annotated[int, typer.Option(help="image size to check for")] = 28,
) -> None:
    """List the registered datasets: modality, classes, split sizes, present locally."""
    from lnmbench.data import DATASETS, default_data_dir, is_present

    root = data_dir or default_data_dir()
    t = Table(title=f"datasets (local files looked for in {root}, {size} px)")
    for col in ("name", "modality", "classes", "train", "val", "test", "sizes", "local"):
        t.add_column(col, justify="right" if col in ("classes", "train", "val", "test") else "left")
    for name in DATASETS.names():
        e = DATASETS.get(name)
        real = e.info.noise == "real-world"  # prepared by the user at any size
        if e.local_path(root, size) is None:
            present = "bundled"
        elif (real or size in e.sizes) and is_present(e, root, size):
            present = "yes"
        else:
            present = "no" if not real else "no (lnmbench prepare)"
        counts = [str(n) if n else "-" for n in e.split_sizes]
        sizes = "any (prepared)" if real else "/".join(map(str, e.sizes))
        t.add_row(name, e.info.modality, str(e.info.num_classes), *counts, sizes, present)
    console.print(t)
    console.print("Any MedMNIST-layout .npz works too: --dataset path/to/file.npz", highlight=False)


def methods() -> None:
    """List the registered methods."""
    from lnmbench.methods import METHODS

    t = Table(title="methods")
    t.add_column("name")
    t.add_column("headline head")
    t.add_column("views")
    t.add_column("description")
    for name in METHODS.names():
        cls = METHODS.get(name)
        t.add_row(name, cls.headline, "+".join(cls.views), cls.description)
    console.print(t)


def models() -> None:
    """List the registered backbones."""
    from lnmbench.models import MODELS

    t = Table(title="models")
    for col in ("name", "inputs", "description"):
        t.add_column(col)
    for name in MODELS.names():
        info = MODELS.get(name)
        extra = " (needs the [timm] extra)" if info.needs_timm else ""
        t.add_row(name, info.input_sizes, escape(info.description + extra))
    console.print(t)
