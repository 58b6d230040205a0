"""The run-folder names (hash of the resolved config) of the README's example configs are pinned:
a refactor must not rename existing run folders (their runs would be trained again). A change of a
preset's values renames its runs on purpose; the pins then move with it (as with main's new fast
preset)."""

from __future__ import annotations

import pytest

from lnmbench.experiment.config import RunConfig, resolve_config

PINNED = [
    ({}, "ce_demo_symmetric0.4_s0_dc88c1a31830"),  # plain `lnmbench run`
    (
        {
            "method": "sce",
            "dataset": "bloodmnist",
            "noise": {"name": "instance", "rate": 0.5},
            "seed": 5,
        },
        "sce_bloodmnist_instance0.5_s5_b3cdf0f5361f",
    ),
    (
        {"preset": "lnmbench", "method": "ce-ls", "dataset": "dermamnist", "noise": {"rate": 0.2}},
        "ce-ls_dermamnist_symmetric0.2_s0_1c12ff6593ab",
    ),
    (
        {"method": "coteaching", "dataset": "bloodmnist", "noise": {"rate": 0.5}},
        "coteaching_bloodmnist_symmetric0.5_s0_b7931de52734",
    ),
    # symmetric 0.4 is below 0.5: λ_u = 0 (DivideMix's paper)
    ({"method": "dividemix"}, "dividemix_demo_symmetric0.4_s0_33547c2c073f"),
]


@pytest.mark.parametrize(("user", "name"), PINNED)
def test_run_folder_name_of_example_configs_is_pinned(user, name):
    assert resolve_config(user).run_name() == name


def test_stored_config_yaml_hashes_to_its_folder_name():
    """A run folder's config.yaml (the resolved config) gives back the folder's name."""
    cfg = resolve_config({})
    again = RunConfig.model_validate(cfg.model_dump(mode="json"))
    assert again.run_name() == "ce_demo_symmetric0.4_s0_dc88c1a31830"
    assert again.config_hash() == cfg.config_hash()
