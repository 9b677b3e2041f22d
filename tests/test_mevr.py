"""MEVR: the network's parts, the contrastive loss, class-balanced batches, and `fas train` runs."""

from __future__ import annotations

import math
from collections import Counter

import pandas as pd
import pytest
import torch
import yaml
from torch.utils.data import DataLoader

from fas import loader, report
from fas.grid import expand
from fas.config import load_params, method_config
from fas.models.mevr import (ConvGRU, MEVRNet, MotionExcitation, contrast_targets,
                             supervised_contrastive)
from fas.training.inputs import NORMALIZATIONS, Inputs
from fas.training.loop import Trainer
from fas.training.methods import METHODS
from fas.training.samples import BalancedBatches, balanced_split
from fas.training.splits import Split
from test_train import (outputs, run_killed_and_resumed, tiny_params, train, videos,
                        write_protocols)
from test_train_cache import write_tiny_cache

PARAMS = load_params()
MEVR_ID = "toy.p1.f1.mevr.full.s0"

pytestmark = pytest.mark.usefixtures("one_thread")


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def tiny(variant: str = "full") -> dict:
    config = method_config(PARAMS, "mevr", variant)
    config.update({"vgg_width": 4, "input_size": 32, "clip_len": 4, "vrn_hidden": 8,
                   "projection_dim": 4})
    return config


# ----------------------------------------------------------------------------- network


def test_parameter_counts_at_paper_width():
    model = MEVRNet(vgg_width=64, hidden=512, projection_dim=128, mem_stages=(2, 3, 4, 5))
    assert count(model.features) == 14_714_688  # torchvision's vgg16().features
    # per MEM with C channels and r = C/16: reduce C*r, depthwise 3x3 r*9, expand r*C + C
    # (C, r) = (128, 8), (256, 16), (512, 32) twice: 2,248 + 8,592 + 2 x 33,568
    assert {s: count(m) for s, m in model.mem.items()} == {"2": 2_248, "3": 8_592, "4": 33_568,
                                                          "5": 33_568}
    assert count(model.recurrent) == 4 * 512 * (512 + 512) + 2 * 4 * 512  # LSTM 512 -> 512
    assert count(model.attention) == 512 * 512 + 512 + 512
    assert count(model.head) == 513
    assert count(model.projection) == 512 * 512 + 512 + 512 * 128 + 128
    assert count(model) == 17_485_913
    no_mem = MEVRNet(vgg_width=64, hidden=512, projection_dim=128, mem_stages=())
    assert count(model) - count(no_mem) == 77_976
    convgru = MEVRNet(vgg_width=64, hidden=512, projection_dim=128, vrn="convgru")
    # gates (C + H) -> 2H and candidate (C + H) -> H, 3x3 convs with biases
    assert count(convgru.recurrent) == 1024 * 1024 * 9 + 1024 + 1024 * 512 * 9 + 512


@pytest.mark.parametrize("variant", sorted(PARAMS["methods"]["mevr"]["variants"]))
def test_every_variant_gives_clip_logits_and_embeddings(variant):
    torch.manual_seed(0)
    config = tiny(variant)
    model = METHODS["mevr"].build_model(config)
    out = model(torch.rand(3, 4, 3, 32, 32))
    assert out["clip"].shape == (3,)
    if config["contrastive_weight"] > 0:
        assert out["embedding"].shape == (3, 4)
        torch.testing.assert_close(out["embedding"].norm(dim=1), torch.ones(3))
    else:
        assert "embedding" not in out
    loss = model.loss(out, torch.tensor([True, False, False]), ["live", "print", "replay"])
    loss.backward()
    assert torch.isfinite(loss)
    assert len(model.mem) == (0 if variant == "no_mem" else 4)


def test_convgru_returns_a_state_per_frame_of_the_hidden_size():
    torch.manual_seed(0)
    states = ConvGRU(6, 5)(torch.rand(2, 3, 6, 4, 4))
    assert states.shape == (2, 3, 5, 4, 4)
    assert not torch.allclose(states[:, 0], states[:, 2])


