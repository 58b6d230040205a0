"""Index batches that visit every sample exactly once, and an endlessly cycling batch source."""

from __future__ import annotations

import torch

__all__ = ["UnlabelledCycle", "covering_batches"]


def covering_batches(order: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    """Split ``order`` (M,) into consecutive batches of ``batch_size``.

    Every index appears exactly once. A trailing batch of one sample joins the batch before it
    (a one-row batch breaks BatchNorm in train mode), so the last batch may hold B + 1 rows.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    batches = list(torch.split(order, batch_size))
    if len(batches) > 1 and len(batches[-1]) == 1:
        last = batches.pop()
        batches[-1] = torch.cat([batches[-1], last])
    return batches


class UnlabelledCycle:
    """Batches of ``pool`` (M,) that cycle forever: each pass is a fresh seeded permutation.

    A pass is cut by :func:`covering_batches`, so a batch holds at most B + 1 and, when M ≥ 2,
    at least 2 samples.
    """

    def __init__(self, pool: torch.Tensor, batch_size: int, generator: torch.Generator) -> None:
        if len(pool) == 0:
            raise ValueError("UnlabelledCycle needs a non-empty pool")
        self.pool = pool
        self.batch_size = batch_size
        self.generator = generator
        self._pending: list[torch.Tensor] = []

    def next(self) -> torch.Tensor:
        """The next index batch (b,) of the pool."""
        if not self._pending:
            perm = torch.randperm(len(self.pool), generator=self.generator)
            self._pending = covering_batches(self.pool[perm], self.batch_size)
        return self._pending.pop(0)
