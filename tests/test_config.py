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
    with pytest.raises(ConfigError, match=r"\(command line\): epoch=3: unknown setting$"):
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


def test_rate_above_switches_discs_optimiser_only_above_06():
    """fast: DISC's own code trains with Adam + linear decay above 0.6 noise; below it the
    resolved hparams and config hash are exactly those of the block without the switch."""
    from lnmbench.experiment import config as config_mod

    def disc(rate: float, name: str = "symmetric"):
        return resolve_config({"method": "disc", "noise": {"name": name, "rate": rate}})

    high = disc(0.8).hparams
    assert (high["optimizer"], high["lr"], high["weight_decay"]) == ("adam", 0.001, 0.0)
    assert high["schedule"] == "linear_decay" and high["milestones"] == [30]
    assert high["warmup_epochs"] == 13  # its warm-up ends at the noisy-validation peak
    assert high["momentum"] == 0.0 and high["ema_epochs"] == 200  # the rest of the block stays
    for rate in (0.2, 0.5, 0.6):  # strictly above: 0.6 keeps SGD
        low = disc(rate)
        assert (low.hparams["optimizer"], low.hparams["lr"]) == ("sgd", 0.1)
        block = config_mod.load_preset("fast")["methods"]["disc"]
        block.pop("rate_above")
        plain = resolve_config(
            {"method": "disc", "noise": {"name": "symmetric", "rate": rate}, "hparams": block}
        )
        assert low.config_hash() == plain.config_hash()
    # real-world data: the assumed rate decides, none given -> no switch
    assert disc(0.8, "realworld").hparams["optimizer"] == "sgd"
    rw = resolve_config(
        {"method": "disc", "noise": {"name": "realworld"}, "assumed_noise_rate": 0.7}
    )
    assert rw.hparams["optimizer"] == "adam"
    # a user's hparams still win over the switch
    user = resolve_config(
        {"method": "disc", "noise": {"rate": 0.8}, "hparams": {"optimizer": "sgd", "lr": 0.05}}
    )
    assert (user.hparams["optimizer"], user.hparams["lr"]) == ("sgd", 0.05)


def test_rate_above_refuses_malformed_entries():
    from lnmbench.experiment.config import rate_overrides

    assert rate_overrides({0.6: {"lr": 1.0}, 0.2: {"lr": 2.0, "gamma": 0.5}}, 0.8, "p") == {
        "lr": 1.0,
        "gamma": 0.5,
    }  # merged in increasing threshold order
    assert rate_overrides({0.6: {"lr": 1.0}}, None, "p") == {}
    with pytest.raises(ConfigError, match="key 'high' is not a noise rate"):
        rate_overrides({"high": {"lr": 1.0}}, 0.8, "p")
    with pytest.raises(ConfigError, match="0.6 must map to hparams"):
        rate_overrides({0.6: 3}, 0.8, "p")
    with pytest.raises(ConfigError, match="must map a noise rate to hparams"):
        rate_overrides([0.6], 0.8, "p")


def test_rate_below_applies_strictly_below_and_tightest_threshold_wins():
    from lnmbench.experiment.config import method_block

    blocks = {
        "m": {
            "lr": 0.1,
            "rate_below": {0.5: {"lambda_u": 0.0}, 0.3: {"lambda_u": 5.0}},
            "rate_above": {0.6: {"lr": 0.001}},
        }
    }
    assert method_block(blocks, "m", 0.2, "p") == {"lr": 0.1, "lambda_u": 5.0}  # 0.3 wins
    assert method_block(blocks, "m", 0.4, "p") == {"lr": 0.1, "lambda_u": 0.0}
    assert method_block(blocks, "m", 0.5, "p") == {"lr": 0.1}  # strictly below
    assert method_block(blocks, "m", 0.8, "p") == {"lr": 0.001}
    assert method_block(blocks, "m", None, "p") == {"lr": 0.1}  # real-world, no assumed rate
    with pytest.raises(ConfigError, match="rate_below: key 'low' is not a noise rate"):
        method_block({"m": {"rate_below": {"low": {}}}}, "m", 0.2, "p")


@pytest.mark.parametrize("method", ["dividemix", "medssl"])
def test_fast_sets_dividemix_lambda_u_per_noise_level_as_its_paper(method):
    """DivideMix's paper: λ_u = 0 at symmetric 0.2 and asymmetric 0.4, 25 at 0.5 and 0.8."""

    def lambda_u(name: str, rate: float | None = None, **extra) -> float:
        noise = {"name": name} if rate is None else {"name": name, "rate": rate}
        cfg = resolve_config({"method": method, "noise": noise, **extra})
        return cfg.hparams["lambda_u"]

    assert lambda_u("symmetric", 0.2) == 0.0
    assert lambda_u("pairflip", 0.4) == 0.0
    assert lambda_u("symmetric", 0.5) == 25.0
    assert lambda_u("instance", 0.5) == 25.0
    assert lambda_u("symmetric", 0.8) == 25.0
    assert lambda_u("realworld") == 25.0  # no assumed rate: the default
    assert lambda_u("realworld", assumed_noise_rate=0.3) == 0.0
    # the reference presets keep the reference's 25 everywhere
    assert lambda_u("symmetric", 0.2, preset="lnmbench") == 25.0
