"""ImageNet backbones through the optional timm extra (``pip install 'lnmbench[timm]'``)."""

from __future__ import annotations

from torch import nn

from lnmbench.errors import ConfigError
from lnmbench.models.registry import register_model

# lnmbench name -> timm name
TIMM_MODELS = {
    "timm-resnet50": (
        "resnet50.tv_in1k",
        "ImageNet ResNet-50 (torchvision V1 weights, the paper's)",
    ),
    "timm-resnet18": ("resnet18.tv_in1k", "ImageNet ResNet-18"),
    "timm-densenet121": ("densenet121.tv_in1k", "ImageNet DenseNet-121"),
    "timm-convnext_tiny": ("convnext_tiny.fb_in1k", "ConvNeXt-Tiny"),
    "timm-vit_small": ("vit_small_patch16_224.augreg_in21k_ft_in1k", "ViT-S/16 (224 px only)"),
    "timm-swin_tiny": ("swin_tiny_patch4_window7_224.ms_in1k", "Swin-T (224 px only)"),
}


def _import_timm():
    try:
        import timm
    except Exception as exc:  # ImportError, or torchvision failing beside a CPU torch build
        raise ConfigError(
            "ImageNet models need the timm extra: pip install 'lnmbench[timm]' "
            f"(import failed: {exc})"
        ) from None
    return timm


def _make_builder(timm_name: str):
    def build(num_classes: int, in_chans: int, pretrained: bool = False) -> nn.Module:
        timm = _import_timm()
        try:
            return timm.create_model(
                timm_name, pretrained=pretrained, num_classes=num_classes, in_chans=in_chans
            )
        except Exception as exc:
            if pretrained:
                raise ConfigError(
                    f"could not load pretrained weights for {timm_name!r} ({exc}); they are "
                    "downloaded from the Hugging Face hub on first use: check the connection, "
                    "pre-populate HF_HOME, or set pretrained: false"
                ) from None
            raise

    return build


for _name, (_timm_name, _desc) in TIMM_MODELS.items():
    register_model(
        _name, f"{_desc} [timm: {_timm_name}]", "224 px", needs_timm=True, has_pretrained=True
    )(_make_builder(_timm_name))
