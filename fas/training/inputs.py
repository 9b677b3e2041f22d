"""A collated loader batch -> model inputs on the device: resize, augment, normalise."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch
import torch.nn.functional as F
from torchvision import tv_tensors
from torchvision.transforms import v2



@dataclass(frozen=True)
class Normalization:
    """Per-channel (pixel / scale - mean) / std, on RGB pixels in 0..255."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    scale: float = 255.0  # 255: pixels in [0, 1] first (torchvision), 1: raw 0..255


# The statistics torchvision's ImageNet-pretrained trunks expect.
IMAGENET = Normalization(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
# VGG-Face (Parkhi et al.): 0..255 RGB minus the training-set mean, no division
# (REFERENCE section 2; the mean of the released Caffe/MatConvNet models, in RGB order).
VGG_FACE = Normalization(mean=(129.186279296875, 104.76238250732422, 93.59396362304688),
                         std=(1.0, 1.0, 1.0), scale=1.0)
NORMALIZATIONS = {"imagenet": IMAGENET, "vgg_face": VGG_FACE}


class Inputs:
    """Turns a collated loader batch into model inputs on the device.

    `augment` is the params `augment:` section, or None for no augmentation. A
    `feed` maps each model modality to the data modality given to it (CeFA
    protocol 3 tests the trained branch on another modality).
    """

    def __init__(self, input_size: int, augment: Mapping | None, normalization: Normalization,
                 device: torch.device, channels_last: bool):
        self.size = int(input_size)
        self.augments = augment is not None
        self.device = device
        self.channels_last = channels_last
        self.mean = torch.tensor(normalization.mean).view(3, 1, 1)
        self.std = torch.tensor(normalization.std).view(3, 1, 1)
        self.scale = normalization.scale
        if augment is not None:
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
        """[0, 1] images -> the method's normalisation."""
        out = (images * (255.0 / self.scale) - self.mean.to(images)) / self.std.to(images)
        if self.channels_last and out.dim() == 4:
            out = out.contiguous(memory_format=torch.channels_last)
        return out

    def static_dynamic(self, batch: dict, feed: dict[str, str], train: bool):
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

    def clips(self, batch: dict, train: bool) -> torch.Tensor:
        """Clips [B, T, 3, S, S] (magnified, when they are, by `fas magnify` over the whole run)."""
        frames = self._resize(self._float(batch["frames"]))
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
