"""A collated loader batch -> model inputs on the device: resize, augment, normalise."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import torch
import torch.nn.functional as F


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


class Augment:
    """The `augment:` section (REFERENCE section 1: rotation, flip, crop, colour distortion), batched.

    Per sample, one warp covers torchvision's RandomResizedCrop (square, area
    `crop_scale`..1), RandomHorizontalFlip and RandomRotation (+-`rotation_deg`,
    about the crop's centre; beyond the frame zeros), applied to every image of the
    sample by a single `grid_sample` over the batch; ColorJitter scales brightness,
    contrast and saturation by factors in 1 +- `color_jitter` (in that order).
    Written here rather than taken from torchvision.transforms.v2, which
    transforms one sample at a time and whose import costs each training job about
    2 s of CPU; draws come from torch's seeded generator.
    """

    def __init__(self, settings: Mapping):
        self.crop_scale = float(settings["crop_scale"])
        self.flip = bool(settings["flip"])
        self.rotation = math.radians(float(settings["rotation_deg"]))
        self.jitter = float(settings["color_jitter"])

    def _uniform(self, n: int, low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(n)

    def geometric(self, images: torch.Tensor) -> torch.Tensor:
        """[B, N, 3, S, S] -> the same, one random crop-flip-rotation per sample."""
        b, n = images.shape[:2]
        side = self._uniform(b, self.crop_scale, 1.0).sqrt()  # crop side, fraction of the image
        centre = (torch.rand(b, 2) * 2 - 1) * (1 - side)[:, None]
        mirror = torch.where(torch.rand(b) < 0.5, -1.0, 1.0) if self.flip else torch.ones(b)
        angle = self._uniform(b, -self.rotation, self.rotation)
        cos, sin = torch.cos(angle), torch.sin(angle)
        # output (x, y) -> rotated back, mirrored, scaled into the crop, shifted to its centre
        theta = torch.stack([torch.stack([side * mirror * cos, side * mirror * sin, centre[:, 0]], 1),
                             torch.stack([-side * sin, side * cos, centre[:, 1]], 1)], 1)
        flat = images.flatten(0, 1)
        grid = F.affine_grid(theta.repeat_interleave(n, 0).to(flat), list(flat.shape), align_corners=False)
        return F.grid_sample(flat, grid, mode="bilinear", padding_mode="zeros",
                             align_corners=False).view_as(images)

    def color(self, images: torch.Tensor) -> torch.Tensor:
        """[B, ..., 3, H, W] in [0, 1] -> jittered, one set of factors per sample."""
        b = images.shape[0]
        shape = (b,) + (1,) * (images.dim() - 1)
        j = self.jitter
        brightness, contrast, saturation = (self._uniform(b, max(0.0, 1 - j), 1 + j).view(shape)
                                            for _ in range(3))
        weights = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1).to(images)
        out = (images * brightness.to(images)).clamp_(0, 1)
        grey = (out * weights).sum(-3, keepdim=True)
        out = ((out - grey.mean((-2, -1), keepdim=True)) * contrast.to(images)
               + grey.mean((-2, -1), keepdim=True)).clamp_(0, 1)
        grey = (out * weights).sum(-3, keepdim=True)
        return ((out - grey) * saturation.to(images) + grey).clamp_(0, 1)


class Inputs:
    """Turns a collated loader batch into model inputs on the device.

    `augment` is the params `augment:` section, or None for no augmentation. A
    `feed` maps each model modality to the data modality given to it (CeFA
    protocol 3 tests the trained branch on another modality).
    """

    def __init__(self, input_size: int, augment: Mapping | None, normalization: Normalization,
                 device: torch.device, channels_last: bool):
        self.size = int(input_size)
        self.augment = Augment(augment) if augment is not None else None
        self.device = device
        self.channels_last = channels_last
        self.mean = torch.tensor(normalization.mean).view(3, 1, 1)
        self.std = torch.tensor(normalization.std).view(3, 1, 1)
        self.scale = normalization.scale

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
        if train and self.augment is not None:
            stacked = self.augment.geometric(stacked)
            if ("static", "color") in keys:  # colour distortion of the colour frame only
                i = keys.index(("static", "color"))
                stacked = torch.cat([stacked[:, :i], self.augment.color(stacked[:, i:i + 1]),
                                     stacked[:, i + 1:]], dim=1)
        out = {"static": {}, "dynamic": {}}
        for i, (kind, m) in enumerate(keys):
            out[kind][m] = self._normalize(stacked[:, i])
        return out["static"], out["dynamic"]

    def clips(self, batch: dict, train: bool) -> torch.Tensor:
        """Clips [B, T, 3, S, S] (magnified, when they are, by `fas magnify` over the whole run)."""
        frames = self._resize(self._float(batch["frames"]))
        if train and self.augment is not None:
            frames = self.augment.color(self.augment.geometric(frames))
        return self._normalize(frames)
