"""The training split as the engine serves it: uint8 images on the device, views by index."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from lnmbench.data.augment import DeviceAugment, get_spec
from lnmbench.engine.image_transform import ImageTransform


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
        transform: ImageTransform,
        train_augment: str,
        generator: torch.Generator,
        device: torch.device | None = None,
    ) -> None:
        self.images = images
        self.device = device or images.device
        self.noisy_labels = noisy_labels
        self.num_samples = len(noisy_labels)
        self.transform = transform
        self.generator = generator
        self.train_augment = train_augment
        self._augmenters: dict[str, DeviceAugment] = {}

    def _augmenter(self, kind: str) -> DeviceAugment:
        name = self.train_augment if kind == "train" else kind
        if name not in self._augmenters:
            t = self.transform
            self._augmenters[name] = DeviceAugment(
                get_spec(name), list(t.mean), list(t.std), t.out_size
            )
        return self._augmenters[name]

    def gather(self, index: torch.Tensor) -> torch.Tensor:
        """uint8 images (B, C, H, W) of ``index`` (B,), on the training device."""
        x = self.images[index.to(self.images.device)]
        return x.to(self.device, non_blocking=True)

    def view(self, index: torch.Tensor, kind: str = "train") -> torch.Tensor:
        """Augmented float view (B, C, S, S) of the samples ``index`` (B,)."""
        return self.transform.layout(self._augmenter(kind)(self.gather(index), self.generator))

    def eval_view(self, index: torch.Tensor) -> torch.Tensor:
        """Eval-transformed (normalised, resized) float images (B, C, S, S)."""
        return self.transform(self.gather(index))

    def eval_batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(index (B,), eval-transformed images) over all N samples in order."""
        for start in range(0, self.num_samples, batch_size):
            idx = torch.arange(start, min(start + batch_size, self.num_samples))
            yield idx, self.eval_view(idx)
