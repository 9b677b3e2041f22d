"""params.yaml: one schema for every entry point, defaults from the schema, one resolved experiment."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pandas as pd
import pytest
import yaml

from fas import metrics
from fas.cli import main
from fas.config import ParamsError, load_params, validate_params
from fas.experiment import param_keys, resolve
from fas.grid import Experiment
from fas.training.loop import video_metrics

RAW = yaml.safe_load(open("params.yaml"))
EXPERIMENT = "cefa.p1.f1.sdnet.full.s0"


def broken(mutate) -> dict:
    params = copy.deepcopy(RAW)
    mutate(params)
    return params


@pytest.mark.parametrize("mutate, where, reason", [
    (lambda p: p["evaluate"].update(threshold_polcy="fixed"), "evaluate.threshold_polcy",
     "not a known key"),
    (lambda p: p["presets"]["demo"]["sdnet"].update(epochs=-3), "presets.demo.sdnet.epochs",
     "less than the minimum of 1"),
    (lambda p: p["presets"]["demo"]["sdnet"].update(epoch=3), "presets.demo.sdnet.epoch",
     "not a known key"),
    (lambda p: p["grid"][0].update(variants=["fulll"]), "grid[0].variants[0]", "unknown variant"),
    (lambda p: p["grid"][0].update(dataset="cefaa"), "grid[0].dataset", "not a dataset"),
    (lambda p: p["shards"].update(cefaa=2), "shards.cefaa", "not a dataset"),
    (lambda p: p["methods"]["sdnet"]["variants"]["full"].update(fusion="sideways"),
     "methods.sdnet.variants.full.fusion", "is not one of"),
    (lambda p: p["grid"][-1]["protocols"].update(replay_to_nowhere=[1]),
     "protocols.replay_to_nowhere", "does not declare"),
    (lambda p: p.pop("presets"), "(top level)", "'presets' is a required property"),
    (lambda p: p["grid"][0]["protocols"].update(p9=[1]), "grid[0].protocols.p9",
     "cefa has no protocol 'p9'"),
    (lambda p: p["grid"][0]["protocols"].update(p2=[1, 3]), "grid[0].protocols.p2[1]",
     "no fold 3"),
    (lambda p: p["grid"][-1]["protocols"].update(msu_to_replay=[1]),
     "protocols.msu_to_replay", "cross has no protocol"),
])
def test_invalid_params_name_the_key_path_and_the_reason(mutate, where, reason):
    with pytest.raises(ParamsError, match="params.yaml: ") as error:
        validate_params(broken(mutate))
    assert where in str(error.value) and reason in str(error.value)


def test_defaults_come_from_the_schema():
    params = copy.deepcopy(RAW)
    del params["evaluate"], params["presets"]["demo"]["sdnet"]["workers"]
    filled = validate_params(params)
    assert filled["evaluate"]["threshold_policy"] == "dev_eer"
    assert filled["evaluate"]["level"] == "video"
    assert filled["presets"]["demo"]["sdnet"]["workers"] == 0
    assert filled["align"]["backend"]["default"] == "detector"
    assert filled["methods"]["sdnet"]["variants"]["rgb"] == {"modalities": ["color"]}  # no defaults


def test_yaml_exponents_are_numbers(tmp_path):
    text = open("params.yaml").read().replace("lr: 0.003", "lr: 3e-3")
    (tmp_path / "params.yaml").write_text(text)
    assert load_params(tmp_path / "params.yaml")["presets"]["demo"]["sdnet"]["lr"] == 0.003


@pytest.mark.parametrize("stage", ["train", "evaluate", "grid"])
def test_every_stage_rejects_an_invalid_params_file_in_one_line(tmp_path, capsys, stage):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(broken(lambda p: p["presets"]["demo"]["sdnet"].update(epochs=-3))))
    args = [stage, "--params", str(path)] + (["--experiment", EXPERIMENT] if stage != "grid" else [])
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "presets.demo.sdnet.epochs" in err and "Traceback" not in err


def test_resolved_experiment_is_immutable_and_complete():
    params = load_params()
    config = resolve(params, EXPERIMENT)
    assert config.method["width"] == params["presets"]["demo"]["sdnet"]["width"]
    assert config.evm is None  # SD-Net does not magnify
    evm = resolve(params, "replay.grandtest.f1.motion.full.s0").evm
    assert evm["alpha"] == 10.0 and evm["levels"] == "full"  # Wu et al.'s baby preset
    assert (evm["low_hz"], evm["high_hz"]) == (0.2, 1.5)  # their butter(1, f/fs) halves the band
    assert resolve(params, "replay.grandtest.f1.motion.no_magnification.s0").evm is None
    with pytest.raises(TypeError):
        config.method["width"] = 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.preset = "paper"
    assert config.as_json()["method"]["modalities"] == ["color", "depth", "ir"]
    assert set(config.as_json()) == {"experiment", "preset", "method", "augment", "pretrained", "evm"}


def test_color_flip_augmentation_flips_and_jitters_without_warping():
    params = load_params()
    mevr = resolve(params, "replay.grandtest.f1.mevr.full.s0").augment
    assert dict(mevr) == {"rotation_deg": 0, "flip": params["augment"]["flip"], "crop_scale": 1.0,
                          "color_jitter": params["augment"]["color_jitter"]}
    params["methods"]["mevr"]["augment"] = True
    assert dict(resolve(params, "replay.grandtest.f1.mevr.full.s0").augment) == params["augment"]
    params["methods"]["mevr"]["augment"] = False
    assert resolve(params, "replay.grandtest.f1.mevr.full.s0").augment is None


def test_run_key_follows_what_the_experiment_reads():
    params = load_params()
    key = resolve(params, EXPERIMENT).run_key("train", "code")
    motion = copy.deepcopy(params)
    motion["presets"]["demo"]["motion"]["epochs"] = 99
    assert resolve(motion, EXPERIMENT).run_key("train", "code") == key
    sdnet = copy.deepcopy(params)
    sdnet["presets"]["demo"]["sdnet"]["epochs"] = 99
    assert resolve(sdnet, EXPERIMENT).run_key("train", "code") != key
    other_root = copy.deepcopy(params)
    other_root["datasets"]["oulu"]["root"] = "/elsewhere"
    assert resolve(other_root, EXPERIMENT).run_key("train", "code") == key
    other_root["datasets"]["cefa"]["root"] = "/elsewhere"
    assert resolve(other_root, EXPERIMENT).run_key("train", "code") != key


def test_dev_selection_uses_the_evaluation_eer():
    rng = np.random.default_rng(0)
    live = rng.random(60) < 0.4
    scores = np.clip(rng.normal(np.where(live, 0.6, 0.4), 0.2), 0, 1)
    frames = pd.DataFrame({"video_id": [f"v{i}" for i in range(60)], "is_live": live,
                           "score": scores})
    assert video_metrics(frames)["eer"] == metrics.eer(live, scores)[0]


def test_a_dynamic_window_without_its_images_is_rejected():
    params = broken(lambda p: p["methods"]["sdnet"]["variants"].update(k16={"dynamic_window": 16}))
    with pytest.raises(ParamsError, match="methods.sdnet.variants.k16.dynamic_window: 16"):
        validate_params(params)
    params["dynamic"]["extra_windows"] = [16]
    assert validate_params(params)["methods"]["sdnet"]["variants"]["k16"] == {"dynamic_window": 16}


def _leaves(node, path=()):
    """Every (key path, value) of the scalars and lists of a params dict."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, (*path, key))
    else:
        yield path, node


