"""Batched, device-side augmentation and normalisation (methods.md §1 and §3.10, DISC views).

Training images stay uint8 ``(N, C, H, W)`` tensors on the device. A gathered batch is turned into
a float32, normalised view by :class:`DeviceAugment` with one batched operation per op: no
per-sample Python loop, no PIL. Every random number comes from the ``torch.Generator`` passed in,
so the same generator state gives the same views.

Pipeline of :class:`DeviceAugment` (random draws are made in this order, so a "strong" view drawn
from the same generator state as a "weak" view shares its crop and flips):

1. uint8 -> float32 in [0, 1]. If ``out_size`` is smaller than the image, the batch is first
   resized to ``out_size`` (bilinear, antialias), so the random geometry never aliases (compare the
   Ref DR pipeline: resize 520 -> random-resized crop 512).
2. Geometry. Resized crop or pad crop, flips, rotation and any up-scaling to ``out_size`` are
   composed into one affine matrix per sample and applied with a single ``grid_sample`` (the
   ``affine_grid`` grid, built by broadcasting; bilinear, ``align_corners=False``). Edge pixels
   are replicated up to the image border; what a pad crop or a rotation brings in from outside
   the image is 0 (black), or its reflection with ``pad_mode="reflect"``. A spec with only a pad
   crop and/or flips (no rotation, no up-scaling) takes an exact path instead: an index gather,
   so each output is an exact integer shift / mirror of the input. Order of the composed ops:
   crop -> flips -> rotation.
3. Colour jitter: brightness (multiply), contrast (blend with the per-sample mean grey),
   saturation (blend with the per-pixel grey; RGB only), in this fixed order, each clamped to
   [0, 1] and with a per-sample factor uniform in ``[1 - s, 1 + s]``.
4. RandAugment restricted to colour/intensity ops (the strong view; geometric ops are excluded):
   ``randaugment_ops`` slots, each picks per sample one of identity, autocontrast, equalize,
   brightness, contrast, color, sharpness, posterize, solarize. Magnitude ``m`` in 0..10 gives
   ``v = m / 10``: enhance factors ``1 ± 0.9 v`` (random sign), posterize to ``8 - round(4 v)``
   bits, solarize above ``1 - v``. Equalize is a true per-sample, per-channel histogram
   equalisation on 256 levels (PIL / torchvision algorithm, which leaves a channel unchanged
   when fewer than 255 of its pixels lie below its top level), computed with scatter + cumsum.
5. Normalisation ``(x - mean) / std``.
6. Cutout: one square per sample of side ``round(cutout * S)`` (half up), placed fully inside the
   image, set to 0 *after* normalisation, i.e. to the dataset mean colour (FixMatch / DISC fill
   their cutout with grey).

The "none" preset (or any spec without random ops) is exactly :func:`to_float_normalised`, the
evaluation transform.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from lnmbench.errors import ConfigError
from lnmbench.registry import Registry

__all__ = [
    "AUGMENTATIONS",
    "RANDAUGMENT_OPS",
    "AugmentSpec",
    "DeviceAugment",
    "get_spec",
    "to_float_normalised",
]


@dataclass(frozen=True)
class AugmentSpec:
    """What a training view does. All fields default to "off".

    ``pad`` is in output pixels; ``None`` means ``max(2, S // 8)`` computed from the output size
    ``S`` at call time (4 px at 32 px, 3 px at 28 px, 28 px at 224 px). ``pad_mode`` chooses the
    fill of the pad crop: ``"zeros"`` (black, the torchvision ``RandomCrop(padding=...)`` default)
    or ``"reflect"`` (symmetric reflection, the edge pixel repeated, as ``grid_sample``'s
    ``"reflection"``; with ``"reflect"`` the rotation corners are reflected too).
    """

    crop: Literal["none", "pad", "resized"] = "none"
    pad: int | None = 4
    pad_mode: Literal["zeros", "reflect"] = "zeros"
    scale: tuple[float, float] = (0.8, 1.0)  # resized crop: area fraction
    ratio: tuple[float, float] = (3 / 4, 4 / 3)  # resized crop: aspect ratio (w / h)
    hflip: bool = False  # probability 0.5
    vflip: bool = False  # probability 0.5
    rotation: float = 0.0  # max degrees, angle uniform in [-r, r]
    brightness: float = 0.0  # factor uniform in [1 - b, 1 + b]
    contrast: float = 0.0
    saturation: float = 0.0  # ignored for 1-channel images
    randaugment_ops: int = 0  # colour-only RandAugment ops per sample (strong view)
    randaugment_magnitude: int = 5  # 0..10
    cutout: float = 0.0  # side of the square cutout as a fraction of the image side

    def __post_init__(self) -> None:
        def bad(msg: str) -> ConfigError:
            return ConfigError(f"invalid augmentation: {msg}")

        if self.crop not in ("none", "pad", "resized"):
            raise bad(f"crop must be 'none', 'pad' or 'resized', got {self.crop!r}")
        if self.pad is not None and (not isinstance(self.pad, int) or self.pad < 0):
            raise bad(f"pad must be a non-negative int or None (auto), got {self.pad!r}")
        if self.pad_mode not in ("zeros", "reflect"):
            raise bad(f"pad_mode must be 'zeros' or 'reflect', got {self.pad_mode!r}")
        lo, hi = self.scale
        if not 0.0 < lo <= hi <= 1.0:
            raise bad(f"scale must satisfy 0 < min <= max <= 1, got {self.scale}")
        lo, hi = self.ratio
        if not 0.0 < lo <= hi:
            raise bad(f"ratio must satisfy 0 < min <= max, got {self.ratio}")
        if not 0.0 <= self.rotation <= 180.0:
            raise bad(f"rotation must be in [0, 180] degrees, got {self.rotation}")
        for name in ("brightness", "contrast", "saturation"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise bad(f"{name} must be in [0, 1], got {value}")
        if self.randaugment_ops < 0:
            raise bad(f"randaugment_ops must be >= 0, got {self.randaugment_ops}")
        if not 0 <= self.randaugment_magnitude <= 10:
            raise bad(f"randaugment_magnitude must be in 0..10, got {self.randaugment_magnitude}")
        if not 0.0 <= self.cutout < 1.0:
            raise bad(f"cutout must be in [0, 1), got {self.cutout}")

    @property
    def is_random(self) -> bool:
        """Whether the spec draws anything (False: the view is the evaluation transform)."""
        return bool(
            self.crop != "none"
            or self.hflip
            or self.vflip
            or self.rotation
            or self.brightness
            or self.contrast
            or self.saturation
            or self.randaugment_ops
            or self.cutout
        )

    def pad_for(self, size: int) -> int:
        """The pad-crop padding in pixels for an output of side ``size``."""
        return max(2, size // 8) if self.pad is None else self.pad


_WEAK = AugmentSpec(crop="resized", scale=(0.8, 1.0), hflip=True)

AUGMENTATIONS: Registry[AugmentSpec] = Registry("augmentation")
_PRESETS: dict[str, AugmentSpec] = {
    # evaluation-like: convert, resize, normalise; no randomness
    "none": AugmentSpec(),
    # CIFAR-style: random crop after zero padding of max(2, S // 8) px + horizontal flip
    "standard": AugmentSpec(crop="pad", pad=None, hflip=True),
    # DISC weak view (§3.10): horizontal flip + random-resized crop, scale (0.8, 1)
    "weak": _WEAK,
    # DISC strong view: weak + RandAugment (2 colour ops, magnitude 5) + cutout of 15 % of the side
    "strong": AugmentSpec(
        crop="resized",
        scale=(0.8, 1.0),
        hflip=True,
        randaugment_ops=2,
        randaugment_magnitude=5,
        cutout=0.15,
    ),
    # Ref DR / CheXpert training augmentation (§1)
    "dr": AugmentSpec(
        crop="resized",
        scale=(0.95, 1.0),
        ratio=(0.95, 1.05),
        hflip=True,
        brightness=0.1,
        contrast=0.1,
        rotation=5.0,
    ),
    # a sensible default for microscopy / pathology (orientation-free images)
    "medical": AugmentSpec(
        crop="pad",
        pad=None,
        hflip=True,
        vflip=True,
        rotation=15.0,
        brightness=0.1,
        contrast=0.1,
    ),
}


for _name, _spec in _PRESETS.items():
    AUGMENTATIONS.register(_name)(_spec)


def get_spec(name: str) -> AugmentSpec:
    """The named preset of :data:`AUGMENTATIONS`; unknown names raise ``UnknownNameError``."""
    return AUGMENTATIONS.get(name)


# --------------------------------------------------------------------------- conversion


def _check_batch(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"expected an image batch (B, C, H, W), got {shape}")
    if x.dtype != torch.uint8 and not x.dtype.is_floating_point:
        raise TypeError(f"expected uint8 images (or float in [0, 1]), got {x.dtype}")


def _to_float(x: torch.Tensor) -> torch.Tensor:
    """A new float32 tensor in [0, 1] (uint8 is divided by 255; float input is copied)."""
    if x.dtype == torch.uint8:
        return x.to(torch.float32).div_(255.0)
    return x.to(torch.float32, copy=True)


def _resize(x: torch.Tensor, size: int | None) -> torch.Tensor:
    if size is None or (x.shape[-2] == size and x.shape[-1] == size):
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


def _stats(
    mean: Sequence[float], std: Sequence[float], channels: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    mean, std = tuple(float(m) for m in mean), tuple(float(s) for s in std)
    if len(mean) != len(std) or len(mean) not in (1, channels):
        raise ConfigError(
            f"mean/std have {len(mean)}/{len(std)} values for {channels}-channel images; "
            f"give 1 or {channels} values each"
        )
    if any(s <= 0 for s in std):
        raise ConfigError(f"std values must be > 0, got {std}")
    shape = (1, len(mean), 1, 1)
    return (
        torch.tensor(mean, dtype=torch.float32, device=device).view(shape),
        torch.tensor(std, dtype=torch.float32, device=device).view(shape),
    )


def _normalise(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    return x.sub_(mean).div_(std)


def to_float_normalised(
    x: torch.Tensor,
    mean: Sequence[float],
    std: Sequence[float],
    out_size: int | None = None,
) -> torch.Tensor:
    """Evaluation transform: uint8 ``(B, C, H, W)`` -> float32 ``(x / 255 - mean) / std``.

    If ``out_size`` is given the batch is resized to ``(out_size, out_size)`` (bilinear, antialias)
    before normalisation. Float input is taken as already in [0, 1]. Never modifies ``x``.
    """
    _check_batch(x)
    m, s = _stats(mean, std, x.shape[1], x.device)
    return _normalise(_resize(_to_float(x), out_size), m, s)


# --------------------------------------------------------------------------- colour ops
# Each op takes a float batch in [0, 1] and a per-sample factor of shape (B,) and returns a new
# batch in [0, 1]; samples never interact.

_GREY = (0.2989, 0.587, 0.114)  # torchvision / ITU-R 601 luma weights


def _grey(x: torch.Tensor) -> torch.Tensor:
    """Per-pixel grey (B, 1, H, W)."""
    if x.shape[1] == 1:
        return x
    r, g, b = x.unbind(1)
    return (_GREY[0] * r + _GREY[1] * g + _GREY[2] * b).unsqueeze(1)


def _blend(a: torch.Tensor, b: torch.Tensor | float, f: torch.Tensor) -> torch.Tensor:
    """``f * a + (1 - f) * b`` clamped to [0, 1]; ``f`` has shape (B,)."""
    f = f.view(-1, 1, 1, 1)
    return (f * a + (1.0 - f) * b).clamp_(0.0, 1.0)


def _brightness(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    return (x * f.view(-1, 1, 1, 1)).clamp_(0.0, 1.0)


def _contrast(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    return _blend(x, _grey(x).mean(dim=(1, 2, 3), keepdim=True), f)


def _saturation(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    if x.shape[1] == 1:
        return x.clone()
    return _blend(x, _grey(x), f)


def _sharpness(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """PIL ImageEnhance.Sharpness: blend with a smoothed copy (kernel [[1, 1, 1], [1, 5, 1],
    [1, 1, 1]] / 13, computed as a separable 3x3 box sum) whose one-pixel border is the original."""
    if x.shape[-1] < 3 or x.shape[-2] < 3:
        return x.clone()
    box = x[..., :-2, :] + x[..., 1:-1, :] + x[..., 2:, :]
    box = box[..., :-2] + box[..., 1:-1] + box[..., 2:]
    smooth = x.clone()
    smooth[..., 1:-1, 1:-1] = box.add_(x[..., 1:-1, 1:-1], alpha=4.0).div_(13.0)
    return _blend(x, smooth, f)


def _autocontrast(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Stretch each channel of each sample to [0, 1] (flat channels are left unchanged)."""
    lo = x.amin(dim=(2, 3), keepdim=True)
    hi = x.amax(dim=(2, 3), keepdim=True)
    flat = hi <= lo
    lo = torch.where(flat, torch.zeros_like(lo), lo)
    scale = torch.where(flat, torch.ones_like(hi), 1.0 / (hi - lo).clamp_min(1e-12))
    return ((x - lo) * scale).clamp_(0.0, 1.0)


def _equalize(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Histogram equalisation per sample and channel on 256 levels (the PIL/torchvision LUT)."""
    b, c, h, w = x.shape
    lv = (x * 255.0).round_().clamp_(0, 255).long().view(b * c, h * w)
    hist = torch.zeros(b * c, 256, dtype=torch.long, device=x.device)
    hist.scatter_add_(1, lv, torch.ones_like(lv))
    # PIL: step = (number of pixels not in the highest occupied level) // 255
    last = hist.gather(1, lv.amax(dim=1, keepdim=True))
    step = (h * w - last) // 255
    lut = (hist.cumsum(1) + step // 2) // step.clamp_min(1)
    lut = torch.cat([torch.zeros_like(lut[:, :1]), lut[:, :-1]], dim=1).clamp_(max=255)
    out = lut.gather(1, lv).to(x.dtype).div_(255.0)
    out = torch.where(step == 0, x.reshape(b * c, h * w), out)  # degenerate histogram: unchanged
    return out.view(b, c, h, w)


def _posterize(bits: int) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    q = float(2 ** (8 - bits))

    def op(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        return (x * 255.0).round_().div_(q).floor_().mul_(q / 255.0).clamp_(0.0, 1.0)

    return op


def _solarize(threshold: float) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    def op(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        return torch.where(x >= threshold, 1.0 - x, x)

    return op


#: The colour-only RandAugment op set, in the index order used by the per-sample draws.
RANDAUGMENT_OPS: tuple[str, ...] = (
    "identity",
    "autocontrast",
    "equalize",
    "brightness",
    "contrast",
    "color",
    "sharpness",
    "posterize",
    "solarize",
)


def _randaugment_table(magnitude: int) -> list[Callable | None]:
    v = magnitude / 10.0
    table = {
        "identity": None,
        "autocontrast": _autocontrast,
        "equalize": _equalize,
        "brightness": _brightness,
        "contrast": _contrast,
        "color": _saturation,
        "sharpness": _sharpness,
        "posterize": _posterize(8 - round(4 * v)),
        "solarize": _solarize(1.0 - v),
    }
    return [table[name] for name in RANDAUGMENT_OPS]


# --------------------------------------------------------------------------- geometry


def _symmetric(idx: torch.Tensor, n: int) -> torch.Tensor:
    """Reflect indices into 0..n-1, edge repeated: (..., 1, 0 | 0, 1, ..., n-1 | n-1, ...)."""
    m = idx.remainder(2 * n)
    return torch.where(m < n, m, 2 * n - 1 - m)


def _shift_flip(
    x: torch.Tensor,
    shift: torch.Tensor | None,
    hflip: torch.Tensor | None,
    vflip: torch.Tensor | None,
    pad: int,
    pad_mode: str,
) -> torch.Tensor:
    """Exact pad crop + flips by one gather: ``out[i, j] = x[flip(i) + dy, flip(j) + dx]``.

    ``shift`` (B, 2) holds (dx, dy) with ``|d| <= pad``. Works on any dtype (uint8 included);
    pixels shifted in from outside are 0 (``"zeros"``) or the symmetric reflection
    (``"reflect"``). Returns a new tensor.
    """
    b, c, h, w = x.shape
    dev = x.device
    if shift is None or pad_mode == "reflect":
        pad = 0
    else:
        x = F.pad(x, (pad, pad, pad, pad))  # zeros; indices below are into the padded image

    def axis(n: int, flip: torch.Tensor | None, d: torch.Tensor | None) -> torch.Tensor:
        idx = torch.arange(n, device=dev).expand(b, n)
        if flip is not None:
            idx = torch.where(flip[:, None], n - 1 - idx, idx)
        if d is None:
            return idx
        idx = idx + d[:, None]
        return _symmetric(idx, n) if pad_mode == "reflect" else idx + pad

    rows = axis(h, vflip, None if shift is None else shift[:, 1])
    cols = axis(w, hflip, None if shift is None else shift[:, 0])
    wp = w + 2 * pad
    flat = (rows[:, :, None] * wp + cols[:, None, :]).view(b, 1, h * w).expand(b, c, h * w)
    return x.reshape(b, c, -1).gather(2, flat).view(b, c, h, w)


# --------------------------------------------------------------------------- the transform


class DeviceAugment:
    """Batched augmentation + normalisation on the tensors' device.

    ``aug = DeviceAugment(get_spec("weak"), mean, std, out_size=None)``;
    ``views = aug(x_uint8, generator)`` gives float32 ``(B, C, S, S)`` with ``S = out_size or H``.
    See the module docstring for the pipeline and its conventions.
    """

    def __init__(
        self,
        spec: AugmentSpec | str,
        mean: Sequence[float],
        std: Sequence[float],
        out_size: int | None = None,
    ) -> None:
        self.spec = get_spec(spec) if isinstance(spec, str) else spec
        if out_size is not None and out_size < 1:
            raise ConfigError(f"out_size must be a positive int or None, got {out_size}")
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.out_size = out_size
        self._ra_table = _randaugment_table(self.spec.randaugment_magnitude)
        # RandAugment op selection: per-op row subsets (least work; a host sync per op) or
        # full-batch masks (no sync). None = subsets on CPU, masks on accelerators. Same results.
        self._masked_select: bool | None = None
        self._stats_cache: dict[tuple[torch.device, int], tuple[torch.Tensor, torch.Tensor]] = {}

    def __repr__(self) -> str:
        return f"DeviceAugment({self.spec}, mean={self.mean}, std={self.std}, out={self.out_size})"

    @property
    def is_random(self) -> bool:
        return self.spec.is_random

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """x: uint8 ``(B, C, H, W)`` (or float in [0, 1]); ``generator`` on x's device.

        Returns a new float32 ``(B, C, S, S)`` normalised batch, ``S = out_size or H``.
        """
        if not self.spec.is_random:
            return to_float_normalised(x, self.mean, self.std, self.out_size)
        _check_batch(x)
        _, c, h, w = x.shape
        if h != w:
            raise ValueError(f"DeviceAugment needs square images, got {h}x{w}")
        key = (x.device, c)
        if key not in self._stats_cache:  # (avoid a host -> device copy per batch)
            self._stats_cache[key] = _stats(self.mean, self.std, c, x.device)
        mean, std = self._stats_cache[key]
        size = self.out_size or h
        src = _resize(_to_float(x), size) if size < h else x
        img = self._geometry(src, size, generator)
        if img is x or img.dtype != torch.float32:
            img = _to_float(img)  # a new float tensor: the steps below may work in place
        img = self._colour(img, generator)
        img = self._randaugment(img, generator)
        img = _normalise(img, mean, std)
        return self._cutout(img, generator)

    # -- steps ---------------------------------------------------------------------------------

    def _geometry(self, img: torch.Tensor, size: int, g: torch.Generator | None) -> torch.Tensor:
        """Crop, flips, rotation and scaling to ``size``; ``img`` is uint8 or float, the result may
        be ``img`` itself or uint8 (the caller converts)."""
        sp = self.spec
        b = img.shape[0]
        dev = img.device
        shift = hflip = vflip = angle = None
        sx = sy = tx = ty = None
        if sp.crop == "pad":
            pad = sp.pad_for(size)
            shift = torch.randint(-pad, pad + 1, (b, 2), generator=g, device=dev)
        elif sp.crop == "resized":
            u = torch.rand(b, 4, generator=g, device=dev)
            area = sp.scale[0] + (sp.scale[1] - sp.scale[0]) * u[:, 0]
            lr0, lr1 = math.log(sp.ratio[0]), math.log(sp.ratio[1])
            ratio = torch.exp(lr0 + (lr1 - lr0) * u[:, 1])
            # crop side fractions; a crop that does not fit is clipped to the full side (torchvision
            # instead retries 10 times, then falls back to a centre crop)
            sx = torch.sqrt(area * ratio).clamp_(max=1.0)
            sy = torch.sqrt(area / ratio).clamp_(max=1.0)
            tx = (2.0 * u[:, 2] - 1.0) * (1.0 - sx)
            ty = (2.0 * u[:, 3] - 1.0) * (1.0 - sy)
        if sp.hflip:
            hflip = torch.rand(b, generator=g, device=dev) < 0.5
        if sp.vflip:
            vflip = torch.rand(b, generator=g, device=dev) < 0.5
        if sp.rotation:
            u = torch.rand(b, generator=g, device=dev)
            angle = (2.0 * u - 1.0) * math.radians(sp.rotation)

        same_size = img.shape[-1] == size
        if shift is None and sx is None and hflip is None and vflip is None and angle is None:
            return img if same_size else _resize(_to_float(img), size)
        if sx is None and angle is None and same_size:  # exact path (on uint8 if given uint8)
            return _shift_flip(img, shift, hflip, vflip, sp.pad_for(size), sp.pad_mode)
        if img.dtype != torch.float32:
            img = _to_float(img)

        # theta = Crop @ Flip @ Rot maps output to input coordinates (normalised, [-1, 1])
        one = torch.ones(b, dtype=img.dtype, device=dev)
        zero = torch.zeros_like(one)
        if shift is not None:
            sx = sy = one
            tx = shift[:, 0].to(img.dtype) * (2.0 / size)
            ty = shift[:, 1].to(img.dtype) * (2.0 / size)
        elif sx is None:
            sx = sy = one
            tx = ty = zero
        fx = one if hflip is None else 1.0 - 2.0 * hflip.to(img.dtype)
        fy = one if vflip is None else 1.0 - 2.0 * vflip.to(img.dtype)
        cos = one if angle is None else torch.cos(angle).to(img.dtype)
        sin = zero if angle is None else torch.sin(angle).to(img.dtype)
        # the sampling grid of F.affine_grid(theta, align_corners=False), built by broadcasting
        # (affine_grid's batched matmul is several times slower on CPU)
        lin = torch.arange(size, device=dev, dtype=img.dtype)
        lin = lin.mul_(2.0 / size).add_(1.0 / size - 1.0)
        gx, gy = lin.view(1, 1, size), lin.view(1, size, 1)

        def row(a: torch.Tensor, b_: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return a.view(-1, 1, 1) * gx + b_.view(-1, 1, 1) * gy + t.view(-1, 1, 1)

        grid = torch.stack(
            [row(sx * fx * cos, -sx * fx * sin, tx), row(sy * fy * sin, sy * fy * cos, ty)], dim=-1
        )
        if sp.pad_mode == "reflect":
            return F.grid_sample(img, grid, padding_mode="reflection", align_corners=False)
        # Sample with the border replicated, so a crop that touches the image edge (or an
        # up-scaled edge pixel) is not blended with black, then blank what lies outside the image.
        out = F.grid_sample(img, grid, padding_mode="border", align_corners=False)
        if shift is not None or angle is not None:
            outside = (grid.abs() > 1.0 + 1e-6).any(dim=-1)  # (B, S, S)
            out.masked_fill_(outside.unsqueeze(1), 0.0)
        return out

    def _factors(
        self, strength: float, b: int, g: torch.Generator | None, dev: torch.device
    ) -> torch.Tensor:
        """Per-sample factors uniform in [1 - strength, 1 + strength]."""
        u = torch.rand(b, generator=g, device=dev)
        return 1.0 - strength + 2.0 * strength * u

    def _colour(self, img: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        sp = self.spec
        b, dev = img.shape[0], img.device
        if sp.brightness:
            img = _brightness(img, self._factors(sp.brightness, b, g, dev))
        if sp.contrast:
            img = _contrast(img, self._factors(sp.contrast, b, g, dev))
        if sp.saturation and img.shape[1] == 3:
            img = _saturation(img, self._factors(sp.saturation, b, g, dev))
        return img

    def _randaugment(self, img: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        n = self.spec.randaugment_ops
        if n == 0:
            return img
        b, dev = img.shape[0], img.device
        masked = dev.type != "cpu" if self._masked_select is None else self._masked_select
        strength = 0.9 * self.spec.randaugment_magnitude / 10.0
        for _ in range(n):
            choice = torch.randint(0, len(self._ra_table), (b,), generator=g, device=dev)
            sign = torch.rand(b, generator=g, device=dev) < 0.5
            factor = torch.where(sign, 1.0 - strength, 1.0 + strength).to(img.dtype)
            out = img if masked else img.clone()
            for k, op in enumerate(self._ra_table):
                if op is None:
                    continue
                if masked:
                    sel = (choice == k).view(-1, 1, 1, 1)
                    out = torch.where(sel, op(img, factor), out)
                else:
                    rows = (choice == k).nonzero().squeeze(1)
                    if rows.numel():
                        out.index_copy_(0, rows, op(img.index_select(0, rows), factor[rows]))
            img = out
        return img

    def _cutout(self, img: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        if not self.spec.cutout:
            return img
        b, _, h, w = img.shape
        side = math.floor(self.spec.cutout * h + 0.5)
        if side <= 0:
            return img
        dev = img.device
        y0 = torch.randint(0, h - side + 1, (b, 1), generator=g, device=dev)
        x0 = torch.randint(0, w - side + 1, (b, 1), generator=g, device=dev)
        ar_h = torch.arange(h, device=dev)
        ar_w = torch.arange(w, device=dev)
        in_y = (ar_h >= y0) & (ar_h < y0 + side)  # (B, H)
        in_x = (ar_w >= x0) & (ar_w < x0 + side)  # (B, W)
        keep = ~(in_y[:, :, None] & in_x[:, None, :])
        return img.mul_(keep.unsqueeze(1).to(img.dtype))
