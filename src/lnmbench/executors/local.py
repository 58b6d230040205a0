"""The local executor: runs in this process, or in N spawned worker processes on one machine.

Worker i (0-based, in start order) is pinned to ``devices[i % len(devices)]`` (e.g. ``cuda:0``,
``cuda:1``, round-robin; several workers may share a GPU) and to ``threads_per_worker`` CPU
threads (default: the machine's cores divided among the workers). A worker process that dies
(killed for memory, a segfault) breaks the pool: the pool is restarted and the runs it held are
retried, up to ``max_retries`` times each, then reported as lost (the grid runner records them as
failed). Exceptions inside a run are never retried here (they are recorded as failed by the
worker; ``--retry-failed`` reruns them).
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
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

# set in each worker process by _init_worker
_WORKER_DEVICE: str | None = None


def _init_worker(slots: Any, devices: list[str] | None, threads: int | None) -> None:
    """Pool initializer: take a slot number, pin the device and the CPU threads."""
    global _WORKER_DEVICE
    import torch

    slot = slots.get()
    if threads:
        torch.set_num_threads(threads)
    if devices:
        _WORKER_DEVICE = devices[slot % len(devices)]
        if _WORKER_DEVICE.startswith("cuda") and torch.cuda.is_available():
            torch.cuda.set_device(torch.device(_WORKER_DEVICE))


def _pool_execute(work: WorkFunction, task: RunTask) -> RunOutcome:
    return work(task, _WORKER_DEVICE)


@register_executor("local")
class LocalExecutor(Executor):
    """In process (``workers=1``, the default) or a pool of spawned worker processes."""

    accepts = frozenset({"workers", "devices", "threads_per_worker", "max_retries"})

    def __init__(self, options: ExecutorOptions) -> None:
        super().__init__(options)
        self.devices = list(options.devices) if options.devices else None
        default = len(self.devices) if self.devices else 1
        self.workers = options.workers if options.workers is not None else default
        if self.workers < 1:
            raise ConfigError(f"--workers must be at least 1, got {self.workers}")
        self.threads = options.threads_per_worker
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"--threads-per-worker must be at least 1, got {self.threads}")
        if self.threads is None and self.workers > 1:
            self.threads = max(1, (os.cpu_count() or 1) // self.workers)
        self.max_retries = options.retries()

    @property
    def capacity(self) -> int:
        return self.workers

    def describe(self) -> str:
        where = "in this process" if self.workers == 1 else f"{self.workers} worker processes"
        dev = f", devices {','.join(self.devices)}" if self.devices else ""
        thr = f", {self.threads} CPU threads each" if self.threads else ""
        return f"local executor: {where}{dev}{thr}"

    def run(self, tasks: Sequence[RunTask], work: WorkFunction) -> Iterator[ExecutorEvent]:
        if self.workers == 1:
            yield from self._run_in_process(tasks, work)
        else:
            yield from self._run_in_pool(tasks, work)

    def _run_in_process(
        self, tasks: Sequence[RunTask], work: WorkFunction
    ) -> Iterator[ExecutorEvent]:
        import torch

        device = self.devices[0] if self.devices else None
        before = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            for task in tasks:
                yield RunStarted(task)
                yield RunFinished(task, work(task, device))
        finally:
            torch.set_num_threads(before)

    def _new_pool(self) -> ProcessPoolExecutor:
        ctx = mp.get_context("spawn")  # CUDA and fork do not mix
        slots = ctx.Queue()
        for i in range(self.workers):
            slots.put(i)
        return ProcessPoolExecutor(
            self.workers,
            mp_context=ctx,
            initializer=_init_worker,
            initargs=(slots, self.devices, self.threads),
        )

    def _run_in_pool(self, tasks: Sequence[RunTask], work: WorkFunction) -> Iterator[ExecutorEvent]:
        queue = deque(tasks)
        crashes: Counter[str] = Counter()
        in_flight: dict[Future, RunTask] = {}
        pool = self._new_pool()
        try:
            while queue or in_flight:
                # at most one run per worker in flight, so "started" means running
                while queue and len(in_flight) < self.workers:
                    task = queue.popleft()
                    in_flight[pool.submit(_pool_execute, work, task)] = task
                    yield RunStarted(task)
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                if not any(isinstance(f.exception(), BrokenProcessPool) for f in done):
                    for fut in done:
                        yield RunFinished(in_flight.pop(fut), fut.result())
                    continue
                # a worker died: every run still in the pool fails with BrokenProcessPool
                wait(in_flight)
                lost = []
                for fut, task in list(in_flight.items()):
                    if isinstance(fut.exception(), BrokenProcessPool):
                        lost.append(task)
                    else:
                        yield RunFinished(task, fut.result())
                in_flight.clear()
                _terminate(pool)
                names = ", ".join(t.name for t in lost)
                yield Notice(f"a worker process died; restarting the pool (runs affected: {names})")
                for task in reversed(lost):
                    crashes[task.name] += 1
                    if crashes[task.name] > self.max_retries:
                        msg = (
                            f"the worker process died {crashes[task.name]} times while this run "
                            "was in its pool (e.g. killed for memory); not retried again"
                        )
                        yield RunFinished(task, lost_outcome(task, msg))
                    else:
                        queue.appendleft(task)
                pool = self._new_pool()
        finally:
            _terminate(pool)


def _terminate(pool: ProcessPoolExecutor) -> None:
    """Stop a pool now, its running workers included (their runs resume from checkpoints)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in processes:
        if p.is_alive():
            p.terminate()
    for p in processes:
        p.join(timeout=10)