# Where appending "x" would make params.yaml invalid: another valid value.
VALID_CHANGE = {("preset",): "paper", ("evm", "preset"): "face2", ("evm", "cutoff_convention"): "nominal"}


def _changed(path, value):
    if path in VALID_CHANGE:
        return VALID_CHANGE[path]
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, list):
        return [*value, value[-1] if value else 1]
    return f"{value}x" if value is not None else "x"


@pytest.mark.parametrize("experiment", [EXPERIMENT, "replay.grandtest.f1.motion.full.s0",
                                        "msu.standard.f1.motion.no_magnification.s0"])
def test_an_experiment_reads_exactly_its_param_keys(experiment):
    """Changing any params.yaml value outside `param_keys` leaves the experiment's training
    and evaluation settings alone; changing one inside changes them."""
    params = load_params()
    keys = param_keys(params, Experiment.parse(experiment))
    base = resolve(params, experiment)
    for path, value in _leaves(params):
        if path[0] in ("grid", "seeds", "datasets"):  # which experiments exist, not what one reads
            continue
        dotted = ".".join(map(str, path))
        changed = copy.deepcopy(params)
        node = changed
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = _changed(path, value)
        config = resolve(changed, experiment)
        read = {"train": config.as_json() != base.as_json(),
                "evaluate": dict(config.evaluate) != dict(base.evaluate)}
        for stage, stage_keys in keys.items():
            listed = any(dotted == k or dotted.startswith(f"{k}.") for k in stage_keys)
            assert read[stage] == listed, f"{experiment} {stage}: {dotted}"
