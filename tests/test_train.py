"""`fas train` end to end on tiny separable caches: outputs, learning, resume, determinism, NaN."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from fas import cli
from fas.config import load_params, method_config
from fas.models.sdnet import SDNet
from fas.train import resolve_device
from fas.training.inputs import IMAGENET, Inputs
from fas.training.loop import Schedule, Trainer, video_metrics
from fas.training.methods import METHODS
from fas.training.splits import Split, model_feeds
from fas import loader
from test_train_cache import write_tiny_cache

SDNET_ID = "toy.p1.f1.sdnet.full.s0"


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_params(tmp_path, epochs=3, **sdnet):
    """The repository's params with a toy grid and a tiny demo preset."""
    params = load_params()
    params["preset"] = "demo"
    for name in ("toy", "a", "b"):  # the toy datasets' roots are never read: caches are given
        params["datasets"][name] = {"root": f"data/{name}"}
    params["grid"] = [
        {"name": "toy", "dataset": "toy", "method": "sdnet", "variants": ["full", "rgb", "static_only"],
         "protocols": {"p1": [1], "p3": [1], "nodev": [1]}},
        {"name": "toy_motion", "dataset": "cross", "method": "motion",
         "variants": ["full", "cnn_only"], "protocols": {"a_to_b": [1]}},
    ]
    params["presets"]["demo"]["sdnet"].update(
        {"width": 4, "input_size": 16, "epochs": epochs, "batch_size": 8, "lr": 0.01,
         "lr_milestones": [2], "early_stopping_patience": None, **sdnet})
    params["presets"]["demo"]["motion"].update(
        {"vgg_width": 4, "input_size": 32, "clip_len": 8, "lstm_hidden": 8, "epochs": epochs,
         "batch_size": 4, "lr": 0.01})
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def videos(prefix: str, n: int) -> list[tuple[str, bool]]:
    return [(f"{prefix}{i:02d}_v", i % 2 == 0) for i in range(n)]


def write_protocols(index_root, dataset, rows):
    frame = pd.DataFrame(rows, columns=["dataset", "protocol", "fold", "split", "video_id",
                                        "modalities", "max_frames"])
    frame["fold"] = frame["fold"].astype("int32")
    frame["max_frames"] = frame["max_frames"].astype("Int32")
    (index_root / dataset).mkdir(parents=True, exist_ok=True)
    frame.to_parquet(index_root / dataset / "protocols.parquet", index=False)


@pytest.fixture
def toy(tmp_path):
    """A three-modality toy dataset with protocols p1 (train/dev/test), p3 (cross-modality), nodev."""
    split_videos = {"train": videos("tr", 8), "dev": videos("dv", 4), "test": videos("te", 4)}
    write_tiny_cache(tmp_path / "cache", "toy", [v for vs in split_videos.values() for v in vs])
    rows = []
    for split, vs in split_videos.items():
        for video_id, _ in vs:
            rows.append(("toy", "p1", 1, split, video_id, None, None))
            rows.append(("toy", "p3", 1, split, video_id,
                         ["depth", "ir"] if split == "test" else ["color"], None))
            if split != "dev":
                rows.append(("toy", "nodev", 1, split, video_id, None, None))
    write_protocols(tmp_path / "index", "toy", rows)
    return tmp_path


def train(root, experiment, params, out="out", scratch="scratch"):
    return cli.main(["train", "--experiment", experiment, "--params", str(params), "--device", "cpu",
                     "--index-root", str(root / "index"), "--cache-root", str(root / "cache"),
                     "--out", str(root / out), "--scratch", str(root / scratch),
                     "--checkpoint-interval", "0"])


def outputs(root, experiment, out="out"):
    folder = root / out / experiment.replace(".f", "/f").replace(".s", "/s").replace(".", "/")
    return folder


