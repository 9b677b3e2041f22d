"""The training loop: seeding, the schedule, epochs, dev-set model selection, resume checkpoints."""

from __future__ import annotations

import copy
import math
import os
import random
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, IterableDataset

from fas import metrics
from fas.io import atomic_path

# Per-epoch figures logged to tracking only: timings vary between runs (history.csv
# stays byte-identical) and the sample count is not a rate to plot.
LOGGED_ONLY = ("train/samples", "train/samples_per_s", "train/data_wait_share",
               "train/input_prep_share")
# A batch loss above this (BCE is ~0.7 at chance) means training has diverged.
LOSS_LIMIT = 1.0e4
# Accept as live at P(live) >= 0.5 for the dev ACER that breaks EER ties.
DEV_ACER_THRESHOLD = 0.5

# (batch, feed, train) -> the model's positional inputs
Prepare = Callable[[dict, dict[str, str], bool], tuple]


def no_loss_targets(batch: dict) -> dict:
    """A loss that reads only the logits and `is_live`."""
    return {}


class TrainingDiverged(FloatingPointError):
    """The loss became NaN, infinite or exploded: the run stops instead of saving garbage."""


def seed_everything(seed: int, device: torch.device) -> None:
    """Seed python, numpy and torch; on CUDA, deterministic kernels where torch has them.

    The CPU kernels the models use are deterministic already (two runs write
    identical files, tested); torch's switch imports its compiler, about 1.4 s of
    CPU per job, so it is set only where it changes something.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def rng_state() -> dict:
    """Every generator's state, in types `torch.load(weights_only=True)` reads back."""
    name, keys, position, has_gauss, cached = np.random.get_state()
    state = {"python": random.getstate(),
             "numpy": (name, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    name, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def video_metrics(frame_scores: pd.DataFrame) -> dict[str, float]:
    """Dev-set model selection on video-level mean scores: `fas.metrics` EER and pooled ACER at 0.5."""
    videos = frame_scores.groupby("video_id").agg(is_live=("is_live", "first"),
                                                  score=("score", "mean"))
    live, score = videos["is_live"].to_numpy(bool), videos["score"].to_numpy(float)
    if live.all() or not live.any():
        return {"eer": float("nan"), "acer": float("nan")}
    species = np.where(live, metrics.LIVE_PAI, "attack")
    rates = metrics.error_rates(live, species, score, DEV_ACER_THRESHOLD)
    return {"eer": metrics.eer(live, score)[0], "acer": rates["acer_pooled"]}


@dataclass(frozen=True)
class Schedule:
    epochs: int
    batch_size: int
    optimizer: str
    lr: float
    lr_milestones: tuple[int, ...]
    lr_gamma: float
    workers: int
    grad_clip_norm: float | None
    patience: int | None  # epochs after the selected one before stopping (None: every epoch)

    @classmethod
    def from_config(cls, method: Mapping[str, Any]) -> "Schedule":
        """The schedule keys of a resolved method config (the preset's)."""
        clip, patience = method["grad_clip_norm"], method["early_stopping_patience"]
        return cls(int(method["epochs"]), int(method["batch_size"]), method["optimizer"],
                   float(method["lr"]), tuple(method["lr_milestones"]), float(method["lr_gamma"]),
                   int(method["workers"]), None if clip is None else float(clip),
                   None if patience is None else int(patience))


def make_optimizer(schedule: Schedule, model: torch.nn.Module) -> torch.optim.Optimizer:
    # foreach: one kernel per step for all parameters (torch picks it on CUDA only by default)
    if schedule.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=schedule.lr, foreach=True)
    if schedule.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=schedule.lr, momentum=0.9, foreach=True)
    raise ValueError(f"unknown optimizer {schedule.optimizer!r} (adam | sgd)")


