"""`fas train --experiment ID`: train one experiment of the grid and write its scores.

Reads the experiment's splits from `protocols.parquet`, the samples from the
Parquet cache (through `fas.loader`), trains with the schedule of the active
preset, selects the epoch on the dev split, and writes per-video and
per-sample scores for train, dev and test. Checkpoints after every epoch in
the scratch folder let a killed job resume to identical scores.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import random
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, IterableDataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from fas.config import load_params, method_config
from fas.grid import Experiment, find
from fas.io import atomic_path, write_json
from fas.models import build_model
from fas.models.evm import magnify

SPLITS = ("train", "dev", "test")
# ImageNet statistics: the normalisation torchvision's pretrained trunks expect.
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
# Per-epoch figures logged to tracking only: timings vary between runs (history.csv
# stays byte-identical) and the sample count is not a rate to plot.
LOGGED_ONLY = ("train/samples", "train/samples_per_s", "train/data_wait_share",
               "train/input_prep_share")
# A batch loss above this (BCE is ~0.7 at chance) means training has diverged.
LOSS_LIMIT = 1.0e4


class TrainingDiverged(FloatingPointError):
    """The loss became NaN, infinite or exploded: the run stops instead of saving garbage."""


# ---------------------------------------------------------------------------
# Splits and samples


@dataclass
class Split:
    """The videos of one split, grouped by source dataset, and the modalities it uses."""

    name: str
    videos: dict[str, list[str]] = field(default_factory=dict)  # dataset -> video ids
    modalities: list[str] | None = None  # null in protocols.parquet = all


def read_splits(index_root: Path, experiment: Experiment) -> dict[str, Split]:
    """The experiment's train/dev/test splits from `<index_root>/<dataset>/protocols.parquet`."""
    path = Path(index_root) / experiment.dataset / "protocols.parquet"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: protocol table not found (run `fas index` first)")
    table = pd.read_parquet(path)
    rows = table[(table["protocol"] == experiment.protocol) & (table["fold"] == experiment.fold)]
    splits: dict[str, Split] = {}
    for name, group in rows.groupby("split", sort=False):
        if name not in SPLITS:
            raise ValueError(f"{path}: unknown split {name!r} in {experiment.protocol} "
                             f"fold {experiment.fold}")
        split = Split(str(name))
        for dataset, ids in group.groupby("dataset", sort=True)["video_id"]:
            split.videos[str(dataset)] = sorted(ids.astype(str).unique())
        ids = [v for vs in split.videos.values() for v in vs]
        if len(ids) != len(set(ids)):  # scores are keyed by video_id alone
            raise ValueError(f"{path}: split {name} of {experiment.protocol} fold {experiment.fold} "
                             "has the same video_id in two source datasets")
        modality_sets = {tuple(m) if m is not None else None for m in group["modalities"]}
        if len(modality_sets) > 1:
            raise ValueError(f"{path}: split {name} of {experiment.protocol} fold "
                             f"{experiment.fold} mixes modality sets {modality_sets}")
        (modalities,) = modality_sets
        split.modalities = list(modalities) if modalities is not None else None
        splits[split.name] = split
    if "train" not in splits or "test" not in splits:
        raise ValueError(f"{path}: protocol {experiment.protocol} fold {experiment.fold} "
                         f"needs train and test rows, found {sorted(splits)}")
    return splits


class RoundRobin(IterableDataset):
    """Samples of several source datasets interleaved one by one (cross-dataset training).

    Sources may be cropped at different sizes (params `align.crop_size`), so every
    image is resized to `size` here, before samples of different sources share a batch.
    """

    def __init__(self, parts: list[IterableDataset], size: int):
        self.parts, self.size = parts, size

    def set_epoch(self, epoch: int) -> None:
        for part in self.parts:
            part.set_epoch(epoch)

    def __iter__(self) -> Iterator[dict]:
        iterators = [iter(part) for part in self.parts]
        while iterators:
            for it in list(iterators):
                try:
                    yield resized_sample(next(it), self.size)
                except StopIteration:
                    iterators.remove(it)


