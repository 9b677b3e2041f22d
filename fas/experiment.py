"""One experiment resolved once: params + experiment id -> an immutable `ExperimentConfig`.

The model, the inputs, the schedule, the run key, the MLflow params and
`config.json` all read this object; nothing below the stage entry points
looks into the raw params dict.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Iterable, Mapping

from fas.config import crop_size, method_config
from fas.evm_settings import resolve_evm
from fas.grid import Experiment, find

# Upstream stage sections: they made the experiment's inputs, so they belong to its run key.
DATA_SECTIONS = ("synth", "extract", "align", "dynamic")
# Keys of `evaluate:` that only the tables read, not the evaluation of one experiment.
REPORT_ONLY = ("table_apcer",)
# Leave-one-out cross-dataset protocols name their sources by these letters.
CROSS_LETTERS = {"o": "oulu", "c": "casia_fasd", "i": "replay", "m": "msu"}


def frozen(value: Any) -> Any:
    """A read-only deep copy: dicts become mapping proxies, lists tuples."""
    if isinstance(value, Mapping):
        return MappingProxyType({key: frozen(item) for key, item in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(frozen(item) for item in value)
    return value


def thawed(value: Any) -> Any:
    """Plain JSON-ready dicts and lists from a `frozen` value."""
    if isinstance(value, Mapping):
        return {key: thawed(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return [thawed(item) for item in value]
    return value


def digest(payload: Any) -> str:
    """A short stable hash of a JSON-able payload."""
    text = json.dumps(thawed(payload), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cross_sources(protocol: str, datasets: Iterable[str]) -> list[str]:
    """Datasets a cross-dataset protocol reads, from its name (docs/ARCHITECTURE.md, Names).

    `replay_to_casia_fasd` names two of `datasets`; `ocm_to_i` uses the O/C/I/M letters.
    """
    train, _, test = protocol.partition("_to_")
    if not train or not test:
        raise ValueError(f"cross-dataset protocol {protocol!r} is not <sources>_to_<target>")
    if train in datasets or test in datasets:
        return sorted({train, test})
    unknown = sorted(set(train + test) - set(CROSS_LETTERS))
    if unknown:
        raise ValueError(f"cross-dataset protocol {protocol!r} names neither datasets nor "
                         f"O/C/I/M letters ({', '.join(unknown)} unknown)")
    return sorted({CROSS_LETTERS[letter] for letter in train + test})


def source_datasets(experiment: Experiment, datasets: Iterable[str]) -> list[str]:
    """The datasets whose caches an experiment reads (`datasets`: the names params declares)."""
    if experiment.dataset == "cross":
        return cross_sources(experiment.protocol, datasets)
    return [experiment.dataset]


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything that determines one experiment's result, under the active preset."""

    experiment: Experiment
    preset: str
    method: Mapping[str, Any]  # methods.<m> + its variant + presets.<preset>.<m>
    augment: Mapping[str, Any] | None  # only for methods that augment
    evm: Mapping[str, Any] | None  # the resolved magnification, only for methods that magnify
    pretrained: Mapping[str, Any]
    data: Mapping[str, Any]  # how its inputs were made: roots, crop sizes, upstream sections
    evaluate: Mapping[str, Any]  # the `evaluate:` keys evaluation reads
    grid: Mapping[str, Any]  # the grid it belongs to (`grid_identity`), for tracking

    @property
    def id(self) -> str:
        return self.experiment.id

    @property
    def cache_kinds(self) -> tuple[str, ...]:
        """The cache shards it reads: clip methods (those with a magnification setting) read
        magnified or aligned frames, SD-Net aligned frames and dynamic images."""
        if "magnification" in self.method:
            return ("magnified",) if self.method["magnification"] else ("static",)
        return ("static", "dynamic")

    def as_json(self) -> dict[str, Any]:
        """The training configuration (written as config.json, logged as MLflow params)."""
        return thawed({"experiment": self.experiment.id, "preset": self.preset,
                       "method": self.method, "augment": self.augment,
                       "pretrained": self.pretrained, "evm": self.evm})

    def run_key(self, stage: str, code: str) -> str:
        """Hash of the resolved parameters, the data they came from and the code version."""
        return digest({"config": self.as_json(), "data": self.data, "evaluate": self.evaluate,
                       "stage": stage, "code": code})


def param_keys(params: dict, experiment: Experiment) -> dict[str, list[str]]:
    """The params.yaml keys (dotted) its training and its evaluation read, and nothing else.

    `resolve` builds the experiment from exactly these keys, so they are what
    reruns its jobs (DVC `params:`): a change to another method, variant or
    preset leaves it alone.
    """
    method, preset = experiment.method, params["preset"]
    spec = params["methods"][method]
    overrides = {**(spec["variants"][experiment.variant] or {}), **params["presets"][preset][method]}
    resolved = method_config(params, method, experiment.variant)
    train = ["preset", *(f"methods.{method}.{key}" for key, value in spec.items()
                         if key != "variants" and (key not in overrides or isinstance(value, dict))),
             f"methods.{method}.variants.{experiment.variant}", f"presets.{preset}.{method}",
             "pretrained"]
    train += {True: ["augment"], "color_flip": ["augment.flip", "augment.color_jitter"]}.get(resolved["augment"], [])
    if resolved.get("magnification"):  # the magnification it reads, not how magnify stores it
        train += [f"evm.{key}" for key in params["evm"] if key != "row_group_rows"]
    evaluate = [f"evaluate.{key}" for key in params["evaluate"] if key not in REPORT_ONLY]
    return {"train": train, "evaluate": evaluate}


def augmentation(section: Mapping[str, Any], switch: bool | str) -> Mapping[str, Any] | None:
    """The `augment:` section a method's switch selects: all of it (true), its flip and colour
    distortion without rotation or crop (`color_flip`), or none (false)."""
    if not switch:
        return None
    if switch == "color_flip":
        return frozen({"rotation_deg": 0, "flip": section["flip"], "crop_scale": 1.0,
                       "color_jitter": section["color_jitter"]})
    return frozen(section)


def resolve(params: dict, experiment: Experiment | str) -> ExperimentConfig:
    """The experiment (an id, or an `Experiment` of the grid) under params' active preset."""
    if isinstance(experiment, str):
        experiment = find(params, experiment)
    method = method_config(params, experiment.method, experiment.variant)
    sources = source_datasets(experiment, params["datasets"])
    data = {"roots": {d: params["datasets"][d]["root"] for d in sources},
            "crop_size": {d: crop_size(params, d) for d in sources},
            **{section: params[section] for section in DATA_SECTIONS}}
    return ExperimentConfig(
        experiment=experiment,
        preset=params["preset"],
        method=frozen(method),
        augment=augmentation(params["augment"], method["augment"]),
        evm=frozen(resolve_evm(params["evm"])) if method.get("magnification") else None,
        pretrained=frozen(params["pretrained"]),
        data=frozen(data),
        evaluate=frozen({k: v for k, v in params["evaluate"].items() if k not in REPORT_ONLY}),
        grid=frozen(grid_identity(params)),
    )


def grid_identity(params: dict) -> dict[str, str]:
    """The grid's MLflow experiment, preset and key (a hash of its experiments, preset and seeds)."""
    return {"mlflow_experiment": params["mlflow"]["experiment"], "preset": params["preset"],
            "key": digest({"grid": params["grid"], "preset": params["preset"],
                           "seeds": params["seeds"]})}
