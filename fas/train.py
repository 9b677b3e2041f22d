"""`fas train --experiment ID`: train one experiment of the grid and write its scores.

Reads the experiment's splits from `protocols.parquet`, the samples from the
Parquet cache, trains with the schedule of the active preset, selects the
epoch on the dev split, and writes per-video and per-sample scores for train,
dev and test. Checkpoints after every epoch in the scratch folder let a
killed job resume to identical scores. The pieces live in `fas.training`.
"""

from __future__ import annotations

import argparse
import json
import sys
from functools import partial
from pathlib import Path

import pandas as pd
import torch

from fas import paths
from fas.config import load_params
from fas.experiment import ExperimentConfig, resolve
from fas.io import atomic_path, write_json
from fas.training.loop import Schedule, Trainer, TrainingDiverged, fit, seed_everything
from fas.training.methods import METHODS
from fas.training.samples import open_split
from fas.training.splits import SPLITS, data_modalities, read_splits


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


def train_experiment(config: ExperimentConfig, *, index_root: Path, cache_root: Path,
                     out_root: Path, scratch: Path, device: torch.device,
                     checkpoint_interval_s: float = 0.0) -> dict:
    """Train one experiment and write its score files; returns the receipt."""
    from fas import tracking

    experiment, method = config.experiment, METHODS[config.experiment.method]
    key = tracking.run_key(config, stage="train")  # also fingerprints checkpoints
    splits = read_splits(index_root, experiment)
    modalities, feeds = method.feeds(config.method, splits)
    notes: list[str] = []
    seed_everything(experiment.seed)
    model = method.build_model(config.method, config.pretrained, modalities)
    inputs = method.inputs(config, device)
    trainer = Trainer(model, Schedule.from_config(config.method), partial(method.prepare, inputs),
                      feeds["train"][0], experiment.seed, device)
    open_source = partial(method.samples, config)

    def samples(name: str, shuffle: bool):
        return open_split(open_source, cache_root, splits[name], data_modalities(feeds[name]),
                          int(config.method["input_size"]), shuffle, experiment.seed, notes)

    out = Path(out_root) / experiment.path
    checkpoint_dir = paths.checkpoint_dir(experiment, scratch)
    with tracking.start_run(config, stage="train") as run:
        run.set_tags({"device": device.type, "threads": torch.get_num_threads()})
        run.log_params(tracking.flatten(config.as_json()))
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
        written = write_outputs(out, frames, result["history"], config.as_json())
        model_path = checkpoint_dir / "model.pt"
        with atomic_path(model_path) as tmp:
            torch.save(trainer.model.state_dict(), tmp)
        for path in [*written.values(), model_path]:
            run.log_artifact(path)
        receipt = {"run_id": run.id, "run_key": key, "experiment": experiment.id,
                   **{name: str(path) for name, path in written.items()},
                   "model": str(model_path), "selected_epoch": result["selected_epoch"],
                   "selected_by": result["selected_by"], "device": device.type,
                   "train_modalities": modalities, "notes": notes}
        write_json(out / "receipt.json", receipt)
        return receipt


def write_outputs(out: Path, frames: pd.DataFrame, history: list[dict], resolved: dict) -> dict:
    """scores.parquet, frame_scores.parquet, history.csv and config.json, each atomically."""
    written = {"scores": out / "scores.parquet", "frame_scores": out / "frame_scores.parquet",
               "history": out / "history.csv", "config": out / "config.json"}
    for name, table in (("scores", video_scores(frames)), ("frame_scores", frames)):
        with atomic_path(written[name]) as tmp:
            table.to_parquet(tmp, index=False)
    with atomic_path(written["history"]) as tmp:
        pd.DataFrame(history).to_csv(tmp, index=False)
    write_json(written["config"], resolved)
    return written


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--experiment", required=True, help="experiment id, see `fas grid`")
    parser.add_argument("--params", type=Path, default=None, help="params.yaml to read")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--index-root", type=Path, default=paths.INDEX_ROOT)
    parser.add_argument("--cache-root", type=Path, default=paths.CACHE_ROOT)
    parser.add_argument("--out", type=Path, default=paths.TRAIN_ROOT)
    parser.add_argument("--scratch", type=Path, default=paths.SCRATCH_ROOT)
    parser.add_argument("--checkpoint-interval", type=float, default=0.0, metavar="SECONDS",
                        help="save the resume checkpoint after every epoch (0, the default), or "
                             "only once this long has passed since the last save, and after "
                             "the last epoch")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads for torch (1 suits the demo preset: tiny models, "
                             "parallel jobs); 0 = torch's default")


def run(args: argparse.Namespace) -> int:
    config = resolve(load_params(args.params), args.experiment)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    try:
        receipt = train_experiment(config, index_root=args.index_root,
                                   cache_root=args.cache_root, out_root=args.out,
                                   scratch=args.scratch, device=resolve_device(args.device),
                                   checkpoint_interval_s=args.checkpoint_interval)
    except TrainingDiverged as error:
        print(f"fas train {config.id}: {error}", file=sys.stderr)
        return 1
    print(json.dumps(receipt, indent=2, sort_keys=True))
    return 0
