"""Data layer: registry, bundled demo, MedMNIST files and download, users' .npz files."""

from __future__ import annotations

import functools
import hashlib
import http.server
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from lnmbench.data import DATASETS, load_dataset
from lnmbench.data.medmnist import fetch
from lnmbench.errors import DatasetError, UnknownNameError

RETINA_MD5 = "bd4c0672f1bba3e3a89f0e4e876791e4"


def test_demo_is_stratified_bloodmnist_subset():
    ds = load_dataset("demo")
    assert [len(ds[s]) for s in ("train", "val", "test")] == [3000, 400, 1000]
    assert tuple(ds["train"].images.shape[1:]) == (3, 28, 28)
    assert ds.info.num_classes == 8
    # BloodMNIST train class counts 852, 2181, 1085, 2026, 849, 993, 2330, 1643 (shared/data README)
    full = np.array([852, 2181, 1085, 2026, 849, 993, 2330, 1643])
    got = np.bincount(ds["train"].labels.numpy(), minlength=8)
    assert np.abs(got / 3000 - full / full.sum()).max() < 0.002


def test_registry_lists_medmnist_subsets_and_rejects_unknown():
    names = DATASETS.names()
    for n in ("pathmnist", "dermamnist", "bloodmnist", "organcmnist", "retinamnist", "demo"):
        assert n in names
    assert "chestmnist" not in names  # multi-label
    with pytest.raises(UnknownNameError, match="known: .*bloodmnist"):
        load_dataset("bloodmnistt")
    assert DATASETS.get("organcmnist").info.num_classes == 11
    assert DATASETS.get("bloodmnist").split_sizes == (11959, 1712, 3421)


def test_official_file_loads_with_checksum(shared_data):
    ds = load_dataset("retinamnist", data_dir=shared_data)
    assert [len(ds[s]) for s in ("train", "val", "test")] == [1080, 120, 400]
    assert ds.info.ordinal and ds.info.num_classes == 5


def test_missing_offline_names_url_path_and_checksum(tmp_path):
    with pytest.raises(DatasetError) as err:
        load_dataset("retinamnist", data_dir=tmp_path, download=False)
    msg = str(err.value)
    assert "zenodo.org/records/10519652/files/retinamnist.npz" in msg
    assert str(tmp_path / "retinamnist.npz") in msg and RETINA_MD5 in msg


def test_download_failure_is_clear(tmp_path, monkeypatch):
    monkeypatch.setenv("LNMBENCH_MEDMNIST_MIRROR", "http://127.0.0.1:9")  # nothing listens there
    with pytest.raises(DatasetError, match="could not download retinamnist.*MD5 " + RETINA_MD5):
        fetch("retinamnist", 28, tmp_path)


def test_corrupt_file_gives_checksum_error(tmp_path, shared_data):
    bad = tmp_path / "retinamnist.npz"
    raw = bytearray((shared_data / "retinamnist.npz").read_bytes())
    raw[1000] ^= 0xFF
    bad.write_bytes(bytes(raw))
    with pytest.raises(DatasetError, match=f"checksum mismatch for {bad}"):
        load_dataset("retinamnist", data_dir=tmp_path)


@pytest.fixture
def http_mirror(tmp_path):
    """A local HTTP server serving tmp_path/served/ (stands in for the Zenodo record)."""
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_download_from_http_server_verifies_md5(tmp_path, shared_data, http_mirror, monkeypatch):
    served, url = http_mirror
    shutil.copy(shared_data / "retinamnist.npz", served / "retinamnist.npz")
    monkeypatch.setenv("LNMBENCH_MEDMNIST_MIRROR", url)
    dest = tmp_path / "cache"
    path = fetch("retinamnist", 28, dest)
    assert path == dest / "retinamnist.npz"
    assert hashlib.md5(path.read_bytes()).hexdigest() == RETINA_MD5
    # an existing verified file is used as is (no server needed any more)
    monkeypatch.setenv("LNMBENCH_MEDMNIST_MIRROR", "http://127.0.0.1:9")
    assert len(load_dataset("retinamnist", data_dir=dest)["test"]) == 400


def test_download_of_wrong_content_is_refused(tmp_path, shared_data, http_mirror, monkeypatch):
    served, url = http_mirror
    shutil.copy(shared_data / "breastmnist.npz", served / "retinamnist.npz")
    monkeypatch.setenv("LNMBENCH_MEDMNIST_MIRROR", url)
    with pytest.raises(DatasetError, match="checksum mismatch"):
        fetch("retinamnist", 28, tmp_path / "cache")
    assert not (tmp_path / "cache" / "retinamnist.npz").exists()


def _write_npz(path: Path, labels: dict[str, np.ndarray], shape=(28, 28)) -> Path:
    rng = np.random.default_rng(0)
    arrays = {}
    for split, y in labels.items():
        arrays[f"{split}_images"] = rng.integers(0, 255, (len(y), *shape), dtype=np.uint8)
        arrays[f"{split}_labels"] = y.reshape(-1, 1).astype(np.uint8)
    np.savez(path, **arrays)
    return path


def test_user_npz_infers_classes(tmp_path):
    y = np.arange(30) % 3
    p = _write_npz(tmp_path / "mine.npz", {"train": y, "val": y[:9], "test": y[:6]})
    ds = load_dataset(str(p))
    assert ds.info.num_classes == 3 and ds.info.in_chans == 1
    assert tuple(ds["train"].images.shape) == (30, 1, 28, 28)


def test_user_npz_errors(tmp_path):
    y = np.array([0, 1, 3, 0, 1, 3])  # class 2 never occurs
    p = _write_npz(tmp_path / "gap.npz", {"train": y, "val": y, "test": y})
    with pytest.raises(DatasetError, match=r"classes \[2\] of 4 never occur in train_labels"):
        load_dataset(str(p))
    q = tmp_path / "nolabels.npz"
    np.savez(q, train_images=np.zeros((2, 4, 4), np.uint8))
    with pytest.raises(DatasetError, match="lacks the arrays train_labels"):
        load_dataset(str(q))
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(str(tmp_path / "absent.npz"))
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file")
    with pytest.raises(DatasetError, match=f"cannot read {garbage}"):
        load_dataset(str(garbage))


def test_local_copy_of_registered_file_keeps_its_metadata(shared_data):
    ds = load_dataset(str(shared_data / "retinamnist.npz"))
    assert ds.info.ordinal and ds.info.modality == "fundus"  # QWK is reported for DR grades
    assert ds.info.class_names == DATASETS.get("retinamnist").info.class_names