def test_mem_is_the_identity_at_initialisation():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 32, 6, 6)
    assert torch.equal(MotionExcitation(32)(x), x)
    with_mem = MEVRNet(vgg_width=4, hidden=8, projection_dim=4, mem_stages=(1, 2, 3, 4, 5))
    plain = MEVRNet(vgg_width=4, hidden=8, projection_dim=4, mem_stages=())
    plain.load_state_dict({k: v for k, v in with_mem.state_dict().items() if not k.startswith("mem.")})
    clips = torch.rand(2, 4, 3, 32, 32)
    assert torch.equal(with_mem.feature_maps(clips), plain.feature_maps(clips))


def test_mem_excites_frame_t_from_the_motion_to_frame_t_plus_1():
    torch.manual_seed(0)
    mem = MotionExcitation(32)
    torch.nn.init.normal_(mem.expand.weight)  # a trained gate
    x = torch.randn(1, 4, 32, 6, 6)
    moved = x.clone()
    moved[:, 2] += torch.randn(32, 6, 6)  # frame 2 changes
    before, after = mem(x), mem(moved)
    assert not torch.allclose(before[:, 1], after[:, 1])  # frame 1's motion reads frame 2
    assert torch.equal(before[:, 0], after[:, 0])  # frame 0 reads frames 0 and 1 only
    assert torch.equal(before[:, 3], after[:, 3])  # the last frame has no motion
    gate = torch.sigmoid(mem.expand.bias) - 0.5  # zero motion: the gate is the bias alone
    torch.testing.assert_close(after[:, 3], x[:, 3] * (1 + gate.view(32, 1, 1)))


def test_bad_mevr_settings_are_rejected():
    with pytest.raises(ValueError, match="mem_stages must be VGG-16 stages 1-5"):
        MEVRNet(4, 8, 4, mem_stages=(0, 6))
    with pytest.raises(ValueError, match="vrn must be one of"):
        MEVRNet(4, 8, 4, vrn="transformer")
    with pytest.raises(ValueError, match="contrast_classes must be one of"):
        MEVRNet(4, 8, 4, contrast_classes="subjects")
    with pytest.raises(ValueError, match="input_size must be at least 32"):
        METHODS["mevr"].build_model({**tiny(), "input_size": 16})


def test_pretrained_vgg_face_loads_into_the_trunk_and_the_mems_keep_its_output(tmp_path):
    reference = MEVRNet(vgg_width=8, hidden=8, projection_dim=4, mem_stages=())
    path = tmp_path / "vgg_face.pth"
    torch.save({k: v for k, v in reference.state_dict().items() if k.startswith("features.")}, path)
    model = METHODS["mevr"].build_model({**tiny(), "vgg_width": 8, "vgg_batch_norm": False},
                                        {"vgg_face": str(path)})
    clips = torch.rand(1, 4, 3, 32, 32)
    assert torch.equal(model.feature_maps(clips), reference.feature_maps(clips))


# ----------------------------------------------------------------------------- loss


def test_supervised_contrastive_loss_against_a_hand_computed_case():
    z = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    # t = 0.5: z1.z2/t = 1.2, z1.z3/t = 0, z2.z3/t = 1.6. Anchors 1 and 2 are each other's
    # positive, anchor 3 has none and is left out:
    # -(1/2) [(1.2 - log(e^1.2 + e^0)) + (1.2 - log(e^1.2 + e^1.6))] = 0.588149
    loss = supervised_contrastive(z, torch.tensor([0, 0, 1]), 0.5)
    assert loss.item() == pytest.approx(0.588149, abs=1e-6)
    # live_only: only anchor 1 (the one live sample with a live positive) counts
    only = supervised_contrastive(z, torch.tensor([1, 1, 0]), 0.5, torch.tensor([True, False, False]))
    assert only.item() == pytest.approx(-(1.2 - math.log(math.exp(1.2) + 1)), abs=1e-6)
    assert supervised_contrastive(z, torch.tensor([0, 1, 2]), 0.5).item() == 0.0


def test_contrast_classes_follow_the_variant():
    is_live = torch.tensor([True, True, False, False, False])
    pai = ["live", "live", "print", "replay", "print"]
    classes, anchors = contrast_targets(is_live, pai, "live_spoof")
    assert classes.tolist() == [1, 1, 0, 0, 0] and anchors.all()
    classes, anchors = contrast_targets(is_live, pai, "pai")
    assert classes[2] == classes[4] != classes[3] and classes[0] == classes[1] != classes[2]
    classes, anchors = contrast_targets(is_live, pai, "live_only")
    assert anchors.tolist() == [True, True, False, False, False]


