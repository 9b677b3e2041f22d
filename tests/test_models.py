"""SD-Net and MotionNet: torchvision-equal trunks, every variant runs, pretrained files checked."""

from __future__ import annotations

import pytest
import torch
import torchvision

from fas.config import load_params, method_config
from fas.training.methods import METHODS
from fas.models.motion import MotionNet, vgg16_features
from fas.models.sdnet import STAGES, HalfwayFusionNet, ResNetTrunk, SDNet

PARAMS = load_params()


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def tiny(method: str, variant: str) -> dict:
    config = method_config(PARAMS, method, variant)
    config.update({"width": 4, "input_size": 16} if method == "sdnet"
                  else {"vgg_width": 4, "input_size": 32, "lstm_hidden": 8, "clip_len": 4})
    return config


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def resnet18():
    return torchvision.models.resnet18(weights=None)


@pytest.fixture(scope="module")
def vgg16_features_reference():
    """torchvision's vgg16().features (built once: vgg16's classifier is slow to initialise)."""
    return torchvision.models.vgg16(weights=None).features


def test_every_sdnet_branch_at_width_64_has_torchvisions_resnet18_parameters(resnet18):
    model = SDNet(["color", "depth"], ["static", "dynamic", "static_dynamic"], width=64)
    reference = {k: v.shape for k, v in resnet18.state_dict().items()}
    trunk_params = count(resnet18) - count(resnet18.fc)
    for branch, trunk in model.nets["color"].trunks.items():
        own = trunk.state_dict()
        assert all(reference[k] == v.shape for k, v in own.items()), branch
        if branch == "static_dynamic":  # res2..res4 only: its input is the res1 sum
            expected = sum(count(getattr(resnet18, s)) for s in STAGES[1:])
        else:
            expected = trunk_params
        assert count(trunk) == expected, branch
    assert count(model.shared) == sum(count(getattr(resnet18, s)) for s in STAGES[1:])
    assert count(ResNetTrunk(64)) == 11_176_512


def test_vgg_trunk_at_width_64_equals_torchvision_vgg16_features(vgg16_features_reference):
    reference = vgg16_features_reference
    ours = vgg16_features(64)
    assert count(ours) == count(reference) == 14_714_688
    assert {k: v.shape for k, v in ours.state_dict().items()} == \
        {k: v.shape for k, v in reference.state_dict().items()}


def test_vgg_trunk_with_batch_norm_equals_torchvision_vgg16_bn_features():
    from torchvision.models.vgg import cfgs, make_layers

    reference = make_layers(cfgs["D"], batch_norm=True)  # vgg16_bn().features
    ours = vgg16_features(64, batch_norm=True)
    assert [type(m) for m in ours] == [type(m) for m in reference]
    assert {k: v.shape for k, v in ours.state_dict().items()} == \
        {k: v.shape for k, v in reference.state_dict().items()}


def test_vgg_face_weights_need_the_trunk_without_batch_norm(tmp_path, vgg16_features_reference):
    path = tmp_path / "vgg_face.pth"
    torch.save({f"features.{k}": v for k, v in vgg16_features_reference.state_dict().items()}, path)
    config = {**tiny("motion", "full"), "vgg_width": 64, "vgg_batch_norm": True}
    for method in ("motion", "mevr"):
        with pytest.raises(ValueError, match=f"{method}: pretrained.vgg_face weights have no BatchNorm"):
            METHODS[method].build_model({**method_config(PARAMS, method, "full"), **config},
                                        {"vgg_face": str(path)})


def test_only_the_demo_preset_puts_batch_norm_in_the_vgg_trunk():
    for preset, expected in (("demo", True), ("paper", False)):
        params = {**PARAMS, "preset": preset}
        for method in ("motion", "mevr"):
            assert method_config(params, method, "full")["vgg_batch_norm"] is expected, (preset, method)


def test_vgg_trunk_uses_torchvisions_initialisation():
    torch.manual_seed(0)
    first = vgg16_features(64)[0]
    assert first.weight.std().item() == pytest.approx((2 / (64 * 9)) ** 0.5, rel=0.1)  # fan_out
    assert not first.bias.any()


def test_trunk_forward_matches_torchvision_with_the_same_weights(resnet18):
    trunk = ResNetTrunk(64).eval()
    trunk.load_state_dict({k: v for k, v in resnet18.state_dict().items() if not k.startswith("fc")})
    x = torch.randn(1, 3, 64, 64)
    resnet18.eval()
    with torch.no_grad():
        expected = resnet18.layer4(resnet18.layer3(resnet18.layer2(resnet18.layer1(
            resnet18.maxpool(resnet18.relu(resnet18.bn1(resnet18.conv1(x))))))))
        ours = x
        ours = trunk.stem(ours)
        for stage in STAGES:
            ours = trunk.block(stage, ours)
    torch.testing.assert_close(ours, expected)


