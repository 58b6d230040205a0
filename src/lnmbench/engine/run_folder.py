"""A run's folder: config.yaml, metrics.jsonl (one line per epoch), summary.json (atomic, last)."""

from __future__ import annotations

import json
import math
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from lnmbench.atomic_files import atomic_write_text


def json_for_run_file(obj: Any) -> Any:
    """Numbers, arrays and tensors to plain JSON types (NaN/inf become None), as run-folder
    files (metrics.jsonl, summary.json, noise.json) hold them."""
    if isinstance(obj, dict):
        return {str(k): json_for_run_file(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_for_run_file(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return json_for_run_file(obj.detach().cpu().tolist())
    if isinstance(obj, np.ndarray):
        return json_for_run_file(obj.tolist())
    if isinstance(obj, np.generic):
        return json_for_run_file(obj.item())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    return obj


class RunFolder:
    """Paths and writers of one run folder."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.config = self.path / "config.yaml"
        self.metrics = self.path / "metrics.jsonl"
        self.summary = self.path / "summary.json"
        self.checkpoint = self.path / "checkpoint.pt"
        self.noise = self.path / "noise.json"
        self.failed = self.path / "failed.txt"

    def is_done(self) -> bool:
        return self.summary.exists()

    def read_config(self) -> dict[str, Any]:
        """``config.yaml`` as a dict ({} when absent or unreadable)."""
        try:
            data = yaml.safe_load(self.config.read_text())
        except (OSError, yaml.YAMLError):
            return {}
        return data if isinstance(data, dict) else {}

    def write_failure(self, text: str, worker: str) -> None:
        """``failed.txt``: a header (when, where) and the traceback ``text``."""
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        header = f"run {self.path.name} failed at {stamp} on {worker}\n\n"
        atomic_write_text(self.failed, header + text.rstrip() + "\n")

    def remove_leftovers(self, keep_checkpoint: bool) -> list[Path]:
        """Remove what killed writers leave behind (``.NAME.XXXX.tmp`` files of the atomic
        writer) and, in a finished run, a checkpoint that was not to be kept. Call it only while
        no other process writes into the folder (holding the run lock, or on a done run)."""
        gone = [p for p in self.path.glob(".*.tmp") if p.is_file()]
        if self.is_done() and not keep_checkpoint and self.checkpoint.exists():
            gone.append(self.checkpoint)
        for p in gone:
            p.unlink(missing_ok=True)
        return gone

    def write_config(self, cfg: dict[str, Any]) -> None:
        atomic_write_text(self.config, yaml.safe_dump(cfg, sort_keys=False))

    def write_json(self, name: str, obj: Any) -> None:
        atomic_write_text(self.path / name, json.dumps(json_for_run_file(obj), indent=1))

    def read_metrics(self) -> list[dict[str, Any]]:
        if not self.metrics.exists():
            return []
        rows = []
        for line in self.metrics.read_text().splitlines():
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    break  # a line cut by a crash: it and what follows are redone
        return rows

    def rewrite_metrics(self, rows: list[dict[str, Any]]) -> None:
        atomic_write_text(self.metrics, "".join(json.dumps(r) + "\n" for r in rows))

    def append_metrics(self, row: dict[str, Any]) -> None:
        with open(self.metrics, "a") as f:
            f.write(json.dumps(json_for_run_file(row)) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def write_summary(self, summary: dict[str, Any]) -> None:
        atomic_write_text(self.summary, json.dumps(json_for_run_file(summary), indent=1))