class Trainer:
    """One model, its schedule and input preparation; fit with per-epoch checkpoints."""

    def __init__(self, model: torch.nn.Module, schedule: Schedule, prepare: Prepare,
                 feed: dict[str, str], seed: int, device: torch.device,
                 loss_targets: Callable[[dict], dict] = no_loss_targets):
        self.model, self.schedule, self.prepare = model.to(device), schedule, prepare
        self.loss_targets = loss_targets
        self.feed, self.seed, self.device = feed, seed, device
        self.has_batchnorm = any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
                                 for m in model.modules())
        self.amp = device.type == "cuda"  # fp16 + GradScaler on CUDA only, never bf16 on CPU
        if self.amp:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.optimizer = make_optimizer(schedule, self.model)
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(
            self.optimizer, milestones=list(schedule.lr_milestones), gamma=schedule.lr_gamma)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)

    def loader(self, dataset: IterableDataset, epoch: int) -> DataLoader:
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(epoch)
        generator = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        return DataLoader(dataset, batch_size=self.schedule.batch_size,
                          num_workers=self.schedule.workers, generator=generator,
                          pin_memory=self.device.type == "cuda",
                          persistent_workers=False)

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
            prepared = self.prepare(batch, self.feed, True)
            preparing += time.perf_counter() - tick
            logits = self.forward(batch, self.feed, train=True, prepared=prepared)
            loss = self.model.loss({k: v.float() for k, v in logits.items()}, labels,
                                   **self.loss_targets(batch))
            value = float(loss.detach())
            if not math.isfinite(value) or value > LOSS_LIMIT:
                raise TrainingDiverged(
                    f"training diverged at epoch {epoch + 1}, step {step + 1}: loss {value} "
                    f"(lr {self.scheduler.get_last_lr()[0]:g}); lower the learning rate in "
                    "params.yaml presets")
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            if self.schedule.grad_clip_norm is not None:
                self.scaler.unscale_(self.optimizer)
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.schedule.grad_clip_norm)
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
        log: Callable[[dict, int], None] = lambda figures, step: None,
        checkpoint_interval_s: float = 0.0) -> dict:
    """Train for the schedule's epochs; returns the history and the selected epoch.

    After an epoch the whole state (model, optimizer, scheduler, RNG states,
    history, best weights) is saved to `checkpoint`: after every epoch, or
    with `checkpoint_interval_s` > 0 only once that long has passed since the
    last save (and after the last epoch); a run that finds a checkpoint with
    the same `fingerprint` continues from it. Checkpoints are read with
    `weights_only=True` (tensors and plain values; nothing in the file can run
    code), so a foreign, stale or damaged one is ignored before it is trusted. The selected
    weights (lowest dev EER, then lowest dev ACER, then earliest epoch; the
    last epoch where there is no dev split) are loaded into the model. With
    the schedule's `patience` and a dev split, training stops once that many
    epochs have passed since the selected one.
    """
    history: list[dict] = []
    best: dict[str, Any] | None = None
    start = 0
    saved = read_checkpoint(checkpoint, fingerprint)
    if saved is not None:
        trainer.load_state(saved["trainer"])
        set_rng_state(saved["rng"])
        history, best, start = saved["history"], saved["best"], saved["epoch"] + 1
        print(f"resuming from {checkpoint} after epoch {start}", file=sys.stderr)
    saved_at = time.monotonic()
    for epoch in range(start, trainer.schedule.epochs):
        if _stalled(trainer.schedule, best, epoch - 1):  # also when resumed after the stop
            break
        lr = trainer.scheduler.get_last_lr()[0]
        figures = {"epoch": epoch + 1, "lr": lr, **trainer.train_epoch(train_data, epoch)}
        trainer.scheduler.step()
        if dev_data is not None:
            dev = video_metrics(trainer.score(dev_data, "dev", dev_feeds))
            figures.update({"dev/eer": dev["eer"], "dev/acer": dev["acer"]})
            key = (_nan_last(dev["eer"]), _nan_last(dev["acer"]), epoch)
            if best is None or key < tuple(best["key"]):
                best = {"key": key, "epoch": epoch + 1,
                        "model": copy.deepcopy(trainer.model.state_dict())}
        log({k: v for k, v in figures.items() if k != "epoch"}, epoch + 1)
        history.append({k: v for k, v in figures.items() if k not in LOGGED_ONLY})
        last = epoch + 1 == trainer.schedule.epochs or _stalled(trainer.schedule, best, epoch)
        if last or time.monotonic() - saved_at >= checkpoint_interval_s:
            with atomic_path(checkpoint) as tmp:
                torch.save({"fingerprint": fingerprint, "trainer": trainer.state(),
                            "rng": rng_state(), "epoch": epoch, "history": history,
                            "best": best}, tmp)
            saved_at = time.monotonic()
    if best is not None:
        trainer.model.load_state_dict(best["model"])
        selected_by = "lowest dev EER (ties: dev ACER, earlier epoch)"
        if len(history) < trainer.schedule.epochs:
            selected_by += (f"; stopped after epoch {len(history)}, "
                            f"{trainer.schedule.patience} without a better one")
        return {"history": history, "selected_epoch": best["epoch"], "selected_by": selected_by}
    return {"history": history, "selected_epoch": trainer.schedule.epochs,
            "selected_by": "last epoch (the protocol has no dev split)"}


def _stalled(schedule: Schedule, best: dict | None, epoch: int) -> bool:
    """True once `schedule.patience` epochs have passed since the selected (best) one."""
    return schedule.patience is not None and best is not None \
        and epoch + 1 - best["epoch"] >= schedule.patience


def read_checkpoint(checkpoint: Path, fingerprint: str) -> dict | None:
    """The resume state in `checkpoint` when it was saved for `fingerprint`, else None (said why)."""
    if not checkpoint.is_file():
        return None
    try:
        saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception as error:  # unpickling refused, truncated file, ...: start afresh
        reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
        print(f"ignoring {checkpoint}: not a readable checkpoint ({type(error).__name__}: "
              f"{reason})", file=sys.stderr)
        return None
    if not isinstance(saved, dict) or saved.get("fingerprint") != fingerprint:
        print(f"ignoring {checkpoint}: it belongs to other parameters", file=sys.stderr)
        return None
    return saved


def _nan_last(value: float) -> float:
    return math.inf if math.isnan(value) else value
