"""Data / compute time of the training steps of one epoch, without stalling the device.

On the CPU the marks are wall-clock readings. On CUDA they are events recorded on the current
stream (no host synchronisation inside the loop); their elapsed times are read once, at the end
of the epoch, after a single synchronisation. The loop used to synchronise twice per step to
time the same split, which serialises the host and the GPU.
"""

from __future__ import annotations

import time

import torch


class StepTimer:
    """``begin()`` before a step's data work, ``between()`` before its compute, ``end()`` after;
    ``totals()`` -> (data seconds, compute seconds) of the epoch so far."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self._marks: list[tuple[object, object, object]] = []
        self._cur: list[object] = []
        self.data_s = 0.0
        self.compute_s = 0.0

    def _mark(self) -> object:
        if self.cuda:
            ev = torch.cuda.Event(enable_timing=True)
            ev.record()
            return ev
        return time.perf_counter()

    def begin(self) -> None:
        self._cur = [self._mark()]

    def between(self) -> None:
        self._cur.append(self._mark())

    def end(self) -> None:
        a, b = self._cur
        c = self._mark()
        if self.cuda:
            self._marks.append((a, b, c))
        else:
            self.data_s += b - a  # type: ignore[operator]
            self.compute_s += c - b  # type: ignore[operator]
        self._cur = []

    def totals(self) -> tuple[float, float]:
        if self.cuda and self._marks:
            torch.cuda.synchronize()
            for a, b, c in self._marks:
                self.data_s += a.elapsed_time(b) / 1000  # type: ignore[attr-defined]
                self.compute_s += b.elapsed_time(c) / 1000  # type: ignore[attr-defined]
            self._marks = []
        return self.data_s, self.compute_s