def test_sdnet_run_writes_outputs_and_learns_the_toy_data(toy):
    # 8 epochs: the toy split is ranked from epoch 1, calibrated at 0.5 from about epoch 4
    params = tiny_params(toy, epochs=8, lr_milestones=[6], batch_size=4)
    assert train(toy, SDNET_ID, params) == 0
    folder = toy / "out/toy/p1/f1/sdnet/full/s0"
    scores = pd.read_parquet(folder / "scores.parquet")
    assert list(scores.columns) == ["video_id", "split", "is_live", "pai", "score", "n_frames"]
    assert scores.groupby("split").size().to_dict() == {"dev": 4, "test": 4, "train": 8}
    assert (scores["n_frames"] == 2).all() and scores["score"].between(0, 1).all()
    frames = pd.read_parquet(folder / "frame_scores.parquet")
    assert len(frames) == 2 * len(scores) and "index" in frames
    history = pd.read_csv(folder / "history.csv")
    assert list(history["epoch"]) == list(range(1, 9))
    assert {"lr", "train/loss", "dev/eer", "dev/acer"} <= set(history.columns)
    receipt = json.loads((folder / "receipt.json").read_text())
    assert "run_id" in receipt and len(receipt["run_key"]) == 16
    assert receipt["selected_by"].startswith("lowest dev EER")
    assert (toy / "scratch/checkpoints/toy/p1/f1/sdnet/full/s0/last.pt").is_file()
    assert history["dev/acer"].min() <= 0.25 and history["dev/eer"].min() <= 0.25
    test = video_metrics(frames[frames["split"] == "test"])
    assert test["acer"] <= 0.25 and test["eer"] <= 0.25


def test_patience_stops_after_the_selected_epoch_and_a_rerun_trains_no_further(toy):
    params = tiny_params(toy, epochs=8, lr_milestones=[6], batch_size=4, early_stopping_patience=1)
    folder = outputs(toy, SDNET_ID)
    assert train(toy, SDNET_ID, params) == 0
    history = pd.read_csv(folder / "history.csv")
    receipt = json.loads((folder / "receipt.json").read_text())
    selected = receipt["selected_epoch"]
    assert len(history) == selected + 1 < 8  # the toy split is ranked within a few epochs
    assert receipt["selected_by"].endswith(f"stopped after epoch {selected + 1}, 1 without a better one")
    best = history.loc[history["epoch"] == selected, ["dev/eer", "dev/acer"]].iloc[0]
    later = history.loc[history["epoch"] == selected + 1, ["dev/eer", "dev/acer"]].iloc[0]
    assert tuple(later) >= tuple(best)
    before = {name: (folder / name).read_bytes() for name in ("history.csv", "scores.parquet")}
    assert train(toy, SDNET_ID, params) == 0  # resumes from the checkpoint saved at the stop
    assert before == {name: (folder / name).read_bytes() for name in before}


