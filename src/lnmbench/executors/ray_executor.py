"""The Ray executor: runs as Ray tasks on a cluster (``ray start`` on each node, or Slurm).

Each run is one task with ``cpus_per_run`` CPUs and ``gpus_per_run`` GPUs (fractions share a GPU;
Ray sets ``CUDA_VISIBLE_DEVICES``). A task whose worker process or node dies is retried by Ray up to
``max_retries`` times, then reported as lost (recorded as failed by the grid runner); an exception
inside a run is recorded as failed by the worker and never retried here (``--retry-failed``
reruns it on the next grid run). The result root must be a filesystem every node sees (NFS,
Lustre, ...); the workers run in the driver's working directory when it exists on their node,
and receive the driver's ``LNMBENCH_*`` environment variables (data folder, download mirror).
"""

from __future__ import annotations

import math
import os
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any

from lnmbench.errors import ConfigError
from lnmbench.executors.base import (
    Executor,
    ExecutorEvent,
    ExecutorOptions,
    Notice,
    RunFinished,
    RunOutcome,
    RunStarted,
    RunTask,
    WorkFunction,
    lost_outcome,
    register_executor,
)


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "the ray executor needs Ray: pip install 'lnmbench[ray]' "
            "(or pip install 'ray[default]')"
        ) from None
    return ray


def ray_execute(
    work: WorkFunction, task: RunTask, device: str, threads: int, cwd: str
) -> RunOutcome:
    """The body of a Ray task: the driver's working directory, pinned threads, one run."""
    import torch

    if os.path.isdir(cwd):
        os.chdir(cwd)
    torch.set_num_threads(threads)
    return work(task, device)


@register_executor("ray")
class RayExecutor(Executor):
    """Schedules runs on a Ray cluster at ``address`` (``auto``, ``HOST:PORT``, or ``local``)."""

    accepts = frozenset({"address", "gpus_per_run", "cpus_per_run", "max_retries"})

    def __init__(self, options: ExecutorOptions) -> None:
        super().__init__(options)
        self.address = options.address or "auto"
        self.gpus = float(options.gpus_per_run or 0.0)
        self.cpus = float(options.cpus_per_run if options.cpus_per_run is not None else 1.0)
        if self.gpus < 0 or self.cpus <= 0:
            raise ConfigError(
                f"--cpus-per-run must be > 0 and --gpus-per-run >= 0, got {self.cpus}, {self.gpus}"
            )
        if self.gpus > 1 and not self.gpus.is_integer():
            raise ConfigError(f"--gpus-per-run above 1 must be whole, got {self.gpus}")
        self.max_retries = options.retries()
        self._capacity = 1

    @property
    def capacity(self) -> int:
        return self._capacity

    def describe(self) -> str:
        return (
            f"ray executor at {self.address}: {self.cpus:g} CPU, {self.gpus:g} GPU per run, "
            f"{self.max_retries} retries for lost workers"
        )

    def _connect(self, ray: Any) -> bool:
        """Connect to the cluster; True when this call started Ray (and must shut it down)."""
        if ray.is_initialized():
            return False
        env = {k: v for k, v in os.environ.items() if k.startswith("LNMBENCH_")}
        kwargs: dict[str, Any] = {"log_to_driver": False, "configure_logging": False}
        if env:
            kwargs["runtime_env"] = {"env_vars": env}
        address = None if self.address == "local" else self.address
        try:
            ray.init(address=address, **kwargs)
        except (ConnectionError, RuntimeError) as exc:
            raise ConfigError(
                f"cannot connect to a Ray cluster at {self.address!r}: {exc}. Start one with "
                "`ray start --head` (see docs/running_the_benchmark.md) or use --address local"
            ) from None
        return True

    def _slots(self, ray: Any) -> int:
        """Runs the cluster can hold at once with the per-run resources (at least 1)."""
        res = ray.cluster_resources()
        fits = [math.floor(res.get("CPU", 0.0) / self.cpus + 1e-9)]
        if self.gpus > 0:
            fits.append(math.floor(res.get("GPU", 0.0) / self.gpus + 1e-9))
        return min(fits)

    def run(self, tasks: Sequence[RunTask], work: WorkFunction) -> Iterator[ExecutorEvent]:
        ray = import_ray()
        started_ray = self._connect(ray)
        remote = ray.remote(ray_execute).options(
            num_cpus=self.cpus,
            num_gpus=self.gpus,
            max_retries=self.max_retries,
            retry_exceptions=False,
        )
        device = "cuda" if self.gpus > 0 else "cpu"
        threads = max(1, int(self.cpus))
        cwd = os.getcwd()
        queue = deque(tasks)
        in_flight: dict[Any, RunTask] = {}
        warned = False
        try:
            while queue or in_flight:
                slots = self._slots(ray)
                if slots == 0 and not warned:
                    warned = True
                    yield Notice(
                        f"the Ray cluster has no room for a run ({self.cpus:g} CPU, "
                        f"{self.gpus:g} GPU): waiting for nodes to join"
                    )
                self._capacity = max(1, slots)
                # keep the queue on the driver: "started" means Ray holds the resources for it
                while queue and len(in_flight) < self._capacity:
                    task = queue.popleft()
                    in_flight[remote.remote(work, task, device, threads, cwd)] = task
                    yield RunStarted(task)
                ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=5.0)
                for ref in ready:
                    task = in_flight.pop(ref)
                    try:
                        outcome = ray.get(ref)
                    except ray.exceptions.RayError as exc:
                        msg = (
                            f"the Ray worker running this run was lost {self.max_retries + 1} "
                            f"times; not retried again.\n{type(exc).__name__}: {exc}"
                        )
                        outcome = lost_outcome(task, msg)
                    yield RunFinished(task, outcome)
        finally:
            for ref in in_flight:
                ray.cancel(ref, force=True)
            if started_ray:
                ray.shutdown()
