"""``lnmbench prepare``: decode a real-world or user CSV dataset once into a memory-mapped cache."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from lnmbench.cli.console import console, fail, pct
from lnmbench.cli.values import parse_set
from lnmbench.errors import LnmbenchError


def read_source(dataset: str, root: Path, options: dict[str, Any]):  # -> DatasetSource
    """A preset name (drtid, kaggledr+, chexpert) or a CsvDatasetSpec YAML path -> its tables."""
    from lnmbench.data.csv_dataset import read_spec_source
    from lnmbench.data.csv_spec import load_spec
    from lnmbench.data.real_world import PRESETS, parse_options

    if dataset.endswith((".yaml", ".yml")):
        if options:
            raise LnmbenchError("--set options apply to presets; put settings in the spec YAML")
        return read_spec_source(load_spec(dataset), root)
    preset = PRESETS.get(dataset)
    return preset.read(root, parse_options(preset, options))


def print_manifest(manifest: dict[str, Any], out_dir: Path) -> None:
    info = manifest["info"]
    t = Table(
        title=f"{info['name']}: {len(info['class_names'])} classes, {manifest['image_shape']}"
    )
    for col in ("split", "images", "clean labels", "noise rate", "dropped (CSV)", "bad skipped"):
        t.add_column(col, justify="left" if col == "split" else "right")
    for split, s in manifest["splits"].items():
        dropped = sum(s["dropped_before_decoding"].values())
        t.add_row(
            split,
            str(s["count"]),
            "yes" if s["clean_known"] else "no",
            pct(s["realised_noise_rate"], digits=1, missing="-", unit="%"),
            str(dropped),
            str(s["skipped_bad_images"]),
        )
    console.print(t)
    for split, s in manifest["splits"].items():
        carved = s["labels_from"].get("carved_from_train")
        if carved:
            console.print(
                f"  {split}: carved from the train CSV ({carved['fraction']:g} of the "
                f"{carved.get('group') or carved.get('group_column') or 'row'}s, seed "
                f"{carved['seed']})",
                highlight=False,
            )
        for reason, n in s["dropped_before_decoding"].items():
            console.print(f"  {s['csv']}: dropped {n} row(s): {reason}", highlight=False)
    for pair, n in manifest.get("split_overlap", {}).items():
        console.print(
            f"[bold yellow]warning:[/] {n} image(s) appear in both {pair.replace('/', ' and ')}",
            highlight=False,
        )
    how = (
        "reused (up to date)"
        if manifest.get("reused")
        else (f"{manifest['images_per_second']:.0f} images/s, {manifest['workers']} workers")
    )
    console.print(f"cache: {out_dir} ({how})", highlight=False)


def prepare(
    dataset: Annotated[
        str, typer.Argument(help="preset (drtid, kaggledr+, chexpert) or a dataset spec YAML")
    ],
    root: Annotated[Path, typer.Option(help="folder with the dataset's CSV files and images")],
    size: Annotated[int, typer.Option(help="image side in px after resizing (any int)")] = 224,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="cache root (default $LNMBENCH_DATA or ~/.cache/lnmbench)"),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="cache folder (default DATA_DIR/prepared/NAME/SIZEpx)"),
    ] = None,
    resize: Annotated[
        str, typer.Option(help="aspect handling: crop (centre), pad (black) or stretch")
    ] = "crop",
    workers: Annotated[
        int | None, typer.Option(help="decoding threads (default: CPU count)")
    ] = None,
    skip_bad: Annotated[
        bool, typer.Option(help="skip missing/unreadable images (counted in the manifest)")
    ] = False,
    hash_images: Annotated[
        bool, typer.Option(help="record the SHA-256 of every source image")
    ] = True,
    fast_decode: Annotated[
        bool, typer.Option(help="JPEG DCT-scaled decoding (faster, not pixel-exact)")
    ] = True,
    force: Annotated[bool, typer.Option(help="replace an existing cache")] = False,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="preset option KEY=VALUE, e.g. uncertain=u-ones (repeatable)"),
    ] = None,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
) -> None:
    """Decode a real-world or user CSV dataset once into a memory-mapped cache for training."""
    from lnmbench.data.catalog import default_data_dir
    from lnmbench.data.prepare import prepare_source
    from lnmbench.data.prepared_cache import prepared_dir
    from lnmbench.data.real_world import PRESETS

    try:
        source = read_source(dataset, root, parse_set(set_))
        name = source.info.name
        out_dir = out or prepared_dir(data_dir or default_data_dir(), name, size)
        manifest = prepare_source(
            source,
            out_dir,
            size=size,
            resize=resize,  # type: ignore[arg-type]
            workers=workers,
            skip_bad=skip_bad,
            hash_images=hash_images,
            fast_decode=fast_decode,
            force=force,
            progress=progress and sys.stderr.isatty(),
        )
    except LnmbenchError as exc:
        fail(exc)
    print_manifest(manifest, out_dir)
    if name in PRESETS:
        rate = PRESETS.get(name).assumed_noise_rate
        data = f" --data-dir {data_dir}" if data_dir else ""
        hint = f"--dataset {name} --size {size}{data}" if out is None else f"--dataset {out_dir}"
        console.print(
            f"train: lnmbench run {hint} --noise realworld --assumed-noise-rate {rate:g} "
            "(the reference rate, for methods that need one)",
            highlight=False,
        )
    else:
        console.print(f"train: lnmbench run --dataset {out_dir} ...", highlight=False)