def resized_sample(sample: dict, size: int) -> dict:
    """A sample whose uint8 images ([..., C, H, W], alone or in a per-modality dict) are size x size."""

    def fit(value):
        if isinstance(value, dict):
            return {key: fit(item) for key, item in value.items()}
        if (not isinstance(value, torch.Tensor) or value.dtype != torch.uint8 or value.dim() < 3
                or tuple(value.shape[-2:]) == (size, size)):
            return value
        flat = value.reshape(-1, *value.shape[-3:]).float()
        out = F.interpolate(flat, size=(size, size), mode="bilinear", antialias=True,
                            align_corners=False)
        return out.round().clamp(0, 255).to(torch.uint8).reshape(*value.shape[:-2], size, size)

    return {key: fit(value) for key, value in sample.items()}


def open_samples(method: str, config: dict, cache_root: Path, split: Split,
                 modalities: list[str], shuffle: bool, seed: int,
                 notes: list[str]) -> IterableDataset:
    """The loader dataset of one split (all its source datasets).

    Videos of the split that the cache lacks (failed alignment) are left out
    and named in `notes`. (`protocols.parquet` max_frames is applied by
    `fas extract`.)
    """
    from fas import loader  # imported on use: only training needs the cache reader

    parts = []
    for dataset, video_ids in split.videos.items():
        cache_dir = Path(cache_root) / dataset
        if not cache_dir.is_dir():
            raise FileNotFoundError(f"{cache_dir}: cache folder not found (run `fas align` and "
                                    "`fas dynamic` first)")
        if method == "sdnet":
            parts.append(loader.SDNetSamples(cache_dir, video_ids, modalities,
                                             shuffle=shuffle, seed=seed))
        else:
            parts.append(loader.ClipSamples(cache_dir, video_ids, config["clip_len"],
                                            shuffle=shuffle, seed=seed))
        missing = list(getattr(parts[-1], "missing_video_ids", []))
        if missing:
            note = (f"{split.name}: {len(missing)} of {len(video_ids)} video(s) not in the cache "
                    f"{cache_dir}, left out (e.g. {', '.join(missing[:3])})")
            if note not in notes:
                notes.append(note)
                print(f"fas train: {note}", file=sys.stderr)
    return parts[0] if len(parts) == 1 else RoundRobin(parts, int(config["input_size"]))


# ---------------------------------------------------------------------------
# Inputs: resize, magnify, augment, normalise