@pytest.mark.parametrize("variant", sorted(PARAMS["methods"]["sdnet"]["variants"]))
def test_sdnet_variant_forward_backward(variant):
    config = tiny("sdnet", variant)
    torch.manual_seed(0)
    model = METHODS["sdnet"].build_model(config)
    images = {m: torch.randn(2, 3, 16, 16) for m in config["modalities"]}
    logits = model(images, images)
    branches = [b for b in ("static", "dynamic", "static_dynamic") if b in config["branches"]]
    multimodal = len(config["modalities"]) > 1
    if config["fusion"] == "halfway":
        expected = {"whole"} | (set(branches) if len(branches) > 1 else set())
    else:
        expected = {f"{m}/{b}" for m in config["modalities"] for b in branches}
        if config["loss_terms"] == 4 and len(branches) > 1:
            expected |= {f"{m}/fused" for m in config["modalities"]}
        if multimodal:
            expected.add("whole")
    assert set(logits) == expected and model.score_key in logits
    assert all(v.shape == (2,) for v in logits.values())
    loss = model.loss(logits, torch.tensor([True, False]))
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None for p in model.parameters())  # no dead parameters
    if config["fusion"] != "halfway":  # a shared branch only where there is something to share
        assert (model.shared is not None) == (config["fusion"] == "psmm" and multimodal)


def test_single_modality_static_model_is_one_resnet18(resnet18):
    """WACV's single-modality rows: one ResNet-18 with one binary head, no shared branch."""
    model = SDNet(["color"], ["static"], width=64)
    assert model.shared is None and model.score_key == "color/static"
    assert count(model) == count(resnet18) - count(resnet18.fc) + 512 + 1
    logits = model({"color": torch.randn(2, 3, 32, 32)}, {})
    assert set(logits) == {"color/static"}


def test_halfway_fusion_concatenates_res1_and_shares_res2_to_res4(resnet18):
    """NHF (WACV Fig. 3): per-modality conv+res1, concatenation, 1x1 conv, one res2..res4."""
    model = HalfwayFusionNet(["color", "depth", "ir"], ["static"], width=64)
    stem_and_res1 = count(resnet18.conv1) + count(resnet18.bn1) + count(resnet18.layer1)
    res2_to_res4 = sum(count(getattr(resnet18, s)) for s in STAGES[1:])
    reduce = 3 * 64 * 64 + 2 * 64  # 1x1 conv without bias, then BatchNorm
    assert count(model) == 3 * stem_and_res1 + reduce + res2_to_res4 + 512 + 1
    images = {m: torch.randn(2, 3, 32, 32) for m in ("color", "depth", "ir")}
    assert set(model(images, {})) == {"whole"}
    depth_changed = {**images, "depth": torch.randn(2, 3, 32, 32)}
    model.eval()
    assert not torch.allclose(model(images, {})["whole"], model(depth_changed, {})["whole"])


def test_shared_branch_input_from_the_static_dynamic_branch_is_a_switch():
    torch.manual_seed(0)
    source = SDNet(["color", "depth"], ["static", "dynamic", "static_dynamic"], width=4)
    with_sd = SDNet(["color", "depth"], ["static", "dynamic", "static_dynamic"], width=4,
                    shared_from_static_dynamic=True)
    with_sd.load_state_dict(source.state_dict())
    source.eval(), with_sd.eval()
    images = {m: torch.randn(2, 3, 16, 16) for m in ("color", "depth")}
    assert not torch.allclose(source(images, images)["whole"], with_sd(images, images)["whole"])


@pytest.mark.parametrize("variant", sorted(PARAMS["methods"]["motion"]["variants"]))
def test_motion_variant_forward_backward(variant):
    config = tiny("motion", variant)
    config["aux_frame_loss"] = 0.5
    torch.manual_seed(0)
    model = METHODS["motion"].build_model(config)
    logits = model(torch.rand(2, 4, 3, 32, 32))
    assert logits["clip"].shape == (2,) and logits["frames"].shape == (2, 4)
    loss = model.loss(logits, torch.tensor([True, False]))
    loss.backward()
    assert torch.isfinite(loss)


def test_attention_weights_select_frames():
    torch.manual_seed(0)
    model = MotionNet(vgg_width=4, lstm_hidden=8, temporal="attention").eval()
    clips = torch.rand(1, 5, 3, 32, 32)
    base = model(clips)["clip"]
    last = model.attention[-1]
    with torch.no_grad():
        last.weight.mul_(50)  # sharper attention gives another summary
    assert not torch.allclose(model(clips)["clip"], base)


