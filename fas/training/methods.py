"""The per-method table: everything that differs between methods, in one place.

A `Method` names how a split's samples are read from the cache, how a batch
becomes model inputs, how the model is built, which modalities it is fed,
which classes every training batch balances and what else of a batch its loss
reads (the input normalisation is the method setting `input_normalization`).
Training code looks methods up here and never tests a method's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import torch
from torch import nn
from torch.utils.data import IterableDataset

from fas import loader
from fas.dynamic import window_kind
from fas.experiment import ExperimentConfig
from fas.models import build_mevr, build_motion, build_sdnet
from fas.training.inputs import NORMALIZATIONS, Inputs
from fas.training.loop import no_loss_targets
from fas.training.splits import Split, model_feeds

NO_PRETRAINED = {"resnet18": None, "vgg_face": None}


def sdnet_samples(config: ExperimentConfig, cache_dir: Path, video_ids: list[str],
                  modalities: list[str], shuffle: bool, seed: int) -> IterableDataset:
    """(static frame, dynamic image) pairs per modality, dynamic images of the chosen window."""
    primary = config.data["dynamic"]["window"]
    chosen = config.method["dynamic_window"]
    kind = window_kind(primary if chosen is None else chosen, primary)
    return loader.SDNetSamples(cache_dir, video_ids, modalities, shuffle=shuffle, seed=seed,
                               dynamic_kind=kind)


def clip_samples(config: ExperimentConfig, cache_dir: Path, video_ids: list[str],
                 modalities: list[str], shuffle: bool, seed: int) -> IterableDataset:
    """Clips of `clip_len` consecutive colour frames, magnified ones when the variant magnifies."""
    kind = "magnified" if config.method["magnification"] else "static"
    return loader.ClipSamples(cache_dir, video_ids, config.method["clip_len"], shuffle=shuffle,
                              seed=seed, frames_kind=kind)


def static_dynamic_inputs(inputs: Inputs, batch: dict, feed: dict[str, str], train: bool) -> tuple:
    return inputs.static_dynamic(batch, feed, train)


def clip_inputs(inputs: Inputs, batch: dict, feed: dict[str, str], train: bool) -> tuple:
    return (inputs.clips(batch, train),)


def no_balance(method: Mapping) -> str | None:
    return None


def contrast_balance(method: Mapping) -> str | None:
    """The sample field whose classes every training batch holds equally: the contrastive
    classes, so that every anchor has positives (None when `balanced_batches` is off)."""
    if not method["balanced_batches"]:
        return None
    return "pai" if method["contrast_classes"] == "pai" else "is_live"


def live_balance(method: Mapping) -> str | None:
    """`is_live` when the method balances live and attack samples per batch (`balanced_batches`)."""
    return "is_live" if method["balanced_batches"] else None


def pai_targets(batch: dict) -> dict:
    """The batch's PAI species, for a loss with the attack species as classes."""
    return {"pai": list(batch["pai"])}


@dataclass(frozen=True)
class Method:
    name: str
    samples: Callable[..., IterableDataset]  # (ExperimentConfig, cache_dir, ids, modalities, shuffle, seed)
    prepare: Callable[[Inputs, dict, dict[str, str], bool], tuple]  # -> the model's inputs
    build: Callable[[Mapping, Mapping, list[str]], nn.Module]  # (config, pretrained, modalities)
    multimodal: bool  # one branch per modality of the variant; else the colour stream alone
    balance: Callable[[Mapping], str | None] = no_balance  # (method config) -> field balanced per batch
    per_class: int = 1  # the fewest samples of each balanced class per batch (2: every anchor has a positive)
    loss_targets: Callable[[dict], dict] = no_loss_targets  # batch -> further arguments of model.loss

    def feeds(self, config: Mapping, splits: dict[str, Split]
              ) -> tuple[list[str], dict[str, list[dict[str, str]]]]:
        """The model's modalities and, per split, its feeds (see `splits.model_feeds`)."""
        if self.multimodal:
            return model_feeds(list(config["modalities"]), splits)
        return ["color"], {name: [{}] for name in splits}

    def build_model(self, config: Mapping, pretrained: Mapping | None = None,
                    modalities: list[str] | None = None) -> nn.Module:
        default = list(config["modalities"]) if self.multimodal else ["color"]
        return self.build(config, {**NO_PRETRAINED, **(pretrained or {})}, modalities or default)

    def inputs(self, config: ExperimentConfig, device: torch.device) -> Inputs:
        """The input pipeline of an experiment: augmentation and normalisation as configured."""
        method = config.method
        return Inputs(method["input_size"], config.augment,  # None when the method does not augment
                      NORMALIZATIONS[method["input_normalization"]], device,
                      channels_last=device.type == "cuda")


METHODS: dict[str, Method] = {
    "sdnet": Method("sdnet", sdnet_samples, static_dynamic_inputs, build_sdnet, multimodal=True,
                    balance=live_balance),
    "motion": Method("motion", clip_samples, clip_inputs, build_motion, multimodal=False),
    "mevr": Method("mevr", clip_samples, clip_inputs, build_mevr, multimodal=False,
                   balance=contrast_balance, per_class=2, loss_targets=pai_targets),
}