class Inputs:
    """Turns a collated loader batch into model inputs on the device.

    A `feed` maps each model modality to the data modality given to it (CeFA
    protocol 3 tests the trained branch on another modality).
    """

    def __init__(self, method: str, config: dict, augment: dict, evm: dict,
                 device: torch.device, channels_last: bool):
        self.method = method
        self.augments = bool(config["augment"])  # methods.<method>.augment: params `augment:` on/off
        self.size = int(config["input_size"])
        self.magnify = method == "motion" and bool(config.get("magnification"))
        self.evm = evm
        self.device = device
        self.channels_last = channels_last
        self.geometric = v2.Compose(
            [v2.RandomResizedCrop(self.size, scale=(float(augment["crop_scale"]), 1.0),
                                  ratio=(1.0, 1.0), antialias=True)]
            + ([v2.RandomHorizontalFlip()] if augment["flip"] else [])
            + [v2.RandomRotation(float(augment["rotation_deg"]))])
        jitter = float(augment["color_jitter"])
        self.color = v2.ColorJitter(brightness=jitter, contrast=jitter, saturation=jitter)

    def _float(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 [..., 3, H, W] -> float in [0, 1] on the device."""
        return images.to(self.device, non_blocking=True).float().div_(255)

    def _resize(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[-2:] == (self.size, self.size):
            return images
        lead = images.shape[:-3]
        flat = F.interpolate(images.reshape(-1, *images.shape[-3:]), size=(self.size, self.size),
                             mode="bilinear", antialias=True, align_corners=False)
        return flat.reshape(*lead, *flat.shape[-3:])

    def _normalize(self, images: torch.Tensor) -> torch.Tensor:
        out = (images - MEAN.to(images)) / STD.to(images)
        if self.channels_last and out.dim() == 4:
            out = out.contiguous(memory_format=torch.channels_last)
        return out

    def sdnet(self, batch: dict, feed: dict[str, str], train: bool):
        """(static, dynamic) dicts of [B, 3, S, S] tensors keyed by model modality."""
        keys = [(kind, m) for kind in ("static", "dynamic") for m in feed]
        stacked = torch.stack([self._resize(self._float(batch[kind][feed[m]])) for kind, m in keys],
                              dim=1)  # [B, N, 3, S, S]
        if train and self.augments:
            color_index = keys.index(("static", "color")) if ("static", "color") in keys else None
            stacked = torch.stack([self._augment(images, color_index) for images in stacked])
        out = {"static": {}, "dynamic": {}}
        for i, (kind, m) in enumerate(keys):
            out[kind][m] = self._normalize(stacked[:, i])
        return out["static"], out["dynamic"]

    def motion(self, batch: dict, train: bool) -> torch.Tensor:
        """Clips [B, T, 3, S, S], magnified when enabled.

        Magnification runs on the device at the smaller of the cache and the
        input resolution (its cost grows with the pixel count: bench_train).
        """
        frames = self._float(batch["frames"])
        downsizing = frames.shape[-1] > self.size
        if downsizing:
            frames = self._resize(frames)
        if self.magnify:
            fps = torch.as_tensor(batch["fps"], dtype=torch.float64)
            for rate in fps.unique():
                chosen = (fps == rate).nonzero().flatten().to(frames.device)
                frames[chosen] = magnify(frames[chosen], float(rate), **self.evm)
        if not downsizing:
            frames = self._resize(frames)
        if train and self.augments:
            frames = torch.stack([self._augment(clip, color_index=None, jitter_all=True)
                                  for clip in frames])
        return self._normalize(frames)

    def _augment(self, images: torch.Tensor, color_index: int | None,
                 jitter_all: bool = False) -> torch.Tensor:
        """Same geometric transform for all images of one sample; colour jitter on colour only."""
        images = self.geometric(tv_tensors.Image(images)).as_subclass(torch.Tensor)
        if jitter_all:
            return self.color(tv_tensors.Image(images)).as_subclass(torch.Tensor)
        if color_index is not None:
            images = images.clone()
            images[color_index] = self.color(tv_tensors.Image(images[color_index]))
        return images


# ---------------------------------------------------------------------------
# Training


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch; deterministic kernels where torch has them."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def video_metrics(frame_scores: pd.DataFrame) -> dict[str, float]:
    """Dev EER (threshold-free) and ACER at P(live) = 0.5, on video-level mean scores.

    A small private version for model selection; reported metrics come from
    `fas evaluate`.
    """
    videos = frame_scores.groupby("video_id").agg(is_live=("is_live", "first"),
                                                  score=("score", "mean"))
    live, score = videos["is_live"].to_numpy(bool), videos["score"].to_numpy(float)
    if live.all() or not live.any():
        return {"eer": float("nan"), "acer": float("nan")}
    attacks, bona_fide = np.sort(score[~live]), np.sort(score[live])
    thresholds = np.append(np.unique(score), np.inf)  # accept as live when score >= threshold
    far = 1 - np.searchsorted(attacks, thresholds, side="left") / len(attacks)
    frr = np.searchsorted(bona_fide, thresholds, side="left") / len(bona_fide)
    i = int(np.argmin(np.abs(far - frr)))
    apcer = float(np.mean(score[~live] >= 0.5))
    bpcer = float(np.mean(score[live] < 0.5))
    return {"eer": float((far[i] + frr[i]) / 2), "acer": (apcer + bpcer) / 2}


@dataclass
class Schedule:
    epochs: int
    batch_size: int
    optimizer: str
    lr: float
    lr_milestones: list[int]
    lr_gamma: float
    workers: int = 0

    @classmethod
    def from_config(cls, config: dict) -> "Schedule":
        return cls(int(config["epochs"]), int(config["batch_size"]), config["optimizer"],
                   float(config["lr"]), list(config["lr_milestones"]), float(config["lr_gamma"]),
                   int(config["workers"]))


def make_optimizer(schedule: Schedule, model: torch.nn.Module) -> torch.optim.Optimizer:
    if schedule.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=schedule.lr)
    if schedule.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=schedule.lr, momentum=0.9)
    raise ValueError(f"unknown optimizer {schedule.optimizer!r} (adam | sgd)")


class Trainer:
    """One model, its schedule and input pipeline; fit with per-epoch checkpoints."""

    def __init__(self, method: str, model: torch.nn.Module, schedule: Schedule, inputs: Inputs,
                 feed: dict[str, str], seed: int, device: torch.device):
        self.method, self.model, self.schedule = method, model.to(device), schedule
        self.inputs, self.feed, self.seed, self.device = inputs, feed, seed, device
        self.has_batchnorm = any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
                                 for m in model.modules())
        self.amp = device.type == "cuda"  # fp16 + GradScaler on CUDA only, never bf16 on CPU
        if self.amp:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.optimizer = make_optimizer(schedule, self.model)
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(
            self.optimizer, milestones=schedule.lr_milestones, gamma=schedule.lr_gamma)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)

    def loader(self, dataset: IterableDataset, epoch: int) -> DataLoader:
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(epoch)
        generator = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        return DataLoader(dataset, batch_size=self.schedule.batch_size,
                          num_workers=self.schedule.workers, generator=generator,
                          pin_memory=self.device.type == "cuda",
                          persistent_workers=False)

    def prepare(self, batch: dict, feed: dict[str, str], train: bool) -> tuple:
        """The model's positional inputs for a loader batch."""
        if self.method == "sdnet":
            return self.inputs.sdnet(batch, feed, train)
        return (self.inputs.motion(batch, train),)

    def forward(self, batch: dict, feed: dict[str, str], train: bool,
                prepared: tuple | None = None) -> dict[str, torch.Tensor]:
        prepared = prepared if prepared is not None else self.prepare(batch, feed, train)
        with torch.autocast("cuda", dtype=torch.float16, enabled=self.amp):
            return self.model(*prepared)

    def train_epoch(self, dataset: IterableDataset, epoch: int) -> dict[str, float]:
        self.model.train()
        total, count, waited, preparing, started = 0.0, 0, 0.0, 0.0, time.perf_counter()
        tick = time.perf_counter()
        for step, batch in enumerate(self.loader(dataset, epoch)):
            waited += time.perf_counter() - tick
            labels = torch.as_tensor(batch["is_live"]).to(self.device)
            if len(labels) < 2 and self.has_batchnorm:  # BatchNorm cannot train on one sample
                tick = time.perf_counter()
                continue
            tick = time.perf_counter()
            prepared = self.prepare(batch, self.feed, train=True)
            preparing += time.perf_counter() - tick
            logits = self.forward(batch, self.feed, train=True, prepared=prepared)
            loss = self.model.loss({k: v.float() for k, v in logits.items()}, labels)
            value = float(loss.detach())
            if not math.isfinite(value) or value > LOSS_LIMIT:
                raise TrainingDiverged(
                    f"training diverged at epoch {epoch + 1}, step {step + 1}: loss {value} "
                    f"(lr {self.scheduler.get_last_lr()[0]:g}); lower the learning rate in params.yaml presets")
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            total += value * len(labels)
            count += len(labels)
            tick = time.perf_counter()
        if count == 0:
            raise ValueError("the train split yielded no samples from the cache (motion: a clip "
                             "needs clip_len consecutive sampled frames, see extract.sampling)")
        elapsed = time.perf_counter() - started
        return {"train/loss": total / count, "train/samples": count,
                "train/samples_per_s": count / elapsed, "train/data_wait_share": waited / elapsed,
                "train/input_prep_share": preparing / elapsed}

    @torch.no_grad()
    def score(self, dataset: IterableDataset, split: str,
              feeds: list[dict[str, str]]) -> pd.DataFrame:
        """P(live) per sample for every feed (model modality -> data modality)."""
        self.model.eval()
        rows: dict[str, list] = defaultdict(list)
        for feed in feeds:
            for batch in self.loader(dataset, epoch=0):
                logits = self.forward(batch, feed, train=False)
                scores = torch.sigmoid(logits[self.model.score_key].float()).cpu().numpy()
                n = len(scores)
                rows["video_id"] += list(batch["video_id"])
                rows["index"] += torch.as_tensor(batch["index"]).tolist()
                rows["is_live"] += torch.as_tensor(batch["is_live"]).bool().tolist()
                rows["pai"] += list(batch["pai"])
                rows["score"] += scores.astype(float).tolist()
                rows["modalities"] += [",".join(feed.values()) if feed else "color"] * n
        frame = pd.DataFrame(rows, columns=["video_id", "index", "is_live", "pai", "score",
                                            "modalities"])
        frame.insert(1, "split", split)
        return frame.sort_values(["video_id", "modalities", "index"], kind="stable",
                                 ignore_index=True)

    def state(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict()}

    def load_state(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])


