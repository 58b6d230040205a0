"""Run an audit end to end: load the labels as given, cross-fit, score, write the outputs.

Outputs in ``out``:

- ``suspects.csv``: one row per audited sample, most suspect first: ``rank``, ``index`` (row in
  the audited split), ``name`` (image name for prepared CSV datasets), ``given``, ``suggested``
  (argmax of the out-of-fold probabilities), ``score`` (combined suspicion), one column per
  signal, ``flagged`` (within the audit's top n̂) and ``p_<class>`` (out-of-fold probabilities);
- ``pred_probs.npy``: (N, C) float32 out-of-fold probabilities, rows in index order;
- ``noise_rates.csv`` and ``transition_matrix.csv`` (cleanlab's confident joint; skipped, and
  said so, when cleanlab is not installed);
- ``audit.json``: settings, timings, the signals and how they are combined, estimates, and,
  when clean labels are known (planted noise, or a real-world set with a clean column), the
  detection scores of every signal (``evaluation``; never used by the audit itself);
- ``audit.html``: the self-contained report page; ``folds/``: the per-fold records (resume).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from lnmbench.atomic_files import atomic_write_text
from lnmbench.audit.confident_joint import INSTALL_HINT, ConfidentJoint, confident_joint_estimate
from lnmbench.audit.crossfit import CrossFitSettings, EpochCallback, cross_fit_dynamics
from lnmbench.audit.evaluation import grade, top_k
from lnmbench.audit.html import PageData, Suspect, render
from lnmbench.audit.scoring import Scored, flag_count, score_records
from lnmbench.audit.signals import DEFAULT_COMBINED, parse_signals
from lnmbench.data import Dataset, load_dataset
from lnmbench.errors import ConfigError

AUDIT_SPLITS = ("train", "val", "test", "all")


@dataclass
class AuditedLabels:
    """The audited set: images (N, C, H, W) uint8, given labels (N,), clean labels (N,) or None,
    image names (N,) or None, and where the given labels came from."""

    images: torch.Tensor
    given: np.ndarray
    clean: np.ndarray | None
    names: list[str] | None
    source: str


def audited_labels(
    ds: Dataset, split: str, noise: str | None = None, rate: float | None = None, seed: int = 0
) -> AuditedLabels:
    """The images and *given* labels of ``split`` (the noisy column of a real-world set, else the
    labels), optionally with synthetic ``noise`` planted (then the clean labels are known)."""
    if split not in AUDIT_SPLITS:
        raise ConfigError(f"unknown split {split!r}; known: {', '.join(AUDIT_SPLITS)}")
    parts = ("train", "val", "test") if split == "all" else (split,)
    imgs, given, clean, names = [], [], [], []
    clean_known = True
    real = False
    for s in parts:
        p = ds[s]
        imgs.append(p.images)
        if p.noisy_labels is not None:
            real = True
            given.append(p.noisy_labels.numpy())
            clean_known &= bool(ds.extra.get("clean_known", {}).get(s, True))
        else:
            given.append(p.labels.numpy())
        clean.append(p.labels.numpy())
        split_names = ds.extra.get("names", {}).get(s)
        names.extend(split_names if split_names is not None else [""] * len(p))
    images = torch.cat(imgs) if len(imgs) > 1 else imgs[0]
    y = np.concatenate(given).astype(np.int64)
    y_clean: np.ndarray | None = np.concatenate(clean).astype(np.int64)
    source = "noisy column (real-world labels)" if real else "labels of the dataset"
    if noise is not None:
        if real:
            raise ConfigError(
                f"{ds.info.name} carries its own noisy labels; do not plant --noise on it"
            )
        from lnmbench.noise import make_noisy_labels

        y = make_noisy_labels(noise, y, ds.info.num_classes, rate, seed, images=images.numpy())
        y = y.noisy.astype(np.int64)
        source = f"labels with planted {noise} {rate:g} noise (seed {seed})"
    elif not real:
        y_clean = None  # the given labels are all there is
    if real and not clean_known:
        y_clean = None
    return AuditedLabels(images, y, y_clean, names if any(names) else None, source)


@dataclass
class AuditConfig:
    """Settings of one audit (the CLI's options)."""

    dataset: str
    out: Path = Path("audit")
    split: str = "train"
    folds: int = 5
    model: str = "cnn"
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    augment: str = "standard"
    signals: tuple[str, ...] = DEFAULT_COMBINED  # combined into the score (all are reported)
    top: int = 100
    seed: int = 0
    device: str = "auto"
    size: int = 28
    data_dir: Path | None = None
    root: Path | None = None  # CSV spec datasets: the folder with the CSV files and images
    noise: str | None = None  # plant synthetic noise (for trying the audit on clean data)
    rate: float | None = None


def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda when available, else cpu; a CUDA device without CUDA is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but CUDA is not available; use --device cpu")
    return dev


def open_dataset(cfg: AuditConfig) -> Dataset:
    """Registered name, ``.npz`` path, prepared cache, or CSV spec YAML (+ ``root``, prepared
    once into ``<out>/prepared``)."""
    if cfg.dataset.endswith((".yaml", ".yml")):
        from lnmbench.data.csv_dataset import read_spec_source
        from lnmbench.data.csv_spec import load_spec
        from lnmbench.data.prepare import prepare_source
        from lnmbench.data.prepared_cache import open_prepared

        if cfg.root is None:
            raise ConfigError("a CSV dataset spec needs --root (the folder of its CSV files)")
        cache = cfg.out / "prepared"
        prepare_source(read_spec_source(load_spec(cfg.dataset), cfg.root), cache, size=cfg.size)
        return open_prepared(cache)
    return load_dataset(cfg.dataset, size=cfg.size, data_dir=cfg.data_dir)


@dataclass
class AuditResult:
    """What :func:`run_audit` produced (paths and the in-memory scores)."""

    out: Path
    scored: Scored
    labels: AuditedLabels
    confident_joint: ConfidentJoint | None
    summary: dict[str, Any]


def run_audit(
    cfg: AuditConfig,
    *,
    on_epoch: EpochCallback | None = None,
    on_fold_loaded: Callable[[int], None] | None = None,
    dataset: Dataset | None = None,
) -> AuditResult:
    """Audit ``cfg.dataset`` and write the outputs listed in the module docstring."""
    t_start = time.perf_counter()
    signals = parse_signals(list(cfg.signals))
    if cfg.top < 1:
        raise ConfigError(f"--top must be >= 1, got {cfg.top}")
    settings = CrossFitSettings(
        folds=cfg.folds,
        model=cfg.model,
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        augment=cfg.augment,
        seed=cfg.seed,
    )
    device = resolve_device(cfg.device)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    ds = dataset if dataset is not None else open_dataset(cfg)
    data = audited_labels(ds, cfg.split, cfg.noise, cfg.rate, cfg.seed)
    c = ds.info.num_classes
    loaded: list[int] = []

    def fold_loaded(k: int) -> None:
        loaded.append(k)
        if on_fold_loaded is not None:
            on_fold_loaded(k)

    t0 = time.perf_counter()
    records = cross_fit_dynamics(
        data.images,
        data.given,
        c,
        settings,
        device=device,
        fold_dir=out / "folds",
        on_epoch=on_epoch,
        on_fold_loaded=fold_loaded,
    )
    train_s = time.perf_counter() - t0
    scored = score_records(records, data.given, seed=cfg.seed, combined_from=signals)
    cj = confident_joint_estimate(data.given, scored.pred_probs)
    summary = write_outputs(cfg, ds, data, scored, cj, settings, train_s, len(loaded))
    summary["time_s"]["total"] = time.perf_counter() - t_start
    atomic_write_text(out / "audit.json", json.dumps(summary, indent=1, default=_json_default))
    return AuditResult(out, scored, data, cj, summary)


def _json_default(x: Any) -> Any:
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.floating):
        return float(x)
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON serialisable: {type(x)}")