def run_killed_and_resumed(root, experiment, params, monkeypatch) -> None:
    """Outputs `a` and `b` from two fresh runs, `c` from a run killed in epoch 3 and resumed."""
    assert train(root, experiment, params, out="a", scratch="sa") == 0
    assert train(root, experiment, params, out="b", scratch="sb") == 0  # same seed, fresh start
    original = Trainer.train_epoch

    def killed_in_epoch_3(self, dataset, epoch):
        if epoch == 2:
            raise KeyboardInterrupt("simulated kill")
        return original(self, dataset, epoch)

    monkeypatch.setattr(Trainer, "train_epoch", killed_in_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        train(root, experiment, params, out="c", scratch="sc")
    assert not (outputs(root, experiment, "c") / "scores.parquet").exists()
    monkeypatch.setattr(Trainer, "train_epoch", original)
    assert train(root, experiment, params, out="c", scratch="sc") == 0


@pytest.mark.slow
def test_resume_after_a_kill_and_reruns_give_identical_scores(toy, monkeypatch):
    params = tiny_params(toy)
    run_killed_and_resumed(toy, SDNET_ID, params, monkeypatch)
    runs = [pd.read_parquet(outputs(toy, SDNET_ID, o) / "frame_scores.parquet") for o in "abc"]
    pd.testing.assert_frame_equal(runs[0], runs[1])
    pd.testing.assert_frame_equal(runs[0], runs[2])
    history = pd.read_csv(outputs(toy, SDNET_ID, "c") / "history.csv")
    assert list(history["epoch"]) == [1, 2, 3]
    for name in ("scores.parquet", "history.csv"):  # byte-identical, as DVC expects
        assert len({(outputs(toy, SDNET_ID, o) / name).read_bytes() for o in "abc"}) == 1, name


def test_nan_loss_stops_the_run_without_scores(toy, monkeypatch, capsys):
    params = tiny_params(toy)
    monkeypatch.setattr(SDNet, "loss", lambda self, logits, is_live: logits["whole"].sum() * float("nan"))
    assert train(toy, SDNET_ID, params) == 1
    assert "diverged at epoch 1, step 1: loss nan" in capsys.readouterr().err
    assert not (outputs(toy, SDNET_ID) / "scores.parquet").exists()


def test_cross_modality_protocol_tests_the_trained_branch_on_other_modalities(toy):
    params = tiny_params(toy, epochs=1)
    assert train(toy, "toy.p3.f1.sdnet.full.s0", params) == 0
    folder = toy / "out/toy/p3/f1/sdnet/full/s0"
    frames = pd.read_parquet(folder / "frame_scores.parquet")
    assert set(frames[frames["split"] == "test"]["modalities"]) == {"depth", "ir"}
    assert set(frames[frames["split"] == "train"]["modalities"]) == {"color"}
    scores = pd.read_parquet(folder / "scores.parquet")
    assert (scores[scores["split"] == "test"]["n_frames"] == 4).all()  # 2 windows x 2 modalities
    assert json.loads((folder / "receipt.json").read_text())["train_modalities"] == ["color"]


def test_protocol_without_dev_split_selects_the_last_epoch(toy):
    params = tiny_params(toy, epochs=1)
    assert train(toy, "toy.nodev.f1.sdnet.static_only.s0", params) == 0
    folder = toy / "out/toy/nodev/f1/sdnet/static_only/s0"
    receipt = json.loads((folder / "receipt.json").read_text())
    assert receipt["selected_by"].startswith("last epoch") and receipt["selected_epoch"] == 1
    assert set(pd.read_parquet(folder / "scores.parquet")["split"]) == {"train", "test"}


def test_motion_cross_dataset_run_reads_each_source_cache(tmp_path):
    write_tiny_cache(tmp_path / "cache", "toy_a", videos("a", 6))
    write_tiny_cache(tmp_path / "cache", "toy_b", videos("b", 6), seed=1)
    rows = ([("toy_a", "a_to_b", 1, "train", v, None, None) for v, _ in videos("a", 6)]
            + [("toy_b", "a_to_b", 1, "test", v, None, None) for v, _ in videos("b", 6)])
    write_protocols(tmp_path / "index", "cross", rows)
    params = tiny_params(tmp_path, epochs=2)
    assert train(tmp_path, "cross.a_to_b.f1.motion.full.s0", params) == 0
    scores = pd.read_parquet(tmp_path / "out/cross/a_to_b/f1/motion/full/s0/scores.parquet")
    assert scores.groupby("split").size().to_dict() == {"test": 6, "train": 6}
    assert (scores["n_frames"] == 2).all()  # two clips of 8 frames per video


def test_missing_protocol_table_is_a_clear_error(tmp_path, capsys):
    params = tiny_params(tmp_path)
    assert train(tmp_path, SDNET_ID, params) == 1
    error = capsys.readouterr().err.strip()
    assert "protocols.parquet: protocol table not found (`fas index toy` writes it)" in error
    assert len(error.splitlines()) == 1


@pytest.mark.parametrize("split, lost, message", [
    ("train", True, "the train split yields no live samples (0 live, 8 attack; 4 of its videos"),
    ("test", False, "the test split yields no attack samples (4 live, 0 attack; 2 of its videos"),
    ("dev", False, "the dev split yields no attack samples (4 live, 0 attack; 2 of its videos"),
])
def test_a_split_without_one_class_is_an_error_naming_experiment_and_split(
        tmp_path, capsys, split, lost, message):
    """Every video of one class failed preprocessing: nothing is trained or scored."""
    split_videos = {"train": videos("tr", 8), "dev": videos("dv", 4), "test": videos("te", 4)}
    cached = [(v, live) for name, vs in split_videos.items() for v, live in vs
              if not (name == split and live == lost)]
    write_tiny_cache(tmp_path / "cache", "toy", cached)
    write_protocols(tmp_path / "index", "toy", [("toy", "p1", 1, name, v, None, None)
                                                for name, vs in split_videos.items() for v, _ in vs])
    assert train(tmp_path, SDNET_ID, tiny_params(tmp_path)) == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert error[-1] == f"fas train: {SDNET_ID}: {message} are not in the cache, see the " \
                        "preprocessing failure reports)"
    assert not (outputs(tmp_path, SDNET_ID) / "scores.parquet").exists()


def test_one_batch_is_overfit(tmp_path):
    folder = write_tiny_cache(tmp_path, "toy", videos("v", 4))
    params = load_params(tiny_params(tmp_path))
    config = method_config(params, "sdnet", "full")
    torch.manual_seed(0)
    sdnet = METHODS["sdnet"]
    model = sdnet.build_model(config)
    augment = {**params["augment"], "rotation_deg": 0, "flip": False, "crop_scale": 1.0,
               "color_jitter": 0.0}
    inputs = Inputs(config["input_size"], augment, IMAGENET, torch.device("cpu"), False)
    trainer = Trainer(model, Schedule.from_config(config),
                      lambda batch, feed, train: sdnet.prepare(inputs, batch, feed, train),
                      {m: m for m in config["modalities"]}, 0, torch.device("cpu"))
    batch = next(iter(trainer.loader(loader.SDNetSamples(
        folder, [v for v, _ in videos("v", 4)], config["modalities"], shuffle=True, seed=0), 0)))
    labels = torch.as_tensor(batch["is_live"])
    losses = []
    for _ in range(25):
        loss = model.loss(trainer.forward(batch, trainer.feed, train=True), labels)
        trainer.optimizer.zero_grad()
        loss.backward()
        trainer.optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]


