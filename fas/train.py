"""`fas train --experiment ID`: train one experiment of the grid and write its scores.

Reads the experiment's splits from `protocols.parquet`, the samples from the
Parquet cache, trains with the schedule of the active preset, selects the
epoch on the dev split, and writes per-video and per-sample scores for train,
dev and test. Checkpoints after every epoch in the scratch folder let a
killed job resume to identical scores. A split whose cached samples lack live
or attack presentations (their videos failed preprocessing) stops the run
before training. The pieces live in `fas.training`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from functools import partial
from pathlib import Path

from fas import paths
from fas.config import load_params
from fas.experiment import ExperimentConfig, resolve
from fas.io import atomic_path, write_json
from fas.lazy import lazy_import

pd = lazy_import("pandas")
torch = lazy_import("torch")
loop = lazy_import("fas.training.loop")
methods = lazy_import("fas.training.methods")
split_samples = lazy_import("fas.training.samples")
splits = lazy_import("fas.training.splits")


def video_scores(frame_scores: pd.DataFrame) -> pd.DataFrame:
    """Per-video P(live): the mean of the video's sample scores."""
    grouped = frame_scores.groupby(["video_id", "split"], sort=True)
    videos = grouped.agg(is_live=("is_live", "first"), pai=("pai", "first"),
                         score=("score", "mean"), n_frames=("score", "size")).reset_index()
    videos["n_frames"] = videos["n_frames"].astype("int32")
    order = {s: i for i, s in enumerate(splits.SPLITS)}
    return videos.sort_values(["split", "video_id"], key=lambda c: c.map(order) if c.name == "split"
                              else c, ignore_index=True)[
        ["video_id", "split", "is_live", "pai", "score", "n_frames"]]


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for but torch sees no CUDA device")
    return torch.device(name)


class Setup:
    """What an experiment feeds its network, split by split: data, modalities, input preparation.

    Training and `score` read it alike, so a network loaded back from MLflow
    scores a split exactly as the training run did.
    """

    def __init__(self, config: ExperimentConfig, index_root: Path, cache_root: Path,
                 device: torch.device):
        experiment = config.experiment
        self.config, self.method = config, methods.METHODS[experiment.method]
        self.splits = splits.read_splits(index_root, experiment)
        self.modalities, self.feeds = self.method.feeds(config.method, self.splits)
        self.inputs = self.method.inputs(config, device)
        self.cache_root, self.device = Path(cache_root), device
        self.notes: list[str] = []

    def samples(self, name: str, shuffle: bool):
        return self.open(self.splits[name], shuffle)

    def open(self, split: splits.Split, shuffle: bool):
        """The loader dataset of `split`, one of the experiment's splits or a part of one."""
        return split_samples.open_split(
            partial(self.method.samples, self.config), self.cache_root, split,
            splits.data_modalities(self.feeds[split.name]), int(self.config.method["input_size"]),
            shuffle, self.config.experiment.seed, self.notes)

    def train_samples(self):
        """The train split, shuffled; in class-balanced batches where the method's loss asks
        for them (`Method.balance`)."""
        data = self.samples("train", shuffle=True)
        field = self.method.balance(self.config.method)
        if field is None:
            return data
        return split_samples.balanced_split(data, self.splits["train"], field,
                                            int(self.config.method["batch_size"]),
                                            partial(self.open, shuffle=True), self.method.per_class)

    def open_splits(self, names: tuple[str, ...] | None = None) -> dict:
        """The experiment's splits (default: all it has) in order, unshuffled, for scoring."""
        return {name: self.samples(name, shuffle=False) for name in names or splits.SPLITS
                if name in self.splits}

    def trainer(self, model: torch.nn.Module) -> loop.Trainer:
        return loop.Trainer(model, loop.Schedule.from_config(self.config.method),
                            partial(self.method.prepare, self.inputs), self.feeds["train"][0],
                            self.config.experiment.seed, self.device,
                            loss_targets=self.method.loss_targets)

    def split_table(self, name: str) -> pd.DataFrame:
        """The videos of one split (dataset, video_id): what MLflow logs as its dataset."""
        return pd.DataFrame([(dataset, video) for dataset, videos in self.splits[name].videos.items()
                             for video in videos], columns=["dataset", "video_id"])


def score(trainer: loop.Trainer, setup: Setup, opened: dict) -> pd.DataFrame:
    """Per-sample P(live) of the trainer's network on opened splits (`Setup.open_splits`)."""
    return pd.concat([trainer.score(data, name, setup.feeds[name]) for name, data in opened.items()],
                     ignore_index=True)


