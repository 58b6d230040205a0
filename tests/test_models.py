"""Backbones: registry, shapes, channel counts, clear errors."""

from __future__ import annotations

import pytest
import torch

from lnmbench import models
from lnmbench.errors import ConfigError, UnknownNameError


@pytest.mark.parametrize("name", ["cnn", "cnn-tiny", "cnn-wide", "resnet18", "preact_resnet18"])
@pytest.mark.parametrize("in_chans", [1, 3])
def test_output_shape_and_gradients(name, in_chans):
    torch.manual_seed(0)
    net = models.create(name, num_classes=5, in_chans=in_chans)
    x = torch.randn(2, in_chans, 28, 28)
    out = net(x)
    assert out.shape == (2, 5)
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)


def test_same_seed_same_weights():
    torch.manual_seed(3)
    a = models.create("cnn", 4, 3)
    torch.manual_seed(3)
    b = models.create("cnn", 4, 3)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_resnet_depths_and_64px():
    n18 = sum(p.numel() for p in models.create("resnet18", 10, 3).parameters())
    n34 = sum(p.numel() for p in models.create("resnet34", 10, 3).parameters())
    assert 11.0e6 < n18 < 11.3e6 and 21.0e6 < n34 < 21.5e6
    assert models.create("resnet50", 9, 3)(torch.randn(2, 3, 64, 64)).shape == (2, 9)


def test_imagenet_stem_resnet18_quarters_the_maps_and_keeps_the_cifar_weights():
    torch.manual_seed(0)
    net = models.create("resnet18-imagenet", 7, 3)
    n = sum(p.numel() for p in net.parameters())
    assert 11.1e6 < n < 11.3e6  # torchvision's resnet18 with 7 classes: 11.18 M
    x = torch.randn(2, 3, 224, 224)
    stem = net.pool(torch.relu(net.bn1(net.conv1(x))))
    assert stem.shape == (2, 64, 56, 56) and net(x).shape == (2, 7)
    # the CIFAR ResNet-18's parameters and initialisation are unchanged by the stem option
    torch.manual_seed(0)
    cifar = models.create("resnet18", 7, 3)
    assert cifar.conv1.kernel_size == (3, 3) and isinstance(cifar.pool, torch.nn.Identity)
    assert [k for k in cifar.state_dict() if "conv1" not in k] == [
        k for k in net.state_dict() if "conv1" not in k
    ]


def test_errors():
    with pytest.raises(UnknownNameError, match="unknown model 'vgg'; known: .*resnet18"):
        models.create("vgg", 2)
    with pytest.raises(ConfigError, match="no pretrained weights; use the ImageNet model 'timm-r"):
        models.create("resnet18", 2, pretrained=True)
    with pytest.raises(ConfigError, match="'cnn' has no pretrained weights; set pretrained: false"):
        models.create("cnn", 2, pretrained=True)
    assert models.MODELS.get("timm-resnet18").has_pretrained
    assert not models.MODELS.get("cnn").has_pretrained


def test_timm_models_need_the_extra_or_build():
    try:
        import timm  # noqa: F401
    except Exception:
        with pytest.raises(ConfigError, match=r"pip install 'lnmbench\[timm\]'"):
            models.create("timm-resnet50", 2)
    else:
        assert models.create("timm-resnet18", 3)(torch.randn(1, 3, 64, 64)).shape == (1, 3)
