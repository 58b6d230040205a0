"""The training split as the engine serves it: uint8 images on the device, views by index."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from lnmbench.data.augment import DeviceAugment, get_spec, to_float_normalised


class TrainView:
    """uint8 images (N, C, H, W) and noisy labels (N,); batched augmented views on the device.

    ``images`` may live on the training device (the default: everything in device memory) or on
    the CPU, e.g. a memory-mapped cache larger than memory: then each batch is gathered by index
    on the CPU and moved to ``device`` before augmentation.

    ``view(index, kind)`` gathers the rows of ``index`` and augments them in one batched call;
    kinds are augmentation preset names ("standard", "weak", "strong", "none", ...), with
    "train" meaning the run's configured augmentation.
    """

    def __init__(
        self,
        images: torch.Tensor,
        noisy_labels: torch.Tensor,
        *,
        mean: Sequence[float],
        std: Sequence[float],
        train_augment: str,
        generator: torch.Generator,
        out_size: int | None = None,
        channels_last: bool = False,
        device: torch.device | None = None,
    ) -> None:
        self.images = images
        self.device = device or images.device
        self.noisy_labels = noisy_labels
        self.num_samples = len(noisy_labels)
        self.mean, self.std = list(mean), list(std)
        self.out_size = out_size
        self.generator = generator
        self.train_augment = train_augment
        self.channels_last = channels_last
        self._augmenters: dict[str, DeviceAugment] = {}

    def _augmenter(self, kind: str) -> DeviceAugment:
        name = self.train_augment if kind == "train" else kind
        if name not in self._augmenters:
            self._augmenters[name] = DeviceAugment(
                get_spec(name), self.mean, self.std, self.out_size
            )
        return self._augmenters[name]

    def _layout(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def gather(self, index: torch.Tensor) -> torch.Tensor:
        """uint8 images (B, C, H, W) of ``index`` (B,), on the training device."""
        x = self.images[index.to(self.images.device)]
        return x.to(self.device, non_blocking=True)

    def view(self, index: torch.Tensor, kind: str = "train") -> torch.Tensor:
        """Augmented float view (B, C, S, S) of the samples ``index`` (B,)."""
        return self._layout(self._augmenter(kind)(self.gather(index), self.generator))

    def eval_view(self, index: torch.Tensor) -> torch.Tensor:
        """Eval-transformed (normalised, resized) float images (B, C, S, S)."""
        x = self.gather(index)
        return self._layout(to_float_normalised(x, self.mean, self.std, self.out_size))

    def eval_batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(index (B,), eval-transformed images) over all N samples in order."""
        for start in range(0, self.num_samples, batch_size):
            idx = torch.arange(start, min(start + batch_size, self.num_samples))
            yield idx, self.eval_view(idx)
