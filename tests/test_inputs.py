"""Batched training augmentation (`fas.training.inputs.Augment`) and the input pipeline."""

import torch

from fas.training.inputs import IMAGENET, Augment, Inputs

NONE = {"crop_scale": 1.0, "flip": False, "rotation_deg": 0, "color_jitter": 0.0}


def images(b=4, n=3, size=16, seed=0):
    return torch.rand(b, n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def test_augmentation_off_is_the_identity():
    x = images()
    augment = Augment(NONE)
    assert torch.allclose(augment.geometric(x), x, atol=1e-5)
    assert torch.allclose(augment.color(x), x, atol=1e-6)


def test_flip_mirrors_whole_samples():
    torch.manual_seed(1)
    x = images(b=16)
    out = Augment({**NONE, "flip": True}).geometric(x)
    flipped = [torch.allclose(o, s.flip(-1), atol=1e-5) for o, s in zip(out, x)]
    kept = [torch.allclose(o, s, atol=1e-5) for o, s in zip(out, x)]
    assert all(f != k for f, k in zip(flipped, kept)) and any(flipped) and any(kept)


def test_one_warp_per_sample_for_all_its_images():
    torch.manual_seed(2)
    one = torch.rand(8, 1, 3, 16, 16)
    out = Augment({"crop_scale": 0.5, "flip": True, "rotation_deg": 30, "color_jitter": 0.0}
                  ).geometric(one.expand(8, 3, 3, 16, 16).contiguous())
    assert torch.allclose(out[:, 0], out[:, 1]) and torch.allclose(out[:, 0], out[:, 2])
    assert not torch.allclose(out[0, 0], out[1, 0])


def test_rotation_stays_within_its_range():
    torch.manual_seed(3)
    x = torch.zeros(64, 1, 1, 33, 33)
    x[..., 16, 16:] = 1.0  # a horizontal ray from the centre to the right
    out = Augment({**NONE, "rotation_deg": 20}).geometric(x)
    ys, xs = torch.meshgrid(torch.arange(33.0), torch.arange(33.0), indexing="ij")
    weight = out[:, 0, 0]
    angle = torch.atan2(-((ys - 16) * weight).sum((1, 2)), ((xs - 16) * weight).sum((1, 2)))
    assert angle.abs().max() <= torch.deg2rad(torch.tensor(21.0))
    assert angle.abs().max() >= torch.deg2rad(torch.tensor(10.0))


def test_colour_jitter_changes_only_the_colour_frame():
    torch.manual_seed(4)
    inputs = Inputs(16, {**NONE, "color_jitter": 0.4}, IMAGENET, torch.device("cpu"), False)
    batch = {kind: {m: (torch.rand(4, 3, 16, 16) * 255).to(torch.uint8) for m in ("color", "depth")}
             for kind in ("static", "dynamic")}
    feed = {"color": "color", "depth": "depth"}
    plain = Inputs(16, None, IMAGENET, torch.device("cpu"), False).static_dynamic(batch, feed, False)
    static, dynamic = inputs.static_dynamic(batch, feed, True)
    assert not torch.allclose(static["color"], plain[0]["color"])
    assert torch.allclose(static["depth"], plain[0]["depth"], atol=1e-5)
    assert torch.allclose(dynamic["color"], plain[1]["color"], atol=1e-5)