def fit(trainer: Trainer, train_data: IterableDataset, dev_data: IterableDataset | None,
        dev_feeds: list[dict[str, str]], checkpoint: Path, fingerprint: str,
        log: Callable[[dict, int], None] = lambda metrics, step: None,
        checkpoint_interval_s: float = 0.0) -> dict:
    """Train for the schedule's epochs; returns the history and the selected epoch.

    After an epoch the whole state (model, optimizer, scheduler, RNG states,
    history, best weights) is saved to `checkpoint`: after every epoch, or
    with `checkpoint_interval_s` > 0 only once that long has passed since the
    last save (and after the last epoch); a run that finds a checkpoint with
    the same `fingerprint` continues from it. The selected
    weights (lowest dev EER, then lowest dev ACER, then earliest epoch; the
    last epoch where there is no dev split) are loaded into the model.
    """
    history: list[dict] = []
    best: dict[str, Any] | None = None
    start = 0
    if checkpoint.is_file():
        saved = torch.load(checkpoint, map_location="cpu", weights_only=False)
        if saved["fingerprint"] == fingerprint:
            trainer.load_state(saved["trainer"])
            set_rng_state(saved["rng"])
            history, best, start = saved["history"], saved["best"], saved["epoch"] + 1
            print(f"resuming from {checkpoint} after epoch {start}", file=sys.stderr)
        else:
            print(f"ignoring {checkpoint}: it belongs to other parameters", file=sys.stderr)
    saved_at = time.monotonic()
    for epoch in range(start, trainer.schedule.epochs):
        lr = trainer.scheduler.get_last_lr()[0]
        metrics = {"epoch": epoch + 1, "lr": lr, **trainer.train_epoch(train_data, epoch)}
        trainer.scheduler.step()
        if dev_data is not None:
            dev = video_metrics(trainer.score(dev_data, "dev", dev_feeds))
            metrics.update({"dev/eer": dev["eer"], "dev/acer": dev["acer"]})
            key = (_nan_last(dev["eer"]), _nan_last(dev["acer"]), epoch)
            if best is None or key < tuple(best["key"]):
                best = {"key": key, "epoch": epoch + 1,
                        "model": copy.deepcopy(trainer.model.state_dict())}
        log({k: v for k, v in metrics.items() if k != "epoch"}, epoch + 1)
        history.append({k: v for k, v in metrics.items() if k not in LOGGED_ONLY})
        last = epoch + 1 == trainer.schedule.epochs
        if last or time.monotonic() - saved_at >= checkpoint_interval_s:
            with atomic_path(checkpoint) as tmp:
                torch.save({"fingerprint": fingerprint, "trainer": trainer.state(),
                            "rng": rng_state(), "epoch": epoch, "history": history,
                            "best": best}, tmp)
            saved_at = time.monotonic()
    if best is not None:
        trainer.model.load_state_dict(best["model"])
        return {"history": history, "selected_epoch": best["epoch"],
                "selected_by": "lowest dev EER (ties: dev ACER, earlier epoch)"}
    return {"history": history, "selected_epoch": trainer.schedule.epochs,
            "selected_by": "last epoch (the protocol has no dev split)"}


