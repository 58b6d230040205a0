"""Run configuration: presets, validation with clear errors, hashing."""

from __future__ import annotations

import pytest

from lnmbench.errors import ConfigError, UnknownNameError
from lnmbench.experiment.config import resolve_config


def test_defaults_are_ce_on_demo_symmetric_04_fast():
    cfg = resolve_config({})
    assert (cfg.method, cfg.dataset, cfg.noise.name, cfg.noise.rate) == (
        "ce",
        "demo",
        "symmetric",
        0.4,
    )
    assert cfg.preset == "fast" and cfg.model == "cnn" and cfg.size == 28
    assert cfg.hparams["batch_size"] == 128 and cfg.hparams["nesterov"] is True


def test_hparams_fully_resolved_and_hash_changes_with_any_of_them():
    a = resolve_config({})
    b = resolve_config({"hparams": {"lr": 0.02}})
    assert a.config_hash() == resolve_config({}).config_hash()
    assert a.config_hash() != b.config_hash()
    assert a.config_hash() != resolve_config({"noise": {"rate": 0.5}}).config_hash()
    assert a.config_hash() != resolve_config({"seed": 1}).config_hash()
    # where the data lives or which device trains does not change the identity of the run
    assert a.config_hash() == resolve_config({"device": "cpu", "data_dir": "/x"}).config_hash()
    assert a.run_name().startswith("ce_demo_symmetric0.4_s0_")


def test_lnmbench_preset_is_the_reference_protocol():
    cfg = resolve_config({"preset": "lnmbench"})
    assert cfg.size == 224 and cfg.epochs == 50 and cfg.model == "timm-resnet50"
    assert cfg.pretrained and cfg.hparams["batch_size"] == 16


def test_bad_values_give_clear_errors():
    with pytest.raises(ConfigError, match="noise rate must be in"):
        resolve_config({"noise": {"rate": 1.2}})
    with pytest.raises(ConfigError, match="unknown hyperparameter.*'lrr'.*known: .*lr"):
        resolve_config({"hparams": {"lrr": 0.1}})
    with pytest.raises(UnknownNameError, match="unknown method 'xe'; known: .*ce"):
        resolve_config({"method": "xe"})
    with pytest.raises(ConfigError, match="unknown preset 'slow'"):
        resolve_config({"preset": "slow"})
    with pytest.raises(ConfigError, match="epochs"):
        resolve_config({"epochs": 0})
    with pytest.raises(ConfigError, match="epoch: Extra inputs are not permitted"):
        resolve_config({"epoch": 3})


def test_faithful_preset_extends_lnmbench_with_reference_options():
    cfg = resolve_config({"preset": "lnmbench-faithful", "method": "jocor"})
    assert cfg.model == "timm-resnet50" and cfg.size == 224  # inherited from lnmbench
    assert cfg.hparams["ce_reduction"] == "batch_mean" and cfg.hparams["start_epoch"] == 1
    assert (
        resolve_config({"preset": "lnmbench-faithful", "method": "volminnet"}).hparams["t_on"]
        == "logits"
    )
    assert resolve_config({"preset": "lnmbench", "method": "volminnet"}).hparams["t_on"] == "probs"


def test_fast_preset_is_the_papers_regime():
    """No augmentation of the training view, 40 epochs, schedules of the methods' own papers."""
    cfg = resolve_config({})
    assert cfg.preset == "fast" and cfg.augment == "none" and cfg.epochs == 40
    dmx = resolve_config({"method": "dividemix"}).hparams
    assert dmx["schedule"] == "multistep" and dmx["milestones"] == [25]  # ÷10 at half the run
    assert resolve_config({"method": "disc"}).hparams["ema_epochs"] == 200
    old = resolve_config({"preset": "fast-augmented"})
    assert old.augment == "standard" and old.epochs == 20


def test_min_steps_raises_the_epochs_of_small_training_sets(tmp_path):
    """fast: ceil(N / 128) steps per epoch; epochs raised to make >= 960 steps, never lowered,
    and an explicit epochs count wins."""
    import numpy as np

    def npz(n: int) -> str:
        path = tmp_path / f"n{n}.npz"
        images = np.zeros((n, 28, 28, 3), np.uint8)
        labels = (np.arange(n) % 2)[:, None]
        np.savez(
            path,
            **{
                f"{s}_{k}": v
                for s in ("train", "val", "test")
                for k, v in (("images", images), ("labels", labels))
            },
        )
        return str(path)

    assert resolve_config({"dataset": npz(546)}).epochs == 192  # 5 steps per epoch
    assert resolve_config({"dataset": npz(1080)}).epochs == 107  # 9 steps per epoch
    assert resolve_config({"dataset": npz(20000)}).epochs == 40  # large sets keep 40
    assert resolve_config({"dataset": "bloodmnist"}).epochs == 40  # registry metadata
    assert resolve_config({"dataset": npz(546), "epochs": 7}).epochs == 7
    assert resolve_config({"dataset": npz(546), "preset": "lnmbench"}).epochs == 50  # no min_steps
