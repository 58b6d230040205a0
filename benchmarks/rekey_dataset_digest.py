"""Re-key benchmark runs made before the dataset's content digest entered the run hash.

Since the reliability work, a run on a dataset given by path (``../shared/data/*.npz``) has the
file's SHA-256 in its config (``dataset_digest``) and so in its config hash and folder name; the
runs made before carry no digest, so ``benchmarks/validity.py`` and ``benchmarks/medssl.py``
would train them again. This script attaches the digest of the file as it is now, **only after
checking that the run saw the same data**: the noisy train and val labels regenerated from the
current file must have the SHA-256 the run recorded, and a finished run's stored test labels must
equal the file's. A run that fails a check is left alone (it is trained again). Unfinished runs
are re-keyed too and resume from their checkpoint.

For each such run folder it writes a copy under the new name (config.yaml with the digest,
summary.json with the new hash and name; the old folder is kept) and rewrites the old hash to
the new one in the result tables (validity.csv, validity_curves.csv, medssl.csv and
medssl_curves.csv under ``--results``), so the tables and the folders agree.

    python benchmarks/rekey_dataset_digest.py --runs runs/validity [--dry-run]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from lnmbench.data import default_data_dir, load_dataset
from lnmbench.data.digest import dataset_digest
from lnmbench.engine.run_folder import RunFolder
from lnmbench.experiment.config import RunConfig
from lnmbench.noise.splits import noise_splits

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
TABLES = ("validity.csv", "validity_curves.csv", "medssl.csv", "medssl_curves.csv")


def check_same_data(folder: Path, cfg: RunConfig, data_dir: Path) -> str | None:
    """None when the run saw the current file's labels; else what differs.

    The noisy train and val labels regenerated from the current file must have the SHA-256 the
    run recorded in noise.json (so the clean labels and the generator's inputs are the same), and
    a finished run's stored test labels must equal the file's.
    """
    ds = load_dataset(cfg.dataset, data_dir=data_dir)
    seed = cfg.noise.seed if cfg.noise.seed is not None else cfg.seed
    # drawn afresh from the file, not read from the noise cache (whose old keys hold no digest)
    noisy = noise_splits(ds, cfg.noise.name, cfg.noise.rate, seed, cfg.noise.params)
    stored = json.loads((folder / "noise.json").read_text())
    for split in ("train", "val"):
        if stored[split]["sha256"] != noisy[split].sha256:
            return f"noisy {split} labels differ"
    if (folder / "predictions.npz").exists():
        pred = np.load(folder / "predictions.npz")
        if not np.array_equal(pred["test_labels"], ds["test"].labels.numpy()):
            return "test labels differ"
    return None


def rekey(folder: Path, data_dir: Path, dry_run: bool) -> tuple[str, str] | None:
    """(old hash, new hash) of a re-keyed run folder, or None when it needs nothing / fails."""
    raw = RunFolder(folder).read_config()
    if not raw or raw.get("dataset_digest") or not str(raw.get("dataset", "")).endswith(".npz"):
        return None
    if not (folder / "noise.json").exists():
        print(f"skip {folder.name}: no noise.json (it will be trained again)")
        return None
    cfg = RunConfig.model_validate(raw)
    problem = check_same_data(folder, cfg, data_dir)
    if problem:
        print(f"skip {folder.name}: {problem} (it will be trained again)")
        return None
    new = cfg.model_copy(update={"dataset_digest": dataset_digest(cfg.dataset, data_dir)})
    old_hash, new_hash = cfg.config_hash(), new.config_hash()
    target = folder.parent / new.run_name()
    print(f"{folder.name} -> {target.name}")
    if dry_run:
        return old_hash, new_hash
    if not target.exists():
        shutil.copytree(folder, target)
    RunFolder(target).write_config(new.model_dump(mode="json"))
    if (target / "summary.json").exists():  # an unfinished run resumes from its checkpoint
        summary = json.loads((target / "summary.json").read_text())
        summary.update(config_hash=new_hash, run=target.name)
        (target / "summary.json").write_text(json.dumps(summary, indent=1))
    return old_hash, new_hash


def rewrite_tables(results: Path, mapping: dict[str, str], dry_run: bool) -> None:
    for name in TABLES:
        path = results / name
        if not path.exists():
            continue
        df = pd.read_csv(path, dtype=str, keep_default_na=False)  # cells kept as written
        hit = df["config_hash"].isin(mapping)
        print(f"{name}: {int(hit.sum())} rows re-keyed")
        if dry_run or not hit.any():
            continue
        df.loc[hit, "config_hash"] = df.loc[hit, "config_hash"].map(mapping)
        if "source" in df.columns:  # medssl.csv: the borrowed run folder's path
            for old, new in mapping.items():
                df["source"] = df["source"].str.replace(f"_{old[:12]}", f"_{new[:12]}", regex=False)
        df.to_csv(path, index=False)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=Path, required=True, help="a benchmark's run root")
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--data-dir", type=Path, default=default_data_dir())
    ap.add_argument("--dry-run", action="store_true")
    args = ap.parse_args(argv)
    mapping = {}
    for folder in sorted(p for p in args.runs.iterdir() if p.is_dir()):
        pair = rekey(folder, args.data_dir, args.dry_run)
        if pair:
            mapping[pair[0]] = pair[1]
    rewrite_tables(args.results, mapping, args.dry_run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