def _nan_last(value: float) -> float:
    return math.inf if math.isnan(value) else value


# ---------------------------------------------------------------------------
# One experiment end to end


def video_scores(frame_scores: pd.DataFrame) -> pd.DataFrame:
    """Per-video P(live): the mean of the video's sample scores."""
    grouped = frame_scores.groupby(["video_id", "split"], sort=True)
    videos = grouped.agg(is_live=("is_live", "first"), pai=("pai", "first"),
                         score=("score", "mean"), n_frames=("score", "size")).reset_index()
    videos["n_frames"] = videos["n_frames"].astype("int32")
    order = {s: i for i, s in enumerate(SPLITS)}
    return videos.sort_values(["split", "video_id"], key=lambda c: c.map(order) if c.name == "split"
                              else c, ignore_index=True)[
        ["video_id", "split", "is_live", "pai", "score", "n_frames"]]


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for but torch sees no CUDA device")
    return torch.device(name)


def resolved_config(params: dict, experiment: Experiment) -> dict:
    """Everything that determines the experiment's result, for hashing and logging."""
    config = method_config(params, experiment.method, experiment.variant)
    return {"experiment": experiment.id, "preset": params["preset"], "method": config,
            "augment": params["augment"], "pretrained": params.get("pretrained", {}),
            "evm": params["evm"] if experiment.method == "motion" else None}


