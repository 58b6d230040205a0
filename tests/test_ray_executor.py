"""The Ray executor on a real local Ray cluster (a head node and a second worker node, CPU only):
its results table equals the local executor's, number for number."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lnmbench.executors import ExecutorOptions, create_executor
from lnmbench.experiment.grid import expand_grid
from lnmbench.experiment.grid_runner import run_grid
from lnmbench.experiment.grid_spec import parse_grid_spec
from lnmbench.experiment.store import results_table

pytest.importorskip("ray", reason="Ray is not installed: pip install 'lnmbench[ray]'")

# columns that legitimately differ between two executions of the same runs
VOLATILE = ("run_folder", "wall_s", "train_images_per_s")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"Ray head did not open port {port} within {timeout} s")


def _stop(procs: list[subprocess.Popen]) -> None:
    """Stop `ray start --block` process groups (their nodes' processes), not other clusters."""
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
    for proc in procs:  # whatever ignored SIGTERM: Ray's node processes share the group
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """`ray start --head` (2 CPUs) plus a second node (1 CPU) on 127.0.0.1; yields the address.

    Each node runs with --block in its own process group, so the teardown stops exactly these
    processes (``ray stop`` would stop every Ray process of the user).
    """
    import ray

    port = _free_port()
    address = f"127.0.0.1:{port}"
    env = {
        **os.environ,
        "LNMBENCH_DATA": str(tmp_path_factory.getbasetemp() / "lnmbench-cache"),
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    common = ["--block", "--disable-usage-stats"]
    ray_cli = [sys.executable, "-m", "ray.scripts.scripts"]  # `ray`, without relying on PATH
    head_args = [*ray_cli, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port)]
    node_args = [*ray_cli, "start", "--address", address, "--node-ip-address", "127.0.0.1"]
    logs = tmp_path_factory.mktemp("ray")
    head = subprocess.Popen(
        [*head_args, "--num-cpus", "2", "--num-gpus", "0", "--include-dashboard=false", *common],
        stdout=open(logs / "head.log", "w"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    nodes = [head]
    try:
        _wait_for_port(port, 60)
        nodes.append(
            subprocess.Popen(
                [*node_args, "--num-cpus", "1", "--num-gpus", "0", *common],
                stdout=open(logs / "worker.log", "w"),  # noqa: SIM115
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        )
        deadline = time.monotonic() + 60
        ray.init(address=address, log_to_driver=False)
        while ray.cluster_resources().get("CPU", 0) < 3 and time.monotonic() < deadline:
            time.sleep(0.5)
        cpus = ray.cluster_resources().get("CPU", 0)
        ray.shutdown()
        assert cpus == 3, f"expected 2 + 1 CPUs from two nodes, got {cpus}"
        yield address
    finally:
        if ray.is_initialized():
            ray.shutdown()
        _stop(nodes[::-1])


@pytest.fixture(scope="module")
def tiny_npz(tmp_path_factory) -> Path:
    from lnmbench.data import load_dataset

    ds = load_dataset("demo")
    out = {}
    for split, n in (("train", 128), ("val", 64), ("test", 64)):
        out[f"{split}_images"] = ds[split].images[:n].permute(0, 2, 3, 1).numpy()
        out[f"{split}_labels"] = ds[split].labels[:n].numpy()[:, None]
    path = tmp_path_factory.mktemp("raygrid") / "tiny.npz"
    np.savez(path, **out)
    return path


@pytest.mark.slow
def test_ray_results_equal_local_results(ray_cluster, tiny_npz, tmp_path):
    """2 methods × 2 seeds on a tiny set, plus the same on a corrupt file: every run on the corrupt
    file fails inside its worker (recorded in failed.txt, not retried), the others finish."""
    from lnmbench.cli.console import console

    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"not an npz")
    plan = expand_grid(
        parse_grid_spec(
            {
                "name": "ray-small",
                "methods": ["ce", "sce"],
                "datasets": [str(tiny_npz), str(corrupt)],
                "noise": "symmetric",
                "rates": [0.4],
                "seeds": [0, 1],
                "overrides": {"model": "cnn-tiny", "epochs": 1},
                "hparams": {"all": {"batch_size": 32}},
            }
        )
    )
    ray_exec = create_executor(
        "ray", ExecutorOptions(address=ray_cluster, cpus_per_run=1, max_retries=1)
    )
    report = run_grid(plan, tmp_path / "ray", ray_exec, console=console, show_progress=False)
    assert (report.scheduled, report.done, len(report.failed)) == (8, 4, 4)
    assert all(name.split("_")[1] == "corrupt" for name in report.failed)
    for name in report.failed:
        text = (tmp_path / "ray" / name / "failed.txt").read_text()
        assert "Traceback" in text and "DatasetError: cannot read" in text
    assert ray_exec.capacity == 3  # 3 CPUs over two nodes, 1 CPU per run

    local = create_executor("local", ExecutorOptions(threads_per_worker=1))
    run_grid(plan, tmp_path / "local", local, console=console, show_progress=False)

    by_ray = results_table(tmp_path / "ray").drop(columns=list(VOLATILE))
    by_local = results_table(tmp_path / "local").drop(columns=list(VOLATILE))
    assert sorted(by_ray["status"]) == ["done"] * 4 + ["failed"] * 4
    pd.testing.assert_frame_equal(by_ray, by_local, check_exact=True)
