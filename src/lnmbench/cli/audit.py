"""``lnmbench audit``: find the suspect labels of a dataset (see :mod:`lnmbench.audit`).

Registered in ``lnmbench.cli`` with ``app.command("audit")(audit)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from lnmbench.cli.console import console, fail
from lnmbench.errors import LnmbenchError


def audit(
    dataset: Annotated[
        str,
        typer.Argument(
            help="registered name, MedMNIST-layout .npz, prepared cache folder, or CSV spec YAML"
        ),
    ],
    folds: Annotated[int, typer.Option(help="cross-fitting folds K")] = 5,
    model: Annotated[str, typer.Option(help="backbone (lnmbench models)")] = "cnn",
    epochs: Annotated[int, typer.Option(help="training epochs per fold")] = 10,
    signals: Annotated[
        str | None,
        typer.Option(
            help="signals combined into the score, comma-separated (default: the benchmarked "
            "set; every signal is reported anyway; docs/audit.md)"
        ),
    ] = None,
    top: Annotated[int, typer.Option(help="suspects shown in audit.html")] = 100,
    out: Annotated[Path, typer.Option(help="output folder")] = Path("audit"),
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:1 ...")] = "auto",
    split: Annotated[str, typer.Option(help="train, val, test or all")] = "train",
    seed: Annotated[int, typer.Option(help="folds, initialisation and augmentation seed")] = 0,
    batch_size: Annotated[int, typer.Option(help="training batch size")] = 128,
    lr: Annotated[float, typer.Option(help="Adam learning rate")] = 1e-3,
    augment: Annotated[
        str, typer.Option(help="training augmentation preset (none, standard, weak, medical)")
    ] = "standard",
    size: Annotated[int, typer.Option(help="image size (MedMNIST: 28, 64, 128, 224)")] = 28,
    data_dir: Annotated[
        Path | None, typer.Option(help="dataset folder (default $LNMBENCH_DATA)")
    ] = None,
    root: Annotated[
        Path | None, typer.Option(help="CSV spec datasets: folder with the CSV files and images")
    ] = None,
    noise: Annotated[
        str | None,
        typer.Option(help="plant synthetic noise first (to try the audit on clean labels)"),
    ] = None,
    rate: Annotated[float | None, typer.Option(help="rate of the planted noise")] = None,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
) -> None:
    """Find the suspect labels of a dataset: cross-fitted training + training-dynamics signals."""
    from lnmbench.audit.run import AuditConfig, run_audit
    from lnmbench.audit.signals import parse_signals

    try:
        cfg = AuditConfig(
            dataset=dataset,
            out=out,
            split=split,
            folds=folds,
            model=model,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            augment=augment,
            signals=parse_signals(signals),
            top=top,
            seed=seed,
            device=device,
            size=size,
            data_dir=data_dir,
            root=root,
            noise=noise,
            rate=rate,
        )
        bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=not progress,
            transient=False,
        )
        with bar:
            t_folds = bar.add_task("folds", total=folds)
            t_epochs = bar.add_task("epochs (fold 1)", total=epochs)

            def on_epoch(k: int, e: int, total: int) -> None:
                bar.update(t_epochs, completed=e + 1, description=f"epochs (fold {k + 1})")
                if e + 1 == total:
                    bar.advance(t_folds)

            def on_loaded(k: int) -> None:
                bar.advance(t_folds)
                bar.update(t_epochs, completed=epochs, description=f"fold {k + 1} (saved)")

            result = run_audit(cfg, on_epoch=on_epoch, on_fold_loaded=on_loaded)
    except LnmbenchError as exc:
        fail(exc)
    print_result(result)


def print_result(result) -> None:  # result: lnmbench.audit.run.AuditResult
    s = result.summary
    names = s["class_names"]
    console.print(
        f"{s['dataset']}: {s['n']} samples audited ({s['labels']}); flagged "
        f"{s['estimated_issues']} ({100 * s['estimated_issues'] / max(s['n'], 1):.1f}%: "
        f"{s['estimated_issues_rule']})",
        highlight=False,
    )
    for note in s["notes"]:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    frame = result.scored
    t = Table(title="top 10 suspects")
    for col in ("rank", "index", "given", "suggested", "score"):
        t.add_column(col, justify="right" if col in ("rank", "index", "score") else "left")
    import numpy as np

    order = np.lexsort((np.arange(frame.combined.size), -frame.combined))[:10]
    for r, i in enumerate(order, start=1):
        t.add_row(
            str(r),
            str(i),
            names[int(result.labels.given[i])],
            names[int(frame.suggested[i])],
            f"{frame.combined[i]:.3f}",
        )
    console.print(t)
    ev = s.get("evaluation")
    if ev:
        e = Table(title=f"detection vs the known clean labels ({ev['true_wrong_labels']} wrong)")
        for col in ("detector", "AUROC %", "precision@k %", "F1 %"):
            e.add_column(col, justify="left" if col == "detector" else "right")
        for k, v in ev.items():
            if isinstance(v, dict):
                e.add_row(
                    k,
                    f"{100 * v['auroc']:.1f}",
                    f"{100 * v['precision_at_k']:.1f}",
                    f"{100 * v['f1']:.1f}",
                )
        console.print(e)
    console.print(
        f"outputs in {result.out}: suspects.csv, pred_probs.npy, noise_rates.csv, "
        f"{'transition_matrix.csv, ' if s['confident_joint'] else ''}audit.json, audit.html "
        f"({s['time_s']['total']:.0f} s)",
        highlight=False,
    )