def test_feeds_follow_the_protocols_modalities():
    config = {"modalities": ["color", "depth", "ir"]}
    everything = {"train": Split("train"), "test": Split("test")}
    assert model_feeds(config["modalities"], everything) == (
        ["color", "depth", "ir"], {"train": [{"color": "color", "depth": "depth", "ir": "ir"}],
                                   "test": [{"color": "color", "depth": "depth", "ir": "ir"}]})
    listed = {"train": Split("train", modalities=["color", "depth", "ir"]),
              "test": Split("test", modalities=["color", "depth", "ir"])}
    assert model_feeds(["color"], listed)[1]["test"] == [{"color": "color"}]
    cross = {"train": Split("train", modalities=["depth"]), "test": Split("test", modalities=["color", "ir"])}
    assert model_feeds(config["modalities"], cross) == (
        ["depth"], {"train": [{"depth": "depth"}], "test": [{"depth": "color"}, {"depth": "ir"}]})
    with pytest.raises(ValueError, match="only a single-modality model can switch"):
        model_feeds(config["modalities"], {"train": Split("train", modalities=["color", "depth"]),
                                      "test": Split("test", modalities=["ir"])})
    with pytest.raises(ValueError, match="nothing to train on"):
        model_feeds(["color"], cross)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without a GPU")
def test_asking_for_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(RuntimeError, match="--device cuda"):
        resolve_device("cuda")
    assert resolve_device("auto").type == "cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_run_with_mixed_precision_learns(toy):
    params = tiny_params(toy, epochs=4, lr_milestones=[3])
    assert cli.main(["train", "--experiment", SDNET_ID, "--params", str(params), "--device", "cuda",
                     "--index-root", str(toy / "index"), "--cache-root", str(toy / "cache"),
                     "--out", str(toy / "gpu"), "--scratch", str(toy / "gpu_scratch")]) == 0
    frames = pd.read_parquet(outputs(toy, SDNET_ID, "gpu") / "frame_scores.parquet")
    assert json.loads((outputs(toy, SDNET_ID, "gpu") / "receipt.json").read_text())["device"] == "cuda"
    assert video_metrics(frames[frames["split"] == "test"])["eer"] <= 0.25