def test_the_loss_is_bce_plus_the_weighted_contrastive_term():
    torch.manual_seed(0)
    model = MEVRNet(4, 8, 4, contrastive_weight=0.3, temperature=0.2)
    out = model(torch.rand(4, 4, 3, 32, 32))
    is_live = torch.tensor([True, True, False, False])
    bce = torch.nn.functional.binary_cross_entropy_with_logits(out["clip"], is_live.float())
    contrastive = supervised_contrastive(out["embedding"], is_live.long(), 0.2)
    torch.testing.assert_close(model.loss(out, is_live, None), bce + 0.3 * contrastive)


def test_one_batch_is_overfit(tmp_path):
    """8 clips (4 live, 4 attack): the BCE falls and the contrastive term reaches its floor,
    log 3 (each anchor's 3 positives together, the attacks far away).

    With the demo preset's network sizes, learning rate and gradient clipping: the
    tiny network of `tiny()` at a higher rate without clipping collapses within 60
    steps for some seeds (the SupCon spikes the demo preset clips).
    """
    demo = PARAMS["presets"]["demo"]["mevr"]
    folder = write_tiny_cache(tmp_path, "toy", videos("v", 4))
    clips = loader.ClipSamples(folder, None, 8, shuffle=False, seed=0)
    batch = next(iter(DataLoader(clips, batch_size=8)))
    config = {**tiny(), "clip_len": 8, "vrn_hidden": demo["vrn_hidden"],
              "projection_dim": demo["projection_dim"]}
    torch.manual_seed(0)
    method = METHODS["mevr"]
    model = method.build_model(config)
    inputs = Inputs(32, None, NORMALIZATIONS[demo["input_normalization"]], torch.device("cpu"), False)
    frames = method.prepare(inputs, batch, {}, True)
    labels = torch.as_tensor(batch["is_live"])
    optimizer = torch.optim.Adam(model.parameters(), lr=demo["lr"])
    first = None
    for _ in range(60):
        out = model(*frames)
        bce = torch.nn.functional.binary_cross_entropy_with_logits(out["clip"], labels.float())
        loss = model.loss(out, labels, list(batch["pai"]))
        first = first if first is not None else bce.item()
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), demo["grad_clip_norm"])
        optimizer.step()
    assert bce.item() < 0.25 * first
    assert loss.item() - bce.item() == pytest.approx(math.log(3), abs=0.01)
    assert ((out["clip"] > 0) == labels).all()


# ----------------------------------------------------------------------------- batches


class Stream(torch.utils.data.IterableDataset):
    """A class's samples in an order fixed by the epoch, like the cache loaders."""

    def __init__(self, name: str, n: int):
        self.name, self.n, self.epoch = name, n, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.epoch))
        for i in order.tolist():
            yield {"cls": self.name, "i": i}


def epoch_batches(balanced: BalancedBatches, epoch: int, batch_size: int) -> list[list[tuple]]:
    balanced.set_epoch(epoch)
    samples = [(s["cls"], s["i"]) for s in balanced]
    assert len(samples) % batch_size == 0
    return [samples[i: i + batch_size] for i in range(0, len(samples), batch_size)]


def test_balanced_batches_hold_every_class_and_see_the_largest_class_once():
    balanced = BalancedBatches({"a": Stream("a", 3), "b": Stream("b", 11), "c": Stream("c", 5)}, 8)
    batches = epoch_batches(balanced, 0, 8)
    for batch in batches:
        counts = Counter(cls for cls, _ in batch)
        assert set(counts) == {"a", "b", "c"} and min(counts.values()) >= 2
        assert sorted(counts.values()) == [2, 3, 3]  # 8 = 3 x 2 + 2, the extra ones in turn
    b_seen = [i for batch in batches for cls, i in batch if cls == "b"]
    assert sorted(b_seen[:11]) == list(range(11))  # b's first pass is complete
    assert len(b_seen) - 11 < 3  # and the epoch ends in the batch that completes it
    a_seen = [i for batch in batches for cls, i in batch if cls == "a"]
    assert sorted(a_seen[:3]) == sorted(a_seen[3:6]) == [0, 1, 2]  # a is oversampled pass by pass