def _suspects_frame(
    data: AuditedLabels, scored: Scored, class_names: list[str], flagged: np.ndarray
) -> pd.DataFrame:
    n = data.given.size
    order = np.lexsort((np.arange(n), -scored.combined))
    frame: dict[str, Any] = {
        "rank": np.arange(1, n + 1),
        "index": order,
    }
    if data.names is not None:
        frame["name"] = [data.names[i] for i in order]
    frame["given"] = data.given[order]
    frame["given_name"] = [class_names[i] for i in data.given[order]]
    frame["suggested"] = scored.suggested[order]
    frame["suggested_name"] = [class_names[i] for i in scored.suggested[order]]
    frame["score"] = scored.combined[order]
    for k, v in scored.signals.items():
        frame[k] = v[order]
    frame["flagged"] = flagged[order]
    for j in range(len(class_names)):
        frame[f"p_{j}"] = scored.pred_probs[order, j]
    return pd.DataFrame(frame)


def write_outputs(
    cfg: AuditConfig,
    ds: Dataset,
    data: AuditedLabels,
    scored: Scored,
    cj: ConfidentJoint | None,
    settings: CrossFitSettings,
    train_s: float,
    folds_loaded: int = 0,
) -> dict[str, Any]:
    """suspects.csv, pred_probs.npy, noise_rates.csv, transition_matrix.csv, audit.html; returns
    the summary dict (written as audit.json by the caller)."""
    out = Path(cfg.out)
    names = list(ds.info.class_names)
    c = len(names)
    n = data.given.size
    n_hat, n_hat_rule = flag_count(scored, None if cj is None else cj.issues)
    flagged = top_k(scored.combined, n_hat)
    frame = _suspects_frame(data, scored, names, flagged)
    tmp = out / ".suspects.csv.tmp"
    frame.to_csv(tmp, index=False, float_format="%.6g")
    tmp.replace(out / "suspects.csv")
    np.save(out / ".pred_probs.tmp.npy", scored.pred_probs)
    (out / ".pred_probs.tmp.npy").replace(out / "pred_probs.npy")

    counts = np.bincount(data.given, minlength=c)
    flagged_frac = np.divide(
        np.bincount(data.given[flagged], minlength=c), counts, out=np.zeros(c), where=counts > 0
    )
    notes = []
    rates: dict[str, Any] = {
        "class": list(range(c)),
        "class_name": names,
        "given_count": counts,
        "flagged_by_audit": np.bincount(data.given[flagged], minlength=c),
        "flagged_fraction": flagged_frac,
    }
    if cj is not None:
        rates["estimated_wrong_fraction"] = cj.wrong_given
        rates["estimated_flip_rate_clean"] = cj.flip_rate
        t = pd.DataFrame(cj.transition, columns=[f"given_{j}" for j in range(c)])
        t.insert(0, "clean", list(range(c)))
        t.to_csv(out / "transition_matrix.csv", index=False, float_format="%.6g")
    else:
        notes.append(
            "cleanlab is not installed: the confident-joint estimate (per-class noise rates, "
            f"transition matrix) is skipped; {INSTALL_HINT}"
        )
        (out / "transition_matrix.csv").unlink(missing_ok=True)
    pd.DataFrame(rates).to_csv(out / "noise_rates.csv", index=False, float_format="%.6g")

    evaluation = None
    if data.clean is not None:
        is_noisy = data.given != data.clean
        evaluation = {
            "true_wrong_labels": int(is_noisy.sum()),
            "note": "clean labels were known; used only for this evaluation, never by the audit",
            "combined": grade(scored.combined, flagged, is_noisy),
            **{k: grade(v, top_k(v, n_hat), is_noisy) for k, v in scored.signals.items()},
        }
        if cj is not None:
            evaluation["cleanlab"] = grade(-cj.quality, cj.issues, is_noisy)

    summary: dict[str, Any] = {
        "dataset": ds.info.name,
        "split": cfg.split,
        "labels": data.source,
        "n": int(n),
        "num_classes": c,
        "class_names": names,
        "settings": asdict(settings),
        "device": cfg.device,
        "signals": list(scored.signals),
        "combined_from": list(scored.combined_from),
        "combination": "mean of the signals' scaled ranks (rank average)",
        "estimated_issues": int(n_hat),
        "estimated_issues_rule": n_hat_rule,
        "oof_agreement_with_given": float(np.mean(scored.suggested == data.given)),
        "confident_joint": None
        if cj is None
        else {
            "num_issues": cj.num_issues,
            "wrong_fraction_per_given_class": cj.wrong_given,
            "transition_matrix": cj.transition,
        },
        "notes": notes,
        "evaluation": evaluation,
        "time_s": {"cross_fit": train_s},
        "folds_loaded": folds_loaded,
    }
    top = min(cfg.top, n)
    order = np.array(frame["index"].to_numpy()[:top], dtype=np.int64)
    imgs = data.images[torch.as_tensor(order, dtype=torch.long)].numpy()
    suspects = [
        Suspect(
            index=int(i),
            image=imgs[r],
            given=names[int(data.given[i])],
            suggested=names[int(scored.suggested[i])],
            score=float(scored.combined[i]),
            name=data.names[i] if data.names is not None else "",
        )
        for r, i in enumerate(order)
    ]
    meta = [
        f"{n} samples of split {cfg.split!r}, {c} classes; labels: {data.source}",
        f"cross-fit: {settings.folds} folds × {settings.epochs} epochs of {settings.model} "
        f"({settings.augment} augmentation, seed {settings.seed}) in {train_s:.0f} s"
        + (
            f" ({folds_loaded} of {settings.folds} folds loaded from an earlier run)"
            if folds_loaded
            else ""
        ),
        f"score = rank average of {', '.join(scored.combined_from)}; flagged: the top "
        f"n̂ = {n_hat} ({100 * n_hat / max(n, 1):.1f}%; {n_hat_rule})",
    ]
    tables = []
    if evaluation is not None:
        rows = [
            [
                k,
                f"{100 * v['auroc']:.1f}",
                f"{100 * v['precision_at_k']:.1f}",
                f"{100 * v['f1']:.1f}",
                str(v["n_flagged"]),
            ]
            for k, v in evaluation.items()
            if isinstance(v, dict)
        ]
        tables.append(
            (
                f"Detection against the known clean labels ({evaluation['true_wrong_labels']} "
                "wrong labels; evaluation only)",
                ["detector", "AUROC %", "precision@k %", "F1 %", "flagged"],
                rows,
            )
        )
    page = PageData(
        title=f"lnmbench audit — {ds.info.name}",
        meta=meta,
        class_names=names,
        suspects=suspects,
        flagged_fraction=flagged_frac,
        given_counts=counts,
        cleanlab_wrong=None if cj is None else cj.wrong_given,
        transition=None if cj is None else cj.transition,
        notes=notes,
        tables=tables,
    )
    atomic_write_text(out / "audit.html", render(page))
    return summary