def test_dev_metrics_on_known_scores():
    def frame(live, score):
        return pd.DataFrame({"video_id": [f"v{i}" for i in range(len(live))], "is_live": live,
                             "score": score})

    separable = video_metrics(frame([True, True, False, False], [0.9, 0.8, 0.3, 0.1]))
    assert separable == {"eer": 0.0, "acer": 0.0}
    inverted = video_metrics(frame([True, True, False, False], [0.1, 0.2, 0.7, 0.9]))
    assert inverted == {"eer": 1.0, "acer": 1.0}
    # one attack above every live score: FAR 1/2 where FRR 0, and vice versa -> EER 0.5 by the midpoint
    mixed = video_metrics(frame([True, True, False, False], [0.6, 0.8, 0.7, 0.1]))
    assert mixed["eer"] == pytest.approx(0.5) and mixed["acer"] == pytest.approx(0.25)
    assert math.isnan(video_metrics(frame([True, True], [0.5, 0.6]))["eer"])


def test_checkpoint_interval_limits_saves_to_the_last_epoch(toy, monkeypatch):
    saved = []
    real_save = torch.save
    monkeypatch.setattr(torch, "save", lambda obj, path: (saved.append(obj), real_save(obj, path)))
    params = tiny_params(toy, epochs=2)
    common = ["train", "--experiment", "toy.nodev.f1.sdnet.static_only.s0", "--params", str(params),
              "--device", "cpu", "--index-root", str(toy / "index"), "--cache-root", str(toy / "cache"),
              "--out", str(toy / "out"), "--scratch", str(toy / "scratch")]
    assert cli.main(common + ["--checkpoint-interval", "1000"]) == 0
    checkpoints = [obj["epoch"] for obj in saved if isinstance(obj, dict) and "fingerprint" in obj]
    assert checkpoints == [1]  # only after the last epoch (0-based)


def test_a_single_sample_remainder_batch_is_skipped(toy):
    params = tiny_params(toy, epochs=1, batch_size=5)  # 16 train samples: 5 + 5 + 5 + 1
    assert train(toy, "toy.nodev.f1.sdnet.static_only.s0", params) == 0


def test_videos_missing_from_the_cache_are_left_out_and_noted(toy):
    protocols = pd.read_parquet(toy / "index/toy/protocols.parquet")
    ghost = protocols[(protocols["protocol"] == "nodev") & (protocols["split"] == "train")].head(1)
    ghost = ghost.assign(video_id="ghost_v")
    pd.concat([protocols, ghost]).to_parquet(toy / "index/toy/protocols.parquet", index=False)
    params = tiny_params(toy, epochs=1)
    assert train(toy, "toy.nodev.f1.sdnet.static_only.s0", params) == 0
    folder = toy / "out/toy/nodev/f1/sdnet/static_only/s0"
    notes = json.loads((folder / "receipt.json").read_text())["notes"]
    assert len(notes) == 1 and "train: 1 of 9 video(s) not in the cache" in notes[0] and "ghost_v" in notes[0]
    assert "ghost_v" not in set(pd.read_parquet(folder / "scores.parquet")["video_id"])


def test_cross_dataset_sources_cropped_at_different_sizes_share_a_batch():
    from torch.utils.data import DataLoader

    from fas.training.samples import RoundRobin

    class Source(torch.utils.data.IterableDataset):
        def __init__(self, crop):
            self.crop = crop

        def set_epoch(self, epoch):
            pass

        def __iter__(self):
            for index in range(2):
                yield {"video_id": f"v{self.crop}", "index": index, "is_live": True,
                       "frames": torch.full((4, 3, self.crop, self.crop), 200, dtype=torch.uint8)}

    batch = next(iter(DataLoader(RoundRobin([Source(224), Source(112)], 32), batch_size=4)))
    assert batch["frames"].shape == (4, 4, 3, 32, 32)
    assert batch["frames"].dtype == torch.uint8 and (batch["frames"] == 200).all()