def train_experiment(config: ExperimentConfig, *, index_root: Path, cache_root: Path,
                     out_root: Path, scratch: Path, device: torch.device,
                     checkpoint_interval_s: float = 0.0) -> dict:
    """Train one experiment and write its score files; returns the receipt."""
    from fas import tracking

    experiment = config.experiment
    key = tracking.run_key(config, stage="train")  # also fingerprints checkpoints
    setup = Setup(config, index_root, cache_root, device)
    loop.seed_everything(experiment.seed, device)
    trainer = setup.trainer(setup.method.build_model(config.method, config.pretrained,
                                                     setup.modalities))
    ordered = setup.open_splits()
    for name, data in ordered.items():
        split_samples.require_both_classes(data, name, experiment.id)
    out = Path(out_root) / experiment.path
    checkpoint_dir = paths.checkpoint_dir(experiment, scratch)
    progress = EpochProgress(experiment.id, trainer.schedule.epochs)
    with tracking.start_run(config, stage="train") as run:
        run.set_tags({"device": device.type, "threads": torch.get_num_threads()})
        run.log_params(tracking.flatten(config.as_json()))
        protocols = Path(index_root) / experiment.dataset / "protocols.parquet"
        for name in setup.splits:
            run.log_input(setup.split_table(name), f"{experiment.dataset}.{experiment.protocol}."
                          f"f{experiment.fold}.{name}", protocols, context=name)

        def log(figures: dict, epoch: int) -> None:
            run.log_metrics(figures, step=epoch)
            progress.update(figures, epoch)

        with progress:
            result = loop.fit(trainer, setup.train_samples(), ordered.get("dev"),
                              setup.feeds.get("dev", []), checkpoint_dir / "last.pt", key,
                              log=log, checkpoint_interval_s=checkpoint_interval_s)
        run.set_tags({"selected_epoch": str(result["selected_epoch"]),
                      "selected_by": result["selected_by"]})
        frames = score(trainer, setup, ordered)
        if frames["score"].isna().any():
            raise loop.TrainingDiverged(f"the selected model gives "
                                        f"{int(frames['score'].isna().sum())} NaN score(s)")
        written = write_outputs(out, frames, result["history"], config.as_json())
        model_path = checkpoint_dir / "model.pt"
        with atomic_path(model_path) as tmp:
            torch.save(trainer.model.state_dict(), tmp)
        for path in [*written.values(), model_path]:
            run.log_artifact(path)
        model_uri = run.log_model(trainer.model)
        receipt = {"run_id": run.id, "run_key": key, "experiment": experiment.id,
                   **{name: str(path) for name, path in written.items()},
                   "model": str(model_path), "selected_epoch": result["selected_epoch"],
                   "selected_by": result["selected_by"], "device": device.type,
                   "train_modalities": setup.modalities, "notes": setup.notes}
        if model_uri:
            receipt["model_uri"] = model_uri
        write_json(out / "receipt.json", receipt)
        return receipt


class EpochProgress:
    """Epoch, loss, dev EER and time: a live bar on a terminal, one line per epoch in a log."""

    def __init__(self, experiment_id: str, epochs: int, stream=None):
        self.stream = stream or sys.stderr
        self.experiment_id, self.epochs = experiment_id, epochs
        self.tty = self.stream.isatty()
        self.bar = None

    def __enter__(self) -> "EpochProgress":
        self.started = self.last = time.monotonic()
        if self.tty:
            from tqdm import tqdm

            self.bar = tqdm(total=self.epochs, desc=f"train {self.experiment_id}", unit="epoch",
                            file=self.stream)
        return self

    def update(self, figures: dict, epoch: int) -> None:
        now = time.monotonic()
        fields = {"loss": f"{figures['train/loss']:.4f}"}
        if "dev/eer" in figures:
            fields["dev EER"] = f"{100 * figures['dev/eer']:.2f}%"
        fields["time"] = f"{now - self.last:.1f}s"
        self.last = now
        if self.bar is not None:
            self.bar.n = epoch
            self.bar.set_postfix(fields, refresh=True)
        else:
            print(f"train {self.experiment_id}: epoch {epoch}/{self.epochs} "
                  + " ".join(f"{name} {value}" for name, value in fields.items()),
                  file=self.stream, flush=True)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()


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
    parser.add_argument("--checkpoint-interval", type=float, default=30.0, metavar="SECONDS",
                        help="save the resume checkpoint after an epoch once this long has "
                             "passed since the last save (default 30; 0 = after every epoch), "
                             "and after the last epoch")
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
    except loop.TrainingDiverged as error:
        print(f"fas train {config.id}: {error}", file=sys.stderr)
        return 1
    print(json.dumps(receipt, indent=2, sort_keys=True))
    return 0