def test_balanced_batches_depend_on_the_epoch_only():
    def make():
        return BalancedBatches({"live": Stream("live", 4), "attack": Stream("attack", 9)}, 6)

    first = make()
    run = [epoch_batches(first, e, 6) for e in range(3)]
    resumed = make()  # a run resumed at epoch 2 sees the batches of an uninterrupted one
    assert epoch_batches(resumed, 2, 6) == run[2]
    assert run[0] != run[1]


def test_balanced_batches_need_room_for_their_share_of_each_class():
    with pytest.raises(ValueError, match=r"batch_size 5 cannot hold 2 sample\(s\) of each of the 3"):
        BalancedBatches({c: Stream(c, 2) for c in "abc"}, 5)
    one_each = BalancedBatches({"live": Stream("live", 2), "attack": Stream("attack", 3)}, 2, per_class=1)
    assert len(list(one_each)) == 6  # one of each class per batch (a BCE loss): 3 batches of 2
    assert METHODS["sdnet"].per_class == 1 and METHODS["mevr"].per_class == 2
    empty = BalancedBatches({"live": Stream("live", 0), "attack": Stream("attack", 4)}, 4)
    with pytest.raises(ValueError, match="no training samples of class live"):
        list(empty)


def test_balanced_split_of_a_cache_gives_balanced_loader_batches(tmp_path):
    pairs = [(f"v{i:02d}_x", i < 2) for i in range(8)]  # 2 live, 6 attack videos, 2 clips each
    folder = write_tiny_cache(tmp_path, "toy", pairs)
    split = Split("train", {"toy": [v for v, _ in pairs]})

    def open_part(part):
        return loader.ClipSamples(folder, part.videos["toy"], 8, shuffle=True, seed=3)

    balanced = balanced_split(open_part(split), split, "is_live", 4, open_part)
    assert sorted(balanced.parts) == ["is_live=False", "is_live=True"]
    balanced.set_epoch(1)
    batches = list(DataLoader(balanced, batch_size=4))
    assert len(batches) == 6  # 12 attack clips, two per batch
    assert all(batch["is_live"].sum() == 2 for batch in batches)
    attack = [(v, i) for b in batches for v, i, live in zip(b["video_id"], b["index"].tolist(),
                                                              b["is_live"].tolist()) if not live]
    assert len(set(attack)) == 12


# ----------------------------------------------------------------------------- fas train


def mevr_params(tmp_path, epochs=3, variants=("full",)):
    """The toy grid of the training tests with a MEVR block and a tiny MEVR preset."""
    path = tiny_params(tmp_path, epochs=epochs)
    params = yaml.safe_load(path.read_text())
    params["grid"].append({"name": "toy_mevr", "dataset": "toy", "method": "mevr",
                           "variants": list(variants), "protocols": {"p1": [1]}})
    params["presets"]["demo"]["mevr"].update(
        {"vgg_width": 4, "input_size": 32, "clip_len": 8, "vrn_hidden": 8, "projection_dim": 4,
         "epochs": epochs, "batch_size": 4, "lr": 0.003, "lr_milestones": []})
    path.write_text(yaml.safe_dump(params))
    return path


@pytest.fixture
def toy(tmp_path):
    """A toy dataset whose p1 train split holds 3 live and 5 attack videos (two clips each)."""
    split_videos = {"train": [(f"tr{i:02d}_v", i < 3) for i in range(8)],
                    "dev": videos("dv", 4), "test": videos("te", 4)}
    write_tiny_cache(tmp_path / "cache", "toy", [v for vs in split_videos.values() for v in vs])
    write_protocols(tmp_path / "index", "toy", [("toy", "p1", 1, split, v, None, None)
                                                for split, vs in split_videos.items() for v, _ in vs])
    return tmp_path


