"""The grid expansion: ids, paths and membership."""

import pytest

from fas.config import load_params, method_config
from fas.grid import Experiment, expand, find


def test_experiment_id_round_trips():
    experiment = Experiment("cefa", "p1", 2, "sdnet", "full", 0)
    assert experiment.id == "cefa.p1.f2.sdnet.full.s0"
    assert Experiment.parse(experiment.id) == experiment
    assert experiment.path == "cefa/p1/f2/sdnet/full/s0"


@pytest.mark.parametrize("bad", ["cefa.p1.2.sdnet.full.s0", "cefa.p1.f2.sdnet.full", "Cefa.p1.f1.a.b.s0",
                                 "cefa.4@1.f1.sdnet.full.s0"])
def test_malformed_ids_are_rejected(bad):
    with pytest.raises(ValueError, match="malformed experiment id"):
        Experiment.parse(bad)


def test_grid_has_every_cefa_subprotocol_and_no_duplicates():
    params = load_params()
    experiments = expand(params)
    assert len(experiments) == len({e.id for e in experiments})
    cefa_full = {(e.protocol, e.fold) for e in experiments
                 if e.dataset == "cefa" and e.variant == "full"}
    assert {("p1", 1), ("p1", 3), ("p2", 2), ("p3", 3), ("p4", 3)} <= cefa_full


def test_find_rejects_experiments_outside_the_grid():
    params = load_params()
    with pytest.raises(KeyError, match="not in the grid"):
        find(params, "cefa.p9.f1.sdnet.full.s0")


def test_variant_overrides_and_preset_are_resolved():
    params = load_params()
    rgb = method_config(params, "sdnet", "rgb")
    assert rgb["modalities"] == ["color"]
    assert rgb["width"] == params["presets"][params["preset"]]["sdnet"]["width"]
    with pytest.raises(KeyError, match="unknown variant"):
        method_config(params, "sdnet", "nonexistent")
