"""Expansion of the grid in params.yaml into experiments.

The Snakefile, dvc.yaml and `fas train` all name experiments through this
module, so the three can never disagree on what the grid holds.
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from fas.config import load_params
from fas.errors import UserError

PART = re.compile(r"^[a-z0-9_]+$")


class MalformedId(UserError, ValueError):
    """An experiment id that does not follow `<dataset>.<protocol>.f<fold>.<method>.<variant>.s<seed>`."""


class NotInGrid(UserError, KeyError):
    """A well-formed experiment id that the grid of params.yaml does not hold."""


@dataclass(frozen=True, order=True)
class Experiment:
    dataset: str
    protocol: str
    fold: int
    method: str
    variant: str
    seed: int

    @property
    def id(self) -> str:
        return (f"{self.dataset}.{self.protocol}.f{self.fold}."
                f"{self.method}.{self.variant}.s{self.seed}")

    @property
    def path(self) -> str:
        """Folder of this experiment below a stage's results folder."""
        return (f"{self.dataset}/{self.protocol}/f{self.fold}/"
                f"{self.method}/{self.variant}/s{self.seed}")

    @classmethod
    def parse(cls, experiment_id: str) -> "Experiment":
        parts = experiment_id.split(".")
        if (len(parts) != 6 or not all(PART.match(p) for p in parts)
                or not re.match(r"^f\d+$", parts[2]) or not re.match(r"^s\d+$", parts[5])):
            raise MalformedId(
                f"malformed experiment id {experiment_id!r}: expected "
                "<dataset>.<protocol>.f<fold>.<method>.<variant>.s<seed>")
        dataset, protocol, fold, method, variant, seed = parts
        return cls(dataset, protocol, int(fold[1:]), method, variant, int(seed[1:]))


def expand(params: dict) -> list[Experiment]:
    """All experiments of the grid (validated params: every name is known), sorted, no duplicates."""
    experiments = set()
    for block in params["grid"]:
        method = block["method"]
        for variant in block["variants"]:
            for protocol, folds in block["protocols"].items():
                for fold in folds:
                    for seed in params["seeds"]:
                        experiments.add(Experiment(block["dataset"], protocol, int(fold),
                                                   method, variant, int(seed)))
    return sorted(experiments)


def find(params: dict, experiment_id: str) -> Experiment:
    """The experiment with this id, which must belong to the grid."""
    wanted = Experiment.parse(experiment_id)
    if wanted not in set(expand(params)):
        raise NotInGrid(f"experiment {experiment_id!r} is not in the grid of params.yaml "
                        "(`fas grid` lists it)")
    return wanted


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", type=Path, default=None, help="params.yaml to read")
    parser.add_argument("--json", action="store_true", help="print JSON records")
    parser.add_argument("--dataset", help="only this dataset")
    parser.add_argument("--method", help="only this method")


def run(args: argparse.Namespace) -> int:
    experiments = expand(load_params(args.params))
    if args.dataset:
        experiments = [e for e in experiments if e.dataset == args.dataset]
    if args.method:
        experiments = [e for e in experiments if e.method == args.method]
    for experiment in experiments:
        print(json.dumps({"id": experiment.id, **asdict(experiment)}) if args.json
              else experiment.id)
    return 0
