"""The reproduced methods' networks, built from a resolved method config.

Each builder gives an `nn.Module` whose forward returns a dict of logits
(P(live) after a sigmoid), with `.loss(logits, is_live)` and `.score_key`
naming the logit that scores a sample. Pretrained weights come only from
local files named in params.yaml (`pretrained:`); nothing is ever downloaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import torch
from torch import nn

from fas.models.mevr import MEVRNet
from fas.models.motion import MotionNet
from fas.models.sdnet import HalfwayFusionNet, SDNet


def build_sdnet(config: Mapping, pretrained: Mapping, modalities: list[str]) -> nn.Module:
    """SD-Net on `modalities` (the variant's, or fewer: CeFA protocol 3 trains one)."""
    if config["fusion"] == "halfway":
        model = HalfwayFusionNet(modalities, config["branches"], width=config["width"])
        trunks = [*model.stems.values(), *model.trunks.values()]
    else:
        model = SDNet(modalities, config["branches"], width=config["width"], fusion=config["fusion"],
                      backward_feeding=config["backward_feeding"], loss_terms=config["loss_terms"],
                      shared_from_static_dynamic=config["shared_from_static_dynamic"])
        trunks = [trunk for net in model.nets.values() for trunk in net.trunks.values()]
        trunks += [model.shared] if model.shared is not None else []
    if pretrained["resnet18"]:
        state = load_state_file(pretrained["resnet18"], "pretrained.resnet18")
        for trunk in trunks:
            load_matching(trunk, state, "pretrained.resnet18", pretrained["resnet18"])
    return model


def build_motion(config: Mapping, pretrained: Mapping, modalities: list[str]) -> MotionNet:
    """MotionEnhancement on the colour stream (`modalities` is always ["color"])."""
    check_vgg(config, pretrained, "motion")
    model = MotionNet(config["vgg_width"], config["lstm_hidden"], config["temporal"],
                      config["aux_frame_loss"], config["vgg_batch_norm"])
    load_vgg_face(model, pretrained)
    return model


def build_mevr(config: Mapping, pretrained: Mapping, modalities: list[str]) -> MEVRNet:
    """MEVR on the colour stream; pretrained VGG-Face weights load into its trunk (the MEMs
    start as the identity, so the loaded trunk computes what it did)."""
    check_vgg(config, pretrained, "mevr")
    model = MEVRNet(config["vgg_width"], config["vrn_hidden"], config["projection_dim"],
                    config["mem_stages"], config["mem_reduction"], config["vrn"],
                    config["contrastive_weight"], config["temperature"], config["contrast_classes"],
                    config["vgg_batch_norm"])
    load_vgg_face(model, pretrained)
    return model


def check_vgg(config: Mapping, pretrained: Mapping, method: str) -> None:
    """Settings a VGG-16 trunk cannot take: inputs too small, VGG-Face weights into BatchNorm."""
    if int(config["input_size"]) < 32:
        raise ValueError(f"{method} input_size must be at least 32 (VGG-16 halves it five "
                         f"times), got {config['input_size']}")
    if pretrained["vgg_face"] and config["vgg_batch_norm"]:
        raise ValueError(f"{method}: pretrained.vgg_face weights have no BatchNorm; set "
                         f"vgg_batch_norm: false in the preset to load them")


def load_vgg_face(model: nn.Module, pretrained: Mapping) -> None:
    """The `pretrained.vgg_face` file (torchvision vgg16 keys) into the model's `features`."""
    if pretrained["vgg_face"]:
        state = load_state_file(pretrained["vgg_face"], "pretrained.vgg_face")
        load_matching(model, state, "pretrained.vgg_face", pretrained["vgg_face"],
                      prefix="features.")


def load_state_file(path: str | Path, name: str) -> dict[str, torch.Tensor]:
    """A state dict from a local file, with a clear error naming the parameter."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{name}: pretrained weights file {path} does not exist "
                                "(set it to null in params.yaml to train from scratch)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # any unpickling or format problem
        raise ValueError(f"{name}: {path} is not a readable torch state dict ({error})") from error
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{name}: {path} does not hold a state dict of tensors")
    return state


def load_matching(module: nn.Module, state: dict[str, torch.Tensor], name: str, path: str | Path,
                  prefix: str = "") -> None:
    """Copy every key of `module` whose name starts with `prefix` from `state`.

    Every such key must be present with the same shape: a file for another
    architecture or width is an error, never a silent partial load.
    """
    own = {k: v for k, v in module.state_dict().items() if k.startswith(prefix)}
    missing = sorted(k for k in own if k not in state)
    mismatched = sorted(k for k in own if k in state and state[k].shape != own[k].shape)
    if missing or mismatched:
        detail = (f"missing keys {missing[:5]}" if missing else
                  f"shape mismatch for {mismatched[:5]} (e.g. file {tuple(state[mismatched[0]].shape)} "
                  f"vs model {tuple(own[mismatched[0]].shape)}; pretrained weights need width 64)")
        raise ValueError(f"{name}: {path} does not match the model: {detail}")
    module.load_state_dict({k: state[k] for k in own}, strict=False)