def model_feeds(method: str, config: dict, splits: dict[str, Split]) -> tuple[list[str], dict]:
    """The model's modalities and, per split, the feeds (model modality -> data modality).

    The model trains on the variant's modalities that the train split provides;
    a split that lacks them (CeFA protocol 3) feeds each of its modalities in
    turn through a single-modality model.
    """
    if method == "motion":
        return ["color"], {s: [{}] for s in splits}
    variant = list(config["modalities"])
    provided = splits["train"].modalities
    trained = [m for m in variant if provided is None or m in provided]
    if not trained:
        raise ValueError(f"the train split provides modalities {provided}, "
                         f"the variant uses {variant}: nothing to train on")
    feeds = {}
    for name, split in splits.items():
        used = split.modalities or trained
        if set(trained) <= set(used):
            feeds[name] = [{m: m for m in trained}]
        elif len(trained) == 1:  # CeFA p3: each test modality through the trained branch
            feeds[name] = [{trained[0]: m} for m in used]
        else:
            raise ValueError(f"split {name} provides modalities {used}, the model was trained on "
                             f"{trained}: only a single-modality model can switch modality")
    return trained, feeds


def train_experiment(experiment: Experiment, params: dict, *, index_root: Path, cache_root: Path,
                     out_root: Path, scratch: Path, device: torch.device,
                     checkpoint_interval_s: float = 0.0) -> dict:
    """Train one experiment and write its score files; returns the receipt."""
    from fas import tracking

    config = method_config(params, experiment.method, experiment.variant)
    resolved = resolved_config(params, experiment)
    key = tracking.run_key(experiment, params, stage="train")  # also fingerprints checkpoints
    splits = read_splits(index_root, experiment)
    modalities, feeds = model_feeds(experiment.method, config, splits)
    notes: list[str] = []
    seed_everything(experiment.seed)
    model = build_model(experiment.method, config, params.get("pretrained"), modalities)
    inputs = Inputs(experiment.method, config, params["augment"], params["evm"], device,
                    channels_last=device.type == "cuda")
    trainer = Trainer(experiment.method, model, Schedule.from_config(config), inputs,
                      feeds["train"][0], experiment.seed, device)
    data_modalities = {name: sorted({m for feed in feeds[name] for m in feed.values()} or {"color"})
                       for name in splits}

    def samples(name: str, shuffle: bool) -> IterableDataset:
        return open_samples(experiment.method, config, cache_root, splits[name],
                            data_modalities[name], shuffle, experiment.seed, notes)

    out = Path(out_root) / experiment.path
    checkpoint_dir = Path(scratch) / "checkpoints" / experiment.path
    with tracking.start_run(experiment, params, stage="train") as run:
        run.set_tags({"device": device.type, "threads": torch.get_num_threads()})
        run.log_params(tracking.flatten(resolved))
        dev_data = samples("dev", shuffle=False) if "dev" in splits else None
        result = fit(trainer, samples("train", shuffle=True), dev_data, feeds.get("dev", []),
                     checkpoint_dir / "last.pt", key, log=run.log_metrics,
                     checkpoint_interval_s=checkpoint_interval_s)
        run.set_tags({"selected_epoch": str(result["selected_epoch"]),
                      "selected_by": result["selected_by"]})
        frames = pd.concat([trainer.score(samples(name, shuffle=False), name, feeds[name])
                            for name in SPLITS if name in splits], ignore_index=True)
        if frames["score"].isna().any():
            raise TrainingDiverged(f"the selected model gives {int(frames['score'].isna().sum())} "
                                   "NaN score(s)")
        paths = write_outputs(out, frames, result["history"], resolved)
        model_path = checkpoint_dir / "model.pt"
        with atomic_path(model_path) as tmp:
            torch.save(trainer.model.state_dict(), tmp)
        for path in [*paths.values(), model_path]:
            run.log_artifact(path)
        receipt = {"run_id": run.id, "run_key": key, "experiment": experiment.id,
                   **{name: str(path) for name, path in paths.items()},
                   "model": str(model_path), "selected_epoch": result["selected_epoch"],
                   "selected_by": result["selected_by"], "device": device.type,
                   "train_modalities": modalities, "notes": notes}
        write_json(out / "receipt.json", receipt)
        return receipt


