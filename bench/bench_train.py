"""Training throughput of SD-Net and MotionEnhancement at the paper and demo presets (CPU).

For each (method, preset): samples/s of full training steps (loader batch ->
resize/magnify/augment -> forward/backward/step) through `fas.training.loop.Trainer`,
with the shares of step time spent waiting for the DataLoader and preparing
inputs. Samples are generated in memory in the loader's format at the cache
resolution (align.crop_size), so the wait share is the DataLoader and collate
cost, not Parquet reading (see DEPENDENCIES.md for cache read speeds).
The paper presets run a reduced batch on CPU (their full batch would take
minutes per step here); samples/s is per sample either way.

    python -m bench.bench_train [--threads N] [--only sdnet|motion] [--preset paper|demo]
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import functools
import json
import sys
import time

import torch
from torch.utils.data import IterableDataset

from fas.config import crop_size, load_params, method_config
from fas.evm_settings import resolve_evm
from fas.experiment import resolve
from fas.grid import expand
from fas.models.evm import magnify
from fas.training.loop import Schedule, Trainer
from fas.training.methods import METHODS
from fas.training.splits import Split

# (batch size on CPU, timed steps) per preset: the paper batch is cut for CPU.
CPU_BUDGET = {"paper": {"sdnet": (4, 2), "motion": (1, 1)},
              "demo": {"sdnet": (None, 6), "motion": (None, 6)}}


class MemorySamples(IterableDataset):
    """`n` synthetic samples in the loader's format (docs/ARCHITECTURE.md)."""

    def __init__(self, method: str, config, size: int, n: int, fps: float = 25.0):
        generator = torch.Generator().manual_seed(0)
        image = lambda: torch.randint(0, 256, (3, size, size), dtype=torch.uint8,  # noqa: E731
                                      generator=generator)
        self.samples = []
        for i in range(n):
            sample = {"video_id": f"v{i}", "index": 0, "is_live": i % 2 == 0, "pai": "live"}
            if METHODS[method].multimodal:
                sample["static"] = {m: image() for m in config["modalities"]}
                sample["dynamic"] = {m: image() for m in config["modalities"]}
            else:
                sample["frames"] = torch.stack([image() for _ in range(config["clip_len"])])
                sample["fps"] = fps
            self.samples.append(sample)

    def __iter__(self):
        worker = torch.utils.data.get_worker_info()  # each DataLoader worker yields its share
        return iter(self.samples if worker is None else self.samples[worker.id::worker.num_workers])


def build_trainer(params: dict, method: str, preset: str, device: torch.device,
                  batch: int | None = None, workers: int | None = None) -> tuple[Trainer, dict]:
    """The pipeline's Trainer for the method's `full` variant at the preset, and its config.

    `batch` and `workers` replace the preset's values where given.
    """
    params = copy.deepcopy(params)
    params["preset"] = preset
    experiment = next(e for e in expand(params) if e.method == method and e.variant == "full")
    resolved = resolve(params, experiment)
    config = resolved.method
    schedule = Schedule.from_config(config)
    schedule = dataclasses.replace(schedule, batch_size=batch or schedule.batch_size,
                                   workers=schedule.workers if workers is None else workers)
    torch.manual_seed(0)
    spec = METHODS[method]
    model = spec.build_model(config)
    inputs = spec.inputs(resolved, device)
    modalities, feeds = spec.feeds(config, {"train": Split("train")})
    return Trainer(model, schedule, functools.partial(spec.prepare, inputs), feeds["train"][0],
                   0, device), config


def measure(params: dict, method: str, preset: str) -> dict:
    """One warm-up epoch, then a timed epoch of a few steps."""
    batch, steps = CPU_BUDGET[preset][method]
    # samples are in memory; worker processes would only add start-up
    trainer, config = build_trainer(params, method, preset, torch.device("cpu"), batch, workers=0)
    schedule = trainer.schedule
    size = cache_size(params, method)
    trainer.train_epoch(MemorySamples(method, config, size, schedule.batch_size), 0)  # warm-up
    metrics = trainer.train_epoch(MemorySamples(method, config, size, schedule.batch_size * steps), 1)
    return {"method": method, "preset": preset, "batch": schedule.batch_size, "steps": steps,
            "input_size": config["input_size"], "cache_size": size,
            "parameters": sum(p.numel() for p in trainer.model.parameters()),
            "samples_per_s": round(metrics["train/samples_per_s"], 2),
            "data_wait_share": round(metrics["train/data_wait_share"], 3),
            "input_prep_share": round(metrics["train/input_prep_share"], 3)}


def cache_size(params: dict, method: str) -> int:
    """The cache's crop size for the method's datasets (align.crop_size) under params' preset."""
    return crop_size(params, "replay" if method == "motion" else "cefa")


def evm_cost(params: dict, preset: str) -> dict:
    """Milliseconds per clip of magnification at the resolution training runs it."""
    config = method_config({**params, "preset": preset}, "motion", "full")
    size = min(int(config["input_size"]), cache_size({**params, "preset": preset}, "motion"))
    clips = torch.rand(int(config["batch_size"]), int(config["clip_len"]), 3, size, size)
    evm = resolve_evm(params["evm"])
    magnify(clips, 25.0, **evm)  # warm-up
    started = time.perf_counter()
    magnify(clips, 25.0, **evm)
    elapsed = time.perf_counter() - started
    return {"bench": "evm", "preset": preset, "resolution": size, "clip_len": clips.shape[1],
            "ms_per_clip": round(1000 * elapsed / len(clips), 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--only", choices=["sdnet", "motion"])
    parser.add_argument("--preset", choices=["paper", "demo"])
    args = parser.parse_args([] if argv is None else argv)  # `python -m bench` calls main()
    torch.set_num_threads(args.threads)
    params = load_params()
    started = time.perf_counter()
    for preset in [args.preset] if args.preset else ["demo", "paper"]:
        for method in [args.only] if args.only else ["sdnet", "motion"]:
            print(json.dumps({"bench": "train", **measure(params, method, preset),
                              "threads": args.threads}), flush=True)
        if args.only != "sdnet":
            print(json.dumps(evm_cost(params, preset)), flush=True)
    print(json.dumps({"bench": "train", "total_s": round(time.perf_counter() - started, 1)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