def test_bad_settings_are_rejected():
    with pytest.raises(ValueError, match="static_dynamic branch needs both"):
        SDNet(["color"], ["static", "static_dynamic"], width=4)
    with pytest.raises(ValueError, match="fusion must be"):
        SDNet(["color"], ["static"], width=4, fusion="sideways")
    with pytest.raises(ValueError, match="temporal must be"):
        MotionNet(4, 8, temporal="gru")
    with pytest.raises(ValueError, match="input_size must be at least 32"):
        METHODS["motion"].build_model({**tiny("motion", "full"), "input_size": 16})


def test_pretrained_resnet18_file_loads_into_every_trunk(tmp_path, resnet18):
    path = tmp_path / "resnet18.pth"
    torch.save(resnet18.state_dict(), path)
    config = {**method_config(PARAMS, "sdnet", "static_only"), "width": 64}
    model = METHODS["sdnet"].build_model(config, {"resnet18": str(path)}, modalities=["color", "ir"])
    torch.testing.assert_close(model.nets["color"].trunks["static"].conv1.weight, resnet18.conv1.weight)
    torch.testing.assert_close(model.shared.layer4[1].conv2.weight, resnet18.layer4[1].conv2.weight)
    halfway = METHODS["sdnet"].build_model({**config, "fusion": "halfway"}, {"resnet18": str(path)})
    torch.testing.assert_close(halfway.stems["depth_static"].layer1[0].conv1.weight,
                               resnet18.layer1[0].conv1.weight)
    torch.testing.assert_close(halfway.trunks["static"].layer3[0].conv1.weight,
                               resnet18.layer3[0].conv1.weight)


def test_pretrained_file_errors_name_the_parameter_and_the_file(tmp_path, resnet18):
    config = {**method_config(PARAMS, "sdnet", "static_only"), "width": 8}
    missing = tmp_path / "nope.pth"
    with pytest.raises(FileNotFoundError, match=r"pretrained.resnet18: .*nope.pth does not exist"):
        METHODS["sdnet"].build_model(config, {"resnet18": str(missing)}, modalities=["color"])
    path = tmp_path / "resnet18.pth"
    torch.save(resnet18.state_dict(), path)
    with pytest.raises(ValueError, match="shape mismatch .* need width 64"):
        METHODS["sdnet"].build_model(config, {"resnet18": str(path)}, modalities=["color"])
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="garbage.pth is not a readable torch state dict"):
        METHODS["sdnet"].build_model(config, {"resnet18": str(garbage)}, modalities=["color"])
    vgg = tmp_path / "vgg.pth"
    torch.save({"features.0.weight": torch.zeros(1)}, vgg)
    with pytest.raises(ValueError, match="pretrained.vgg_face: .*vgg.pth does not match the model"):
        METHODS["motion"].build_model({**tiny("motion", "full"), "vgg_batch_norm": False},
                                      {"vgg_face": str(vgg)})


def test_pretrained_vgg_face_file_loads_into_the_conv_trunk(tmp_path, vgg16_features_reference):
    reference = vgg16_features_reference
    path = tmp_path / "vgg_face.pth"
    torch.save({f"features.{k}": v for k, v in reference.state_dict().items()}, path)
    config = {**tiny("motion", "full"), "vgg_width": 64, "vgg_batch_norm": False}
    model = METHODS["motion"].build_model(config, {"vgg_face": str(path)})
    torch.testing.assert_close(model.features[28].weight, reference[28].weight)


def test_vgg_face_inputs_are_0_to_255_minus_the_vgg_face_mean():
    """A VGG-Face-style first layer sees exactly what converted VGG-Face weights expect."""
    from fas.training.inputs import NORMALIZATIONS, Inputs

    torch.manual_seed(0)
    first = torch.nn.Conv2d(3, 64, 3, padding=1)  # stands for VGG-Face's conv1_1
    clips = torch.randint(0, 256, (2, 4, 3, 32, 32), dtype=torch.uint8)
    inputs = Inputs(32, None, NORMALIZATIONS["vgg_face"], torch.device("cpu"), False)
    ours = first(inputs.clips({"frames": clips}, train=False).flatten(0, 1))
    mean = torch.tensor([129.186279296875, 104.76238250732422, 93.59396362304688]).view(1, 3, 1, 1)
    reference = first(clips.flatten(0, 1).double().float() - mean)  # Parkhi et al.'s preprocessing
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-3)
    imagenet = Inputs(32, None, NORMALIZATIONS["imagenet"], torch.device("cpu"), False)
    scale = (inputs.clips({"frames": clips}, False).std() / imagenet.clips({"frames": clips}, False).std())
    assert 40 < scale < 80  # ImageNet-normalised inputs are ~58x smaller: the bug this guards
    assert METHODS["motion"].name == "motion" and PARAMS["methods"]["motion"]["input_normalization"] == "vgg_face"