def paper_params(tmp_path, method: str, batch_size: int) -> "Path":
    """The paper preset at its width and input size, one short epoch on the toy caches."""
    path = tiny_params(tmp_path)
    params = yaml.safe_load(path.read_text())
    params["preset"] = "paper"
    paper = params["presets"]["paper"][method]
    paper.update({"epochs": 1, "batch_size": batch_size, "lr_milestones": [], "workers": 0})
    params["grid"][0]["variants"] += ["static_rgb", "static_nhf"]
    path.write_text(yaml.safe_dump(params))
    return path


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["full", "static_only", "static_rgb", "static_nhf"])
def test_paper_preset_sdnet_trains_and_scores(tmp_path, variant):
    videos_of = {"train": videos("tr", 2), "dev": videos("dv", 2), "test": videos("te", 2)}
    write_tiny_cache(tmp_path / "cache", "toy", [v for vs in videos_of.values() for v in vs])
    write_protocols(tmp_path / "index", "toy", [("toy", "p1", 1, split, v, None, None)
                                                for split, vs in videos_of.items() for v, _ in vs])
    params = paper_params(tmp_path, "sdnet", batch_size=2)  # 2 videos x 2 windows: two steps
    experiment = f"toy.p1.f1.sdnet.{variant}.s0"
    assert train(tmp_path, experiment, params) == 0
    folder = outputs(tmp_path, experiment)
    config = json.loads((folder / "config.json").read_text())["method"]
    assert (config["width"], config["input_size"]) == (64, 112)
    history = pd.read_csv(folder / "history.csv")
    assert math.isfinite(history["train/loss"].iloc[0])
    scores = pd.read_parquet(folder / "scores.parquet")
    assert len(scores) == 6 and scores["score"].between(0, 1).all()
    assert pd.read_parquet(folder / "frame_scores.parquet").shape[0] == 12


@pytest.mark.slow
def test_paper_preset_motion_trains_and_scores(tmp_path):
    write_tiny_cache(tmp_path / "cache", "a", videos("a", 2))
    write_tiny_cache(tmp_path / "cache", "b", videos("b", 2), seed=1)  # a live and an attack
    rows = ([("a", "a_to_b", 1, "train", v, None, None) for v, _ in videos("a", 2)]
            + [("b", "a_to_b", 1, "test", v, None, None) for v, _ in videos("b", 2)])
    write_protocols(tmp_path / "index", "cross", rows)
    params = paper_params(tmp_path, "motion", batch_size=1)  # 2 videos x one 16-frame clip: two steps
    experiment = "cross.a_to_b.f1.motion.full.s0"
    assert train(tmp_path, experiment, params) == 0
    folder = outputs(tmp_path, experiment)
    config = json.loads((folder / "config.json").read_text())["method"]
    assert (config["vgg_width"], config["input_size"], config["clip_len"]) == (64, 224, 16)
    assert math.isfinite(pd.read_csv(folder / "history.csv")["train/loss"].iloc[0])
    assert pd.read_parquet(folder / "scores.parquet")["score"].between(0, 1).all()


class _RunsCodeWhenUnpickled:
    """What a hostile checkpoint could hold: unpickling it creates a file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


@pytest.mark.parametrize("content", ["hostile", "truncated"])
def test_a_checkpoint_is_read_without_running_code_and_a_bad_one_is_ignored(toy, capsys, content):
    params = tiny_params(toy, epochs=1)
    checkpoint = toy / "scratch/checkpoints/toy/p1/f1/sdnet/full/s0/last.pt"
    checkpoint.parent.mkdir(parents=True)
    marker = toy / "code-ran"
    if content == "hostile":
        torch.save({"fingerprint": "any", "trainer": _RunsCodeWhenUnpickled(marker)}, checkpoint)
    else:
        assert train(toy, SDNET_ID, params) == 0
        checkpoint.write_bytes(checkpoint.read_bytes()[:1000])
    capsys.readouterr()
    assert train(toy, SDNET_ID, params) == 0 and not marker.exists()
    assert f"ignoring {checkpoint}: not a readable checkpoint" in capsys.readouterr().err