def test_fas_train_mevr_learns_the_toy_data_with_balanced_batches(toy, monkeypatch):
    seen = []
    original = Trainer.train_epoch

    def recording(self, dataset, epoch):
        seen.append(type(dataset).__name__)
        return original(self, dataset, epoch)

    monkeypatch.setattr(Trainer, "train_epoch", recording)
    params = mevr_params(toy, variants=("full", "supcon_pai"))
    assert train(toy, MEVR_ID, params) == 0
    assert seen == ["BalancedBatches"] * 3
    scores = pd.read_parquet(outputs(toy, MEVR_ID) / "scores.parquet")
    test = scores[scores["split"] == "test"]
    assert test[test["is_live"]]["score"].min() > test[~test["is_live"]]["score"].max()
    history = pd.read_csv(outputs(toy, MEVR_ID) / "history.csv")
    assert history["train/loss"].iloc[-1] < history["train/loss"].iloc[0]
    assert train(toy, "toy.p1.f1.mevr.supcon_pai.s0", params) == 0  # the loss reads the PAI


@pytest.mark.slow
def test_mevr_resumes_after_a_kill_and_reruns_give_identical_scores(toy, monkeypatch):
    params = mevr_params(toy)
    run_killed_and_resumed(toy, MEVR_ID, params, monkeypatch)
    assert list(pd.read_csv(outputs(toy, MEVR_ID, "c") / "history.csv")["epoch"]) == [1, 2, 3]
    for name in ("frame_scores.parquet", "scores.parquet", "history.csv"):
        assert len({(outputs(toy, MEVR_ID, o) / name).read_bytes() for o in "abc"}) == 1, name

def test_mevr_tables_cover_the_grid_and_print_no_published_numbers():
    specs = [spec for spec in report.TABLES if spec.name.startswith("mevr_")]
    assert {spec.name for spec in specs} == {"mevr_intra", "mevr_oulu", "mevr_cross", "mevr_ablation"}
    references = report.load_references()
    assert all(spec.source == "mevr_note" for spec in specs)
    assert "no primary source" in references["sources"]["mevr_note"]["citation"]
    assert not any(key[0] == "mevr_note" or key[4] == "mevr" for key in references["index"])
    cells = {(e.dataset, e.protocol, e.method, e.variant) for e in expand(PARAMS)}
    rows = [(g.dataset, g.protocol, g.method, g.variant) for spec in specs for g in spec.groups]
    assert set(rows) <= cells  # every row has its experiments in the grid
    assert {e.variant for e in expand(PARAMS) if e.method == "mevr"} == {
        "full", "no_mem", "ce_only", "supcon_pai", "live_only"}


def test_gradients_are_clipped_to_the_presets_norm(toy, monkeypatch):
    clipped = []
    real = torch.nn.utils.clip_grad_norm_

    def recording(parameters, max_norm):
        parameters = list(parameters)
        clipped.append((max_norm, float(real(parameters, max_norm))))
        return clipped[-1][1]

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", recording)
    params = mevr_params(toy, epochs=1)
    config = yaml.safe_load(params.read_text())
    config["presets"]["demo"]["mevr"]["grad_clip_norm"] = 0.5
    params.write_text(yaml.safe_dump(config))
    assert train(toy, MEVR_ID, params) == 0
    assert len(clipped) == 5 and {norm for norm, _ in clipped} == {0.5}  # 10 attack clips, 2 a batch


def test_a_batch_too_small_for_the_classes_is_a_one_line_error(toy, capsys):
    params = mevr_params(toy, epochs=1, variants=("supcon_pai",))
    config = yaml.safe_load(params.read_text())
    config["presets"]["demo"]["mevr"]["batch_size"] = 3  # live and print: 4 needed
    params.write_text(yaml.safe_dump(config))
    assert train(toy, "toy.p1.f1.mevr.supcon_pai.s0", params) == 1
    err = capsys.readouterr().err
    assert "batch_size 3 cannot hold 2 sample(s) of each of the 2 classes" in err
    assert "Traceback" not in err


def test_sdnet_balances_live_and_attack_unless_told_not_to():
    """SD-Net's batches balance is_live by default (params methods.sdnet.balanced_batches);
    motion keeps its plain shuffled batches."""
    from fas.config import load_params
    from fas.training.methods import METHODS

    sdnet = dict(load_params()["methods"]["sdnet"])
    assert METHODS["sdnet"].balance(sdnet) == "is_live"
    assert METHODS["sdnet"].balance({**sdnet, "balanced_batches": False}) is None
    assert METHODS["motion"].balance(load_params()["methods"]["motion"]) is None
