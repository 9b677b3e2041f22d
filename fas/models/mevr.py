"""MEVR: motion-enhanced video representation (our construction; docs/models.md, "MEVR").

The design follows the abstract of the MotionEnhancement note; no primary
source with code or full text is public. Per frame, the VGG-16 trunk of
`motion` with a Motion Enhancement Module (MEM) after chosen stages: a motion
excitation between adjacent frames' feature maps (TEA, arXiv 2004.01398; the
short-term motion block of Wang et al., arXiv 1811.05118). A Video
Representation Network (VRN: an LSTM, or a ConvGRU over the last feature
maps, with the temporal attention of `motion`) gives the clip embedding; a
linear head scores it and a projection head feeds a supervised contrastive
loss (Khosla et al. 2020, arXiv 2004.11362) beside the binary cross-entropy.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from fas.models.motion import TemporalAttention, vgg16_features

VRN = ("lstm", "convgru")
CONTRAST_CLASSES = ("live_spoof", "pai", "live_only")
VGG_STAGES = 5


class MotionExcitation(nn.Module):
    """MEM on one stage's feature maps [B, T, C, H, W] (TEA's motion excitation).

    Reduce to C/`reduction` channels (1x1 conv), motion M_t = K * X_{t+1} - X_t
    with K a 3x3 depthwise conv (M = 0 for the last frame), global average
    pooling, expand back to C (1x1 conv), gate A = sigmoid - 1/2 (TEA's code
    centring), output X + X * A. The expansion starts at zero, so A = 0 and
    the module is the identity until it learns: a pretrained trunk starts unchanged.
    """

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        reduced = max(1, channels // reduction)
        self.reduce = nn.Conv2d(channels, reduced, kernel_size=1, bias=False)
        self.transform = nn.Conv2d(reduced, reduced, kernel_size=3, padding=1, groups=reduced,
                                   bias=False)
        self.expand = nn.Conv2d(reduced, channels, kernel_size=1)
        nn.init.zeros_(self.expand.weight)
        nn.init.zeros_(self.expand.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[:2]
        reduced = self.reduce(x.flatten(0, 1))
        following = self.transform(reduced).unflatten(0, (b, t))[:, 1:]
        motion = following - reduced.unflatten(0, (b, t))[:, :-1]
        motion = F.pad(motion, (0, 0, 0, 0, 0, 0, 0, 1))  # zero motion for the last frame
        pooled = motion.mean(dim=(-2, -1), keepdim=True)
        gate = torch.sigmoid(self.expand(pooled.flatten(0, 1))) - 0.5
        return x + x * gate.unflatten(0, (b, t))


class ConvGRU(nn.Module):
    """A convolutional GRU (Ballas et al. 2016) over [B, T, C, H, W]; returns every state."""

    def __init__(self, channels: int, hidden: int, kernel_size: int = 3):
        super().__init__()
        self.hidden = hidden
        self.gates = nn.Conv2d(channels + hidden, 2 * hidden, kernel_size, padding=kernel_size // 2)
        self.candidate = nn.Conv2d(channels + hidden, hidden, kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _, height, width = x.shape
        state = x.new_zeros(b, self.hidden, height, width)
        states = []
        for step in range(t):
            update, reset = torch.sigmoid(self.gates(torch.cat([x[:, step], state], 1))).chunk(2, 1)
            candidate = torch.tanh(self.candidate(torch.cat([x[:, step], reset * state], 1)))
            state = (1 - update) * state + update * candidate
            states.append(state)
        return torch.stack(states, dim=1)


def stage_channels(width: int) -> list[int]:
    """Output channels of VGG-16's five stages at base width `width`."""
    return [c * width // 64 for c in (64, 128, 256, 512, 512)]


class MEVRNet(nn.Module):
    """VGG-16 trunk with MEMs, a VRN with temporal attention, a clip head and a projection head."""

    score_key = "clip"

    def __init__(self, vgg_width: int = 64, hidden: int = 512, projection_dim: int = 128,
                 mem_stages: Sequence[int] = (2, 3, 4, 5), mem_reduction: int = 16,
                 vrn: str = "lstm", contrastive_weight: float = 1.0, temperature: float = 0.1,
                 contrast_classes: str = "live_spoof", batch_norm: bool = False):
        super().__init__()
        if vrn not in VRN:
            raise ValueError(f"mevr vrn must be one of {VRN}, got {vrn!r}")
        if contrast_classes not in CONTRAST_CLASSES:
            raise ValueError(f"mevr contrast_classes must be one of {CONTRAST_CLASSES}, "
                             f"got {contrast_classes!r}")
        unknown = sorted(set(mem_stages) - set(range(1, VGG_STAGES + 1)))
        if unknown:
            raise ValueError(f"mevr mem_stages must be VGG-16 stages 1-5, got {unknown}")
        self.vrn, self.contrast_classes = vrn, contrast_classes
        self.contrastive_weight, self.temperature = float(contrastive_weight), float(temperature)
        self.features = vgg16_features(vgg_width, batch_norm)
        channels = stage_channels(vgg_width)
        self.mem = nn.ModuleDict({str(s): MotionExcitation(channels[s - 1], mem_reduction)
                                  for s in sorted(set(mem_stages))})
        if vrn == "lstm":
            self.recurrent = nn.LSTM(channels[-1], hidden, batch_first=True)
        else:
            self.recurrent = ConvGRU(channels[-1], hidden)
        self.attention = TemporalAttention(hidden)
        self.head = nn.Linear(hidden, 1)
        self.projection = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
                                        nn.Linear(hidden, projection_dim))

    def feature_maps(self, frames: torch.Tensor) -> torch.Tensor:
        """[B, T, 3, H, W] -> the last stage's maps [B, T, C, h, w], MEMs after their stages."""
        b, t = frames.shape[:2]
        x, stage = frames.flatten(0, 1), 0
        for layer in self.features:
            x = layer(x)
            if isinstance(layer, nn.MaxPool2d):  # a VGG stage ends with its max-pool
                stage += 1
                if str(stage) in self.mem:
                    x = self.mem[str(stage)](x.unflatten(0, (b, t))).flatten(0, 1)
        return x.unflatten(0, (b, t))

    def embed(self, frames: torch.Tensor) -> torch.Tensor:
        """The clip embedding [B, hidden]: the VRN's states weighted by temporal attention."""
        maps = self.feature_maps(frames)
        if self.vrn == "lstm":
            states, _ = self.recurrent(maps.mean(dim=(-2, -1)))
        else:
            states = self.recurrent(maps).mean(dim=(-2, -1))
        return self.attention.pool(states)

    def forward(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        """`clip` logit [B] (the score) and, when the contrastive loss is on, the
        L2-normalised projection `embedding` [B, projection_dim]."""
        summary = self.embed(frames)
        out = {"clip": self.head(summary).squeeze(-1)}
        if self.contrastive_weight > 0:
            out["embedding"] = F.normalize(self.projection(summary), dim=-1)
        return out

    def loss(self, logits: dict[str, torch.Tensor], is_live: torch.Tensor,
             pai: Sequence[str] | None = None) -> torch.Tensor:
        """BCE on the clip + contrastive_weight x SupCon on the embeddings."""
        target = is_live.to(logits["clip"].dtype)
        loss = F.binary_cross_entropy_with_logits(logits["clip"], target)
        if self.contrastive_weight == 0:
            return loss
        classes, anchors = contrast_targets(is_live, pai, self.contrast_classes)
        return loss + self.contrastive_weight * supervised_contrastive(
            logits["embedding"], classes.to(is_live.device), self.temperature,
            anchors.to(is_live.device))


def contrast_targets(is_live: torch.Tensor, pai: Sequence[str] | None,
                     mode: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(class per sample, which samples are anchors) for the contrastive loss.

    live_spoof: live vs attack, every sample an anchor; pai: the attack
    species as classes (live is one of them); live_only: only live samples are
    anchors, so only live clips are pulled together (attacks are negatives).
    """
    if mode == "pai":
        if pai is None:
            raise ValueError("contrast_classes pai needs the batch's PAI species")
        _, codes = np.unique(np.asarray(list(pai), dtype=str), return_inverse=True)
        classes = torch.as_tensor(codes.reshape(-1), dtype=torch.long)
    else:
        classes = is_live.long().cpu()
    anchors = is_live.bool().cpu() if mode == "live_only" else torch.ones(len(classes), dtype=torch.bool)
    return classes, anchors


def supervised_contrastive(embeddings: torch.Tensor, classes: torch.Tensor, temperature: float,
                           anchors: torch.Tensor | None = None) -> torch.Tensor:
    """Khosla et al.'s L^sup_out on L2-normalised embeddings [N, D].

    For anchor i with positives P(i) (same class, not i):
    -1/|P(i)| sum_p log(exp(z_i.z_p / t) / sum_{a != i} exp(z_i.z_a / t)),
    averaged over the anchors that have a positive (0 when none has).
    """
    n = len(embeddings)
    itself = torch.eye(n, dtype=torch.bool, device=embeddings.device)
    similarity = (embeddings @ embeddings.T / temperature).masked_fill(itself, float("-inf"))
    log_prob = similarity - torch.logsumexp(similarity, dim=1, keepdim=True)
    positives = (classes[:, None] == classes[None, :]) & ~itself
    if anchors is not None:
        positives &= anchors[:, None]
    counts = positives.sum(dim=1)
    valid = counts > 0
    if not valid.any():
        return embeddings.sum() * 0.0
    per_anchor = log_prob.masked_fill(~positives, 0.0).sum(dim=1)[valid] / counts[valid]
    return -per_anchor.mean()
