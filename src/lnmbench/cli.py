"""The ``lnmbench`` command line (typer)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from lnmbench.cli_values import parse_set
from lnmbench.errors import LnmbenchError

app = typer.Typer(
    help="lnmbench: benchmark learning-with-noisy-labels methods on medical images.",
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()


def _fail(exc: Exception) -> None:
    console.print(f"[bold red]error:[/] {exc}", highlight=False)
    raise typer.Exit(2)


def _pct(x: float | None) -> str:
    return "n/a" if x is None or x != x else f"{100 * x:.2f}"


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
        t.add_row(label, _pct(m["last5"]), _pct(m["best_val"]), _pct(m["final"]))
    console.print(t)
    rr = summary["realised_noise_rate"]
    head = summary["headline"]
    console.print(
        f"headline ({head['head']} head): [bold]{_pct(head['value'])}%[/] test accuracy "
        f"(mean of last 5 epochs); best noisy-val epoch {summary['best_val_epoch']}; "
        f"realised noise rate train {_pct(rr['train'])}%, val {_pct(rr['val'])}%",
        highlight=False,
    )
    tm = summary["time"]
    console.print(
        f"time {tm['epoch_s']:.1f} s ({tm['train_images_per_s']:.0f} train images/s; "
        f"data {tm['data_s']:.1f} s, compute {tm['compute_s']:.1f} s) — run folder: {folder}",
        highlight=False,
    )


@app.command()
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
) -> None:
    """Train one method on one dataset and noise setting; print the summary.

    With no options: ce on the bundled demo dataset, symmetric noise 0.4, fast preset.
    """
    from lnmbench.experiment.config import load_config_file, resolve_config
    from lnmbench.experiment.run import run_one

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
        console.print(f"run folder: {out / cfg.run_name()}", highlight=False)
        summary = run_one(cfg, out)
    except LnmbenchError as exc:
        _fail(exc)
    print_summary(summary, str(out / cfg.run_name()))


@app.command()
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


@app.command()
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


@app.command()
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


def show_run_transition(run_dir: Path, heatmap: Path | None) -> None:
    """Print a run's empirical T (train noise) beside its method's estimate T̂, error, heatmap."""
    import json

    import numpy as np

    from lnmbench.metrics import transition_estimation_error
    from lnmbench.noise import plot_transition

    est_path, noise_path = run_dir / "transition_estimate.npy", run_dir / "noise.json"
    for p in (noise_path, est_path):
        if not p.exists():
            what = "its method keeps no estimate of T" if p == est_path else "not a run folder"
            raise LnmbenchError(f"{p} not found: {what}")
    report = json.loads(noise_path.read_text())["train"]
    if report.get("transition_matrix") is None:
        raise LnmbenchError(f"{run_dir}: no clean training labels, so no empirical T to compare")
    t_emp = np.array(
        [[np.nan if v is None else v for v in row] for row in report["transition_matrix"]]
    )
    t_hat = np.load(est_path)
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    err = transition_estimation_error(t_hat, t_emp)
    console.print(f"empirical T of {run_dir.name} (train; rows = clean class):")
    console.print(np.array2string(t_emp, precision=3, suppress_small=True))
    console.print(f"estimated T̂ ({cfg['method']}):")
    console.print(np.array2string(t_hat, precision=3, suppress_small=True))
    console.print(f"estimation error sum|T̂-T| / sum|T| = {err:.4f}", highlight=False)
    if heatmap is not None:
        title = f"{cfg['noise']['name']} {cfg['noise']['rate']:g} on {cfg['dataset']}"
        plot_transition(t_emp, heatmap, title=title, estimate=t_hat)
        console.print(f"heatmap written to {heatmap}", highlight=False)


@app.command()
def noise(
    dataset: Annotated[str, typer.Option(help="dataset name or .npz path")] = "demo",
    noise_name: Annotated[str, typer.Option("--noise", help="noise generator")] = "symmetric",
    rate: Annotated[float, typer.Option(help="nominal noise rate in [0, 1)")] = 0.4,
    seed: Annotated[int, typer.Option(help="noise seed")] = 0,
    size: Annotated[int, typer.Option(help="image size")] = 28,
    split: Annotated[str, typer.Option(help="train, val or both")] = "both",
    param: Annotated[
        list[str] | None, typer.Option("--param", help="generator parameter KEY=VALUE")
    ] = None,
    heatmap: Annotated[
        Path | None, typer.Option(help="write the empirical T as a heatmap PNG")
    ] = None,
    run_dir: Annotated[
        Path | None,
        typer.Option("--run", help="a run folder: show its estimated T beside the true one"),
    ] = None,
    data_dir: Annotated[Path | None, typer.Option(help="dataset folder")] = None,
    list_: Annotated[
        bool, typer.Option("--list", help="list the generators and their parameters")
    ] = False,
) -> None:
    """Generate (or load from cache) noisy labels; print realised rate, per-class flips and T."""
    import numpy as np

    from lnmbench.data import default_data_dir, load_dataset
    from lnmbench.experiment.config import resolve_config
    from lnmbench.experiment.run import split_noise
    from lnmbench.noise import NOISE, accepted_params, plot_transition, report_table

    if list_:
        t = Table(title="noise generators")
        t.add_column("name")
        t.add_column("parameters (defaults)")
        for name in NOISE.names():
            t.add_row(name, ", ".join(f"{k}={v}" for k, v in accepted_params(name).items()))
        console.print(t)
        return
    try:
        if run_dir is not None:
            show_run_transition(run_dir, heatmap)
            return
        cfg = resolve_config(
            {
                "dataset": dataset,
                "size": size,
                "seed": seed,
                "data_dir": str(data_dir) if data_dir else None,
                "noise": {"name": noise_name, "rate": rate, "params": parse_set(param)},
            }
        )
        ds = load_dataset(cfg.dataset, size=cfg.size, data_dir=cfg.data_dir)
        noisy = split_noise(cfg, ds, Path(cfg.data_dir) if cfg.data_dir else default_data_dir())
        splits = ["train", "val"] if split == "both" else [split]
        for s in splits:
            if s not in noisy:
                raise LnmbenchError(
                    f"unknown split {s!r}; known: train, val, both (test is never noised)"
                )
            console.print(report_table(noisy[s]))
            t_emp = noisy[s].transition_matrix
            if t_emp is not None:
                console.print(f"empirical transition matrix T ({s}; rows = clean class):")
                console.print(np.array2string(t_emp, precision=3, suppress_small=True))
        if heatmap is not None and run_dir is None:
            t_emp = noisy["train" if "train" in splits else splits[0]].transition_matrix
            if t_emp is None:
                raise LnmbenchError("no clean labels: the empirical T is not available")
            plot_transition(t_emp, heatmap, title=f"{noise_name} {rate:g} on {ds.info.name}")
            console.print(f"heatmap written to {heatmap}", highlight=False)
    except LnmbenchError as exc:
        _fail(exc)


from lnmbench import cli_grid, cli_report  # noqa: E402
from lnmbench.cli_prepare import prepare  # noqa: E402

app.command()(prepare)
app.command("grid")(cli_grid.grid)
app.command("results")(cli_grid.results)
app.command("report")(cli_report.report)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
