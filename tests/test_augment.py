"""Tests of the batched device-side augmentation (lnmbench.data.augment)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lnmbench.data.augment import (
    AUGMENTATIONS,
    RANDAUGMENT_OPS,
    AugmentSpec,
    DeviceAugment,
    _equalize,
    _randaugment_table,
    get_spec,
    to_float_normalised,
)
from lnmbench.errors import ConfigError, UnknownNameError

MEAN3, STD3 = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
RANDOM_PRESETS = [n for n in AUGMENTATIONS if n != "none"]


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def images(b: int = 8, c: int = 3, s: int = 28, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (b, c, s, s), dtype=torch.uint8, generator=gen(seed))


def ramp(b: int, c: int = 1, s: int = 12) -> torch.Tensor:
    """An asymmetric image (all pixels distinct, no flip symmetry), repeated b times."""
    img = (torch.arange(s * s).view(s, s) * 251 // (s * s) + 3).to(torch.uint8)
    return img.expand(b, c, s, s).clone()


def unnormalise(y: torch.Tensor, mean, std) -> torch.Tensor:
    c = y.shape[1]
    m = torch.tensor(mean[:c]).view(1, -1, 1, 1)
    s = torch.tensor(std[:c]).view(1, -1, 1, 1)
    return y * s + m


# --------------------------------------------------------------------------- presets and specs


def test_presets_match_the_spec():
    weak, strong = get_spec("weak"), get_spec("strong")
    assert weak.hflip and weak.crop == "resized" and weak.scale == (0.8, 1.0)
    assert not weak.randaugment_ops and not weak.cutout and not weak.brightness
    assert strong.crop == weak.crop and strong.scale == weak.scale and strong.hflip
    assert (strong.randaugment_ops, strong.randaugment_magnitude, strong.cutout) == (2, 5, 0.15)
    dr = get_spec("dr")
    assert dr.scale == (0.95, 1.0) and dr.ratio == (0.95, 1.05) and dr.rotation == 5.0
    assert (dr.brightness, dr.contrast, dr.hflip) == (0.1, 0.1, True)
    std = get_spec("standard")
    assert std.crop == "pad" and std.hflip and std.pad_for(28) == 3 and std.pad_for(32) == 4
    assert std.pad_for(8) == 2
    assert not get_spec("none").is_random
    assert all(AUGMENTATIONS.get(n).is_random for n in RANDOM_PRESETS)
    assert "color" in RANDAUGMENT_OPS and "rotate" not in RANDAUGMENT_OPS


def test_unknown_name_lists_known_names():
    with pytest.raises(UnknownNameError) as err:
        get_spec("bogus")
    msg = str(err.value)
    assert "bogus" in msg and all(name in msg for name in AUGMENTATIONS)


@pytest.mark.parametrize(
    "kw",
    [
        {"crop": "center"},
        {"scale": (0.0, 1.0)},
        {"scale": (0.9, 0.8)},
        {"brightness": 1.5},
        {"randaugment_magnitude": 11},
        {"cutout": 1.0},
        {"pad": -1},
        {"pad_mode": "edge"},
    ],
)
def test_invalid_spec_raises(kw):
    with pytest.raises(ConfigError):
        AugmentSpec(**kw)


def test_mean_std_length_must_match_channels():
    with pytest.raises(ConfigError):
        DeviceAugment(get_spec("weak"), MEAN3, STD3)(images(c=1), gen())
    with pytest.raises(ConfigError):
        to_float_normalised(images(c=3), (0.5, 0.5), (0.5, 0.5))


# --------------------------------------------------------------------------- shape, range, eval


@pytest.mark.parametrize("name", list(AUGMENTATIONS))
@pytest.mark.parametrize("c", [1, 3])
@pytest.mark.parametrize("out_size", [None, 20, 40])
def test_shape_dtype_range(name, c, out_size):
    mean, std = MEAN3[:c], STD3[:c]
    x = images(b=6, c=c, s=28)
    y = DeviceAugment(get_spec(name), mean, std, out_size=out_size)(x, gen(1))
    s = out_size or 28
    assert y.shape == (6, c, s, s) and y.dtype == torch.float32
    v = unnormalise(y, mean, std)
    assert v.min() >= -1e-5 and v.max() <= 1 + 1e-5
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("out_size", [None, 16, 56])
def test_none_is_exactly_the_eval_transform(out_size):
    x = images(b=5, c=3, s=28)
    aug = DeviceAugment(get_spec("none"), MEAN3, STD3, out_size=out_size)
    assert torch.equal(aug(x, gen(0)), to_float_normalised(x, MEAN3, STD3, out_size))


def test_normalisation_of_a_constant_image():
    x = torch.full((2, 3, 10, 10), 128, dtype=torch.uint8)
    y = to_float_normalised(x, MEAN3, STD3)
    for ch in range(3):
        expected = (128 / 255 - MEAN3[ch]) / STD3[ch]
        assert torch.allclose(y[:, ch], torch.full_like(y[:, ch], expected), atol=1e-6)
    # a resize keeps a constant image constant
    y2 = to_float_normalised(x, MEAN3, STD3, out_size=7)
    assert y2.shape == (2, 3, 7, 7) and torch.allclose(y2, y[:, :, :7, :7], atol=1e-6)


def test_downscaling_is_antialiased():
    noise = torch.randint(0, 256, (4, 1, 64, 64), dtype=torch.uint8, generator=gen(0))
    y = to_float_normalised(noise, (0.0,), (1.0,), out_size=16)
    assert y.std() < 0.08  # plain bilinear (2x2 taps of uniform noise) would give about 0.14
    y2 = DeviceAugment(get_spec("standard"), (0.0,), (1.0,), out_size=16)(noise, gen(0))
    assert y2[..., 2:-2, 2:-2].std() < 0.08


def test_input_is_never_modified_float_input_accepted():
    x = images(b=4)
    xf = x.float() / 255
    before, before_f = x.clone(), xf.clone()
    for name in AUGMENTATIONS:
        aug = DeviceAugment(name, MEAN3, STD3)
        y = aug(x, gen(3))
        yf = aug(xf, gen(3))
        assert torch.allclose(y, yf, atol=1e-5)
    assert torch.equal(x, before) and torch.equal(xf, before_f)


# --------------------------------------------------------------------------- randomness


@pytest.mark.parametrize("name", RANDOM_PRESETS)
def test_determinism_same_seed_same_output_other_seed_differs(name):
    x = images(b=16, c=3, s=28)
    aug = DeviceAugment(get_spec(name), MEAN3, STD3)
    a, b, c = aug(x, gen(7)), aug(x, gen(7)), aug(x, gen(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("name", RANDOM_PRESETS)
def test_identical_images_get_different_views_rows_are_independent(name):
    x = images(b=1, c=3, s=28).expand(12, 3, 28, 28).contiguous()
    aug = DeviceAugment(get_spec(name), MEAN3, STD3)
    y = aug(x, gen(5))
    distinct = {tuple(r.flatten().tolist()) for r in y}
    assert len(distinct) >= 4  # random per sample (a few rows may coincide by chance)
    # each output row depends only on its own input row: change row 0, the others stay the same
    x2 = x.clone()
    x2[0] = 255 - x2[0]
    y2 = aug(x2, gen(5))
    assert not torch.equal(y2[0], y[0])
    assert torch.allclose(y2[1:], y[1:], atol=1e-6)
    # "none" gives identical rows
    y0 = DeviceAugment(get_spec("none"), MEAN3, STD3)(x, gen(5))
    assert all(torch.equal(y0[0], r) for r in y0)


# --------------------------------------------------------------------------- geometry


def test_hflip_rows_are_input_or_mirror():
    x = ramp(200)
    aug = DeviceAugment(AugmentSpec(hflip=True), (0.0,), (1.0,))
    y = aug(x, gen(0))
    ref = x.float() / 255
    same = (y == ref).flatten(1).all(1)
    mirrored = (y == ref.flip(-1)).flatten(1).all(1)
    assert (same ^ mirrored).all()
    assert 60 <= int(mirrored.sum()) <= 140


def test_vflip_rows_are_input_or_vertical_mirror():
    x = ramp(100)
    y = DeviceAugment(AugmentSpec(vflip=True), (0.0,), (1.0,))(x, gen(0))
    ref = x.float() / 255
    same = (y == ref).flatten(1).all(1)
    mirrored = (y == ref.flip(-2)).flatten(1).all(1)
    assert (same ^ mirrored).all() and 0 < int(mirrored.sum()) < 100


def shifted(img: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """out[i, j] = img[i + dy, j + dx], 0 outside."""
    s = img.shape[-1]
    out = torch.zeros_like(img)
    ys, yd = slice(max(dy, 0), s + min(dy, 0)), slice(max(-dy, 0), s + min(-dy, 0))
    xs, xd = slice(max(dx, 0), s + min(dx, 0)), slice(max(-dx, 0), s + min(-dx, 0))
    out[..., yd, xd] = img[..., ys, xs]
    return out


@pytest.mark.parametrize("rotation", [0.0, 1e-9])  # 1e-9: the affine (grid_sample) path
def test_pad_crop_is_an_integer_shift(rotation):
    pad = 3
    x = ramp(150, c=3)
    spec = AugmentSpec(crop="pad", pad=pad, rotation=rotation)
    y = DeviceAugment(spec, (0.0,) * 3, (1.0,) * 3)(x, gen(2))
    ref = x[0].float() / 255
    candidates = {(dy, dx): shifted(ref, dy, dx) for dy in range(-3, 4) for dx in range(-3, 4)}
    seen = set()
    atol = 0.0 if rotation == 0 else 1e-4
    for row in y:
        hits = [k for k, v in candidates.items() if torch.allclose(row, v, atol=atol, rtol=0)]
        assert len(hits) == 1
        seen.add(hits[0])
    assert (0, 0) in seen and len(seen) >= 30  # the centre crop and most shifts occur
    assert {k[0] for k in seen} == set(range(-pad, pad + 1))


def test_pad_crop_reflect_fills_with_the_mirror():
    x = ramp(60)
    y = DeviceAugment(AugmentSpec(crop="pad", pad=2, pad_mode="reflect"), (0.0,), (1.0,))(x, gen(0))
    ref = x[0, 0].float() / 255
    assert (y > 0).all()  # nothing black shifted in
    padded = torch.cat([ref[:, :2].flip(-1), ref, ref[:, -2:].flip(-1)], dim=-1)
    padded = torch.cat([padded[:2].flip(-2), padded, padded[-2:].flip(-2)], dim=-2)
    windows = {
        (dy, dx): padded[2 + dy : 2 + dy + 12, 2 + dx : 2 + dx + 12]
        for dy in range(-2, 3)
        for dx in range(-2, 3)
    }
    for row in y[:, 0]:
        assert any(torch.equal(row, w) for w in windows.values())


def test_standard_preset_pad_is_computed_from_size():
    x = ramp(300, s=16)  # pad = max(2, 16 // 8) = 2
    y = DeviceAugment(get_spec("standard"), (0.0,), (1.0,))(x, gen(4))
    ref = x[0, 0].float() / 255
    zero_cols = (y[:, 0] == 0).all(dim=1).sum(dim=1)  # black columns shifted in
    zero_rows = (y[:, 0] == 0).all(dim=2).sum(dim=1)
    assert zero_cols.max() == 2 and zero_rows.max() == 2
    assert any(torch.equal(r, ref) or torch.equal(r, ref.flip(-1)) for r in y[:, 0])


def test_full_resized_crop_without_rotation_is_identity():
    x = images(b=6, c=3, s=20)
    spec = AugmentSpec(crop="resized", scale=(1.0, 1.0), ratio=(1.0, 1.0))
    y = DeviceAugment(spec, (0.0,) * 3, (1.0,) * 3)(x, gen(0))
    assert torch.allclose(y, x.float() / 255, atol=1e-5, rtol=0)


def test_resized_crop_zooms_in():
    # a horizontal intensity ramp of slope 8 levels / px; a crop of area 1/4 and ratio 1 is a
    # 2x zoom of a 16 px window: the output slope is 4 levels / px, constant along the height
    s = 32
    x = (torch.arange(s) * 8).to(torch.uint8).expand(16, 1, s, s).contiguous()
    spec = AugmentSpec(crop="resized", scale=(0.25, 0.25), ratio=(1.0, 1.0))
    y = DeviceAugment(spec, (0.0,), (1.0,))(x, gen(0))[:, 0] * 255
    assert torch.allclose(y, y[:, :1, :].expand_as(y), atol=1e-3)
    slope = (y[:, 0, 1:] - y[:, 0, :-1]).median(dim=1).values
    assert torch.allclose(slope, torch.full_like(slope, 4.0), atol=1e-3)
    starts = y[:, 0, s // 2]  # the window position is random
    assert starts.max() - starts.min() > 20


@pytest.mark.parametrize("out_size", [None, 24, 64])
def test_crops_and_upscaling_do_not_darken_the_edges(out_size):
    x = torch.full((32, 3, 16, 16), 200, dtype=torch.uint8)
    for name in ("weak", "dr"):
        spec = get_spec(name)
        spec = AugmentSpec(crop=spec.crop, scale=spec.scale, ratio=spec.ratio, hflip=True)
        y = DeviceAugment(spec, (0.0,) * 3, (1.0,) * 3, out_size=out_size)(x, gen(0))
        assert torch.allclose(y, torch.full_like(y, 200 / 255), atol=1e-5), name
    # an up-scaled pad crop: black only where the shift brings in the outside
    y = DeviceAugment(AugmentSpec(crop="pad", pad=4), (0.0,) * 3, (1.0,) * 3, out_size=32)(
        x, gen(0)
    )
    assert ((y == 0) | ((y - 200 / 255).abs() < 1e-5)).all()
    assert (y == 0).any()


def test_rotation_fills_corners_with_black_and_keeps_centre():
    x = torch.full((64, 1, 21, 21), 255, dtype=torch.uint8)
    y = DeviceAugment(AugmentSpec(rotation=45.0), (0.0,), (1.0,))(x, gen(0))
    assert torch.allclose(y[:, 0, 8:13, 8:13], torch.ones(64, 5, 5))
    corner = y[:, 0, 0, 0]
    assert (corner < 0.05).sum() > 20  # large angles blank the corners
    assert (corner > 0.5).any()  # small angles do not


# --------------------------------------------------------------------------- colour


@pytest.mark.parametrize("c", [1, 3])
def test_brightness_factor_range(c):
    b = 0.3
    x = torch.full((300, c, 8, 8), 128, dtype=torch.uint8)
    mean, std = (0.5,) * c, (0.25,) * c
    y = DeviceAugment(AugmentSpec(brightness=b), mean, std)(x, gen(0))
    ratio = unnormalise(y, mean, std).mean(dim=(1, 2, 3)) / (128 / 255)
    assert ratio.min() >= 1 - b - 1e-5 and ratio.max() <= 1 + b + 1e-5
    assert ratio.min() < 1 - b / 2 and ratio.max() > 1 + b / 2  # the whole range is used


def test_contrast_keeps_mean_grey_and_scales_deviation():
    x = torch.full((100, 1, 8, 8), 100, dtype=torch.uint8)
    x[..., :4] = 140  # mean grey 120/255, deviation ±20/255
    y = DeviceAugment(AugmentSpec(contrast=0.4), (0.0,), (1.0,))(x, gen(0))
    assert torch.allclose(y.mean(dim=(1, 2, 3)), torch.full((100,), 120 / 255), atol=1e-5)
    dev = (y[:, 0, 0, 0] - y[:, 0, 0, -1]) / (40 / 255)
    assert dev.min() >= 0.6 - 1e-4 and dev.max() <= 1.4 + 1e-4 and dev.std() > 0.1


def test_saturation_keeps_grey_pixels_and_changes_colour_ones():
    x = torch.zeros(50, 3, 6, 6, dtype=torch.uint8)
    x[:, :, :3] = 90  # grey half
    x[:, 0, 3:] = 200  # red half
    y = DeviceAugment(AugmentSpec(saturation=0.5), (0.0,) * 3, (1.0,) * 3)(x, gen(0))
    assert torch.allclose(y[:, :, :3], torch.full_like(y[:, :, :3], 90 / 255), atol=1e-4)
    assert y[:, 0, 3:].std() > 0.01  # red intensity varies with the factor


# --------------------------------------------------------------------------- strong view


def test_strong_differs_from_weak_but_shares_its_geometry():
    x = images(b=32, c=3, s=28)
    weak = DeviceAugment(get_spec("weak"), MEAN3, STD3)(x, gen(11))
    strong = DeviceAugment(get_spec("strong"), MEAN3, STD3)(x, gen(11))
    assert weak.shape == strong.shape
    diff = (weak - strong).abs().flatten(1).amax(1)
    assert (diff > 1e-3).float().mean() > 0.8  # almost every sample changed (identity x2 is rare)
    # strong without RandAugment / cutout = weak (same draws first)
    weak_again = DeviceAugment(
        AugmentSpec(crop="resized", scale=(0.8, 1.0), hflip=True, randaugment_magnitude=9),
        MEAN3,
        STD3,
    )(x, gen(11))
    assert torch.equal(weak, weak_again)


def test_randaugment_changes_almost_every_sample():
    x = images(b=64, c=3, s=28)
    base = AugmentSpec(crop="resized", hflip=True)
    ra = AugmentSpec(crop="resized", hflip=True, randaugment_ops=2, randaugment_magnitude=5)
    a = DeviceAugment(base, MEAN3, STD3)(x, gen(1))
    b = DeviceAugment(ra, MEAN3, STD3)(x, gen(1))
    changed = (a - b).abs().flatten(1).amax(1) > 1e-3
    assert changed.float().mean() > 0.85  # both slots identity: 1 / 81


@pytest.mark.parametrize(("s", "frac", "side"), [(28, 0.15, 4), (32, 0.15, 5), (20, 0.5, 10)])
def test_cutout_zeroes_one_square_of_the_expected_side(s, frac, side):
    x = torch.full((40, 3, s, s), 255, dtype=torch.uint8)
    mean, std = (0.5,) * 3, (0.5,) * 3  # white -> 1.0 after normalisation, cutout -> 0
    y = DeviceAugment(AugmentSpec(cutout=frac), mean, std)(x, gen(0))
    zero = (y == 0).all(dim=1)  # (B, s, s)
    assert ((y == 0) | (y == 1)).all()
    corners = set()
    for m in zero:
        rows, cols = m.any(1).nonzero().flatten(), m.any(0).nonzero().flatten()
        assert int(m.sum()) == side * side
        assert rows.numel() == side and cols.numel() == side
        assert int(rows[-1] - rows[0]) == side - 1 and int(cols[-1] - cols[0]) == side - 1
        corners.add((int(rows[0]), int(cols[0])))
    assert len(corners) > 10  # the position is random


def _run_op(name: str, x: torch.Tensor, factor: float = 1.45, magnitude: int = 5):
    op = _randaugment_table(magnitude)[RANDAUGMENT_OPS.index(name)]
    return op(x, torch.full((x.shape[0],), factor))


def test_randaugment_ops_semantics():
    g = gen(0)
    x = torch.randint(10, 200, (4, 3, 16, 16), generator=g).float() / 255
    # autocontrast stretches every channel to [0, 1]
    ac = _run_op("autocontrast", x)
    assert torch.allclose(ac.amin(dim=(2, 3)), torch.zeros(4, 3), atol=1e-6)
    assert torch.allclose(ac.amax(dim=(2, 3)), torch.ones(4, 3), atol=1e-6)
    # posterize at magnitude 5 keeps 6 bits
    po = (_run_op("posterize", x) * 255).round().long()
    assert (po % 4 == 0).all() and (po - (x * 255).round().long()).abs().max() <= 3
    # solarize at magnitude 5 inverts pixels >= 0.5 only
    so = _run_op("solarize", x)
    assert torch.allclose(so, torch.where(x >= 0.5, 1 - x, x))
    # brightness / color / contrast / sharpness are identity at factor 1 and change at 1.45
    for name in ("brightness", "color", "contrast", "sharpness"):
        assert torch.allclose(_run_op(name, x, factor=1.0), x, atol=1e-6), name
        assert not torch.allclose(_run_op(name, x), x, atol=1e-3), name
    # color at factor 0 is the luma grey in every channel
    grey = 0.2989 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    co = _run_op("color", x, factor=0.0)
    assert torch.allclose(co, grey.unsqueeze(1).expand_as(co), atol=1e-6)
    # contrast at factor 0 is the per-sample mean luma everywhere
    ct = _run_op("contrast", x, factor=0.0)
    assert torch.allclose(ct, grey.mean(dim=(1, 2)).view(4, 1, 1, 1).expand_as(ct), atol=1e-6)
    # sharpness matches the PIL smoothing kernel on an interior pixel
    k = torch.tensor([[1.0, 1, 1], [1, 5, 1], [1, 1, 1]]) / 13
    smooth = (x[0, 0, 4:7, 4:7] * k).sum()
    sh = _run_op("sharpness", x, factor=0.0)
    assert torch.isclose(sh[0, 0, 5, 5], smooth, atol=1e-6)
    assert torch.equal(sh[..., 0, :], x[..., 0, :])  # border kept


def _equalize_reference(levels: torch.Tensor) -> torch.Tensor:
    """PIL/torchvision equalisation of one channel of integer levels (a plain loop)."""
    hist = torch.bincount(levels.flatten(), minlength=256)
    nonzero = hist[hist != 0]
    step = int(nonzero[:-1].sum()) // 255
    if step == 0:
        return levels
    lut, acc = [], step // 2
    for count in hist.tolist():
        lut.append(min(acc // step, 255))
        acc += count
    return torch.tensor(lut)[levels]


def test_equalize_matches_the_pil_algorithm():
    g = gen(3)
    lv = torch.randint(40, 120, (3, 3, 20, 20), generator=g)  # PIL needs > 255 pixels
    lv[1, 2] = 77  # a flat channel: unchanged
    lv[2, 0, :7] = 0
    out = _equalize(lv.float() / 255, torch.ones(3))
    got = (out * 255).round().long()
    for b in range(3):
        for c in range(3):
            assert torch.equal(got[b, c], _equalize_reference(lv[b, c])), (b, c)
    assert got[0].max() == 255 and got[0].min() < 20  # the histogram is spread out


def test_subset_and_masked_op_selection_agree():
    x = images(b=48, c=3, s=20)
    aug = DeviceAugment(get_spec("strong"), MEAN3, STD3)
    aug._masked_select = False
    a = aug(x, gen(9))
    aug._masked_select = True
    b = aug(x, gen(9))
    assert torch.allclose(a, b, atol=1e-5)


def test_one_channel_strong_view():
    x = images(b=32, c=1, s=28)
    y = DeviceAugment(get_spec("strong"), (0.5,), (0.5,))(x, gen(0))
    assert y.shape == (32, 1, 28, 28)
    v = unnormalise(y, (0.5,), (0.5,))
    assert v.min() >= 0 and v.max() <= 1
    assert not math.isclose(float(v.std()), 0.0)


def test_image_transform_is_the_eval_transform_of_the_train_view():
    from lnmbench.engine.image_transform import ImageTransform
    from lnmbench.engine.train_view import TrainView

    x = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator())
    t = ImageTransform.of(np.array([0.5, 0.4, 0.3]), [0.25] * 3, out_size=6)
    view = TrainView(
        x,
        torch.zeros(4, dtype=torch.long),
        transform=t,
        train_augment="none",
        generator=torch.Generator(),
    )
    expected = to_float_normalised(x, [0.5, 0.4, 0.3], [0.25] * 3, 6)
    assert t(x).shape == (4, 3, 6, 6)
    assert torch.equal(t(x), expected) and torch.equal(view.eval_view(torch.arange(4)), expected)
    assert not ImageTransform.of([0.5] * 3, [0.25] * 3, channels_last=True)(x).is_contiguous()
