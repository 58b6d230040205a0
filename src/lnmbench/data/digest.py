"""Content digests of datasets given by path (a user .npz, a prepared cache's manifest).

A run of such a dataset is identified by what the file holds, not by where it is: the digest
enters the run hash and the noise-cache key, so replacing ``u.npz`` at the same path gives a new
run folder and new noisy labels. The SHA-256 is computed once per file version and remembered in
``<data_dir>/digests.json`` by (absolute path, size, mtime), so the next run reads no bytes.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pooch

from lnmbench.atomic_files import atomic_write_text
from lnmbench.data.catalog import default_data_dir
from lnmbench.data.prepared_cache import MANIFEST

CACHE_NAME = "digests.json"


def content_file(dataset: str) -> Path:
    """The file whose bytes identify a path-like dataset: the .npz, or the prepared cache's
    ``manifest.json`` (written last by ``lnmbench prepare``, it names every part's checksum)."""
    path = Path(dataset)
    if path.name == MANIFEST or path.is_dir():
        return path if path.name == MANIFEST else path / MANIFEST
    return path


def dataset_digest(dataset: str, cache_dir: Path | None = None) -> str | None:
    """``sha256:<hex>`` of a path-like dataset's content file; None when it does not exist (the
    run's loading reports that). Cached in ``cache_dir/digests.json`` (default: the data folder)
    by (path, size, mtime_ns)."""
    path = content_file(dataset)
    try:
        st = path.stat()
    except OSError:
        return None
    if not path.is_file():
        return None
    key = str(path.resolve())
    stamp = [st.st_size, st.st_mtime_ns]
    cache = (cache_dir or default_data_dir()) / CACHE_NAME
    known = _read_cache(cache)
    entry = known.get(key)
    if entry and entry.get("stamp") == stamp:
        return entry["sha256"]
    digest = "sha256:" + pooch.file_hash(str(path), alg="sha256")
    known[key] = {"stamp": stamp, "sha256": digest}
    with contextlib.suppress(OSError):  # a read-only data folder: recomputed next time
        atomic_write_text(cache, json.dumps(known, indent=0, sort_keys=True))
    return digest


def _read_cache(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


__all__ = ["content_file", "dataset_digest"]