def write_outputs(out: Path, frames: pd.DataFrame, history: list[dict], resolved: dict) -> dict:
    """scores.parquet, frame_scores.parquet, history.csv and config.json, each atomically."""
    paths = {"scores": out / "scores.parquet", "frame_scores": out / "frame_scores.parquet",
             "history": out / "history.csv", "config": out / "config.json"}
    for name, table in (("scores", video_scores(frames)), ("frame_scores", frames)):
        with atomic_path(paths[name]) as tmp:
            table.to_parquet(tmp, index=False)
    with atomic_path(paths["history"]) as tmp:
        pd.DataFrame(history).to_csv(tmp, index=False)
    write_json(paths["config"], resolved)
    return paths


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--experiment", required=True, help="experiment id, see `fas grid`")
    parser.add_argument("--params", type=Path, default=None, help="params.yaml to read")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--index-root", type=Path, default=Path("data/index"))
    parser.add_argument("--cache-root", type=Path, default=Path("data/cache"))
    parser.add_argument("--out", type=Path, default=Path("results/train"))
    parser.add_argument("--scratch", type=Path, default=Path(".scratch"))
    parser.add_argument("--checkpoint-interval", type=float, default=0.0, metavar="SECONDS",
                        help="save the resume checkpoint after every epoch (0, the default), or "
                             "only once this long has passed since the last save, and after "
                             "the last epoch")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads for torch (1 suits the demo preset: tiny models, "
                             "parallel jobs); 0 = torch's default")


def run(args: argparse.Namespace) -> int:
    params = load_params(args.params)
    experiment = find(params, args.experiment)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    try:
        receipt = train_experiment(experiment, params, index_root=args.index_root,
                                   cache_root=args.cache_root, out_root=args.out,
                                   scratch=args.scratch, device=resolve_device(args.device),
                                   checkpoint_interval_s=args.checkpoint_interval)
    except TrainingDiverged as error:
        print(f"fas train {experiment.id}: {error}", file=sys.stderr)
        return 1
    print(json.dumps(receipt, indent=2, sort_keys=True))
    return 0
