"""``lnmbench noise``: generate (or load) noisy labels and show what they did; list generators."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.table import Table

from lnmbench.cli.console import console, fail
from lnmbench.cli.values import parse_set
from lnmbench.errors import LnmbenchError


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

    from lnmbench.data import default_data_dir, is_path_like, load_dataset
    from lnmbench.data.digest import dataset_digest
    from lnmbench.experiment.run import noise_cache_key
    from lnmbench.noise import NOISE, accepted_params, noise_splits, plot_transition, report_table

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
        splits = ["train", "val"] if split == "both" else [split]
        if split not in ("train", "val", "both"):
            raise LnmbenchError(
                f"unknown split {split!r}; known: train, val, both (test is never noised)"
            )
        NOISE.get(noise_name)  # an unknown generator is refused before the dataset is read
        params = parse_set(param, "--param")
        ds = load_dataset(dataset, size=size, data_dir=data_dir)
        noisy = noise_splits(
            ds,
            noise_name,
            rate,
            seed,
            params,
            cache_dir=(data_dir or default_data_dir()) / "noise_cache",
            cache_key=noise_cache_key(
                ds.info.name, size, dataset_digest(dataset) if is_path_like(dataset) else None
            ),
            what=dataset,
        )
        for s in splits:
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
        fail(exc)
