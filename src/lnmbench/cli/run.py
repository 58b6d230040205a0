"""``lnmbench run``: train one method on one dataset and noise setting; print the summary."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from lnmbench.cli.console import console, fail, pct
from lnmbench.cli.values import parse_set
from lnmbench.errors import LnmbenchError


def check_out_root(out: Path) -> None:
    """``--out`` must be a folder (or not exist yet) that this process can write into."""
    if out.exists() and not out.is_dir():
        raise LnmbenchError(f"--out {out} is a file, not a folder of run folders")
    probe = out if out.exists() else next((p for p in out.parents if p.exists()), Path("."))
    if not probe.is_dir():
        raise LnmbenchError(f"--out {out}: {probe} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise LnmbenchError(f"--out {out}: cannot write into {probe} (permission denied)")


def file_system_error(exc: OSError) -> str:
    """One line for an OSError: what failed, on which path, and that the run resumes."""
    where = f" at {exc.filename}" if exc.filename else ""
    return (
        f"file system error{where}: {exc.strerror or exc}; fix it (free space, permissions) "
        "and run the same command again: the run resumes from its last checkpoint"
    )


def print_summary(summary: dict[str, Any], folder: str) -> None:
    t = Table(
        title=f"{summary['method']} on {summary['dataset']} — "
        f"{summary['noise']} {summary['rate']:g}, seed {summary['seed']}"
    )
    t.add_column("test metric (%)")
    t.add_column("last-5 mean", justify="right")
    t.add_column("at best noisy-val epoch", justify="right")
    t.add_column("final", justify="right")
    for name, m in summary["metrics"].items():
        label = name + " (lower is better)" if name in ("ece", "fpr95") else name
        t.add_row(label, pct(m["last5"]), pct(m["best_val"]), pct(m["final"]))
    console.print(t)
    rr = summary["realised_noise_rate"]
    head = summary["headline"]
    console.print(
        f"headline ({head['head']} head): [bold]{pct(head['value'])}%[/] test accuracy "
        f"(mean of last 5 epochs); best noisy-val epoch {summary['best_val_epoch']}; "
        f"realised noise rate train {pct(rr['train'])}%, val {pct(rr['val'])}%",
        highlight=False,
    )
    tm = summary["time"]
    console.print(
        f"time {tm['epoch_s']:.1f} s ({tm['train_images_per_s']:.0f} train images/s; "
        f"data {tm['data_s']:.1f} s, compute {tm['compute_s']:.1f} s) — run folder: {folder}",
        highlight=False,
    )


def run(
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="run.yaml with any of the settings")
    ] = None,
    method: Annotated[str | None, typer.Option(help="method name (lnmbench methods)")] = None,
    dataset: Annotated[
        str | None, typer.Option(help="dataset name or path to a MedMNIST-layout .npz")
    ] = None,
    noise: Annotated[
        str | None, typer.Option(help="noise generator (lnmbench noise --list)")
    ] = None,
    rate: Annotated[float | None, typer.Option(help="nominal noise rate in [0, 1)")] = None,
    seed: Annotated[
        int | None, typer.Option(help="run seed (also the noise seed unless --noise-seed)")
    ] = None,
    noise_seed: Annotated[
        int | None, typer.Option(help="noise seed, if different from the run seed")
    ] = None,
    model: Annotated[str | None, typer.Option(help="backbone (lnmbench models)")] = None,
    epochs: Annotated[int | None, typer.Option(help="training epochs")] = None,
    preset: Annotated[
        str | None,
        typer.Option(
            help="fast (CPU protocol, 28 px), fast-augmented, lnmbench (paper), lnmbench-faithful"
        ),
    ] = None,
    size: Annotated[
        int | None, typer.Option(help="image size (MedMNIST: 28, 64, 128, 224)")
    ] = None,
    assumed_noise_rate: Annotated[
        float | None,
        typer.Option(help="noise rate given to methods that need one (real-world data)"),
    ] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="method hyperparameter KEY=VALUE (repeatable)")
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="dataset folder (default $LNMBENCH_DATA or ~/.cache/lnmbench)"),
    ] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda, cuda:1 ...")] = None,
    out: Annotated[Path, typer.Option(help="root folder of run folders")] = Path("runs"),
    keep_checkpoint: Annotated[bool, typer.Option(help="keep checkpoint.pt after the run")] = False,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
    wait: Annotated[
        bool, typer.Option(help="if another process is running this run, wait for it to finish")
    ] = False,
) -> None:
    """Train one method on one dataset and noise setting; print the summary.

    With no options: ce on the bundled demo dataset, symmetric noise 0.4, fast preset.
    """
    from lnmbench.experiment.config import load_config_file, resolve_config
    from lnmbench.experiment.run import run_exclusive

    try:
        user: dict[str, Any] = load_config_file(config) if config else {}
        flags = {
            "method": method,
            "dataset": dataset,
            "seed": seed,
            "model": model,
            "epochs": epochs,
            "preset": preset,
            "size": size,
            "assumed_noise_rate": assumed_noise_rate,
            "device": device,
            "data_dir": str(data_dir) if data_dir else None,
        }
        user.update({k: v for k, v in flags.items() if v is not None})
        noise_over = {
            k: v
            for k, v in {"name": noise, "rate": rate, "seed": noise_seed}.items()
            if v is not None
        }
        if noise_over:
            user["noise"] = {**(user.get("noise") or {}), **noise_over}
        if set_:
            user["hparams"] = {**(user.get("hparams") or {}), **parse_set(set_)}
        if keep_checkpoint:
            user["keep_checkpoint"] = True
        user["progress"] = progress and sys.stderr.isatty()
        cfg = resolve_config(user, where=str(config) if config else "command line")
        check_out_root(out)
        console.print(f"run folder: {out / cfg.run_name()}", highlight=False)
        summary = run_exclusive(cfg, out, wait=wait)
    except LnmbenchError as exc:
        fail(exc)
    except OSError as exc:  # disk full, read-only folder, ...: the run resumes once fixed
        fail(file_system_error(exc))
    print_summary(summary, str(out / cfg.run_name()))
