"""MotionEnhancement CNN-LSTM (Tu et al. 2019; REFERENCE.md section 2).

A VGG-16-topology CNN (VGG-Face without its fully connected layers) turns each
frame into a feature vector (global average pooling of the last conv block),
an LSTM runs over the clip and temporal attention weights its hidden states
into the clip summary that feeds a binary classifier. Ablations replace the
attention by the last state or the mean, or drop the LSTM (CNN only).
"""

from __future__ import annotations

import torch
from torch import nn
TEMPORAL = ("attention", "last", "mean", "none")
# VGG-16's configuration "D" (torchvision.models.vgg.cfgs["D"]): channels at width 64, M = max-pool.
# Copied rather than imported: importing torchvision costs a training job about 2 s of CPU.
VGG16_D = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


def vgg16_features(width: int = 64, batch_norm: bool = False) -> nn.Sequential:
    """The VGG-16 conv trunk with base width `width` (64: torchvision's vgg16().features).

    Built layer by layer like torchvision's `make_layers`, so the module indices
    (`0`, `2`, ...) and, at width 64, every parameter shape match
    torchvision's vgg16 `features.*` keys; `batch_norm` puts a BatchNorm after
    every conv, as torchvision's vgg16_bn (its keys, then).
    """
    layers: list[nn.Module] = []
    channels = 3
    for entry in VGG16_D:
        if entry == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            out = int(entry) * width // 64
            layers.append(nn.Conv2d(channels, out, kernel_size=3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out))
            layers.append(nn.ReLU(inplace=True))
            channels = out
    for layer in layers:  # torchvision's VGG initialisation: without it 13 plain convs fade out
        if isinstance(layer, nn.Conv2d):
            nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(layer.bias)
    return nn.Sequential(*layers)


class TemporalAttention(nn.Sequential):
    """a_t = softmax_t(v^T tanh(W h_t + b)); `pool` gives the summary sum_t a_t h_t."""

    def __init__(self, hidden: int):
        super().__init__(nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, 1, bias=False))

    def pool(self, states: torch.Tensor) -> torch.Tensor:
        """[B, T, hidden] -> [B, hidden]."""
        weights = torch.softmax(self(states).squeeze(-1), dim=1)
        return (weights.unsqueeze(-1) * states).sum(dim=1)


class MotionNet(nn.Module):
    """Per-frame VGG-16 features, LSTM with temporal attention, clip-level logit."""

    def __init__(self, vgg_width: int = 64, lstm_hidden: int = 512, temporal: str = "attention",
                 aux_frame_loss: float = 0.0, batch_norm: bool = False):
        super().__init__()
        if temporal not in TEMPORAL:
            raise ValueError(f"motion temporal must be one of {TEMPORAL}, got {temporal!r}")
        self.temporal = temporal
        self.aux_frame_loss = float(aux_frame_loss)
        self.features = vgg16_features(vgg_width, batch_norm)
        feature_dim = vgg_width * 8
        self.frame_head = nn.Linear(feature_dim, 1)
        if temporal != "none":
            self.lstm = nn.LSTM(feature_dim, lstm_hidden, batch_first=True)
            self.head = nn.Linear(lstm_hidden, 1)
        if temporal == "attention":
            self.attention = TemporalAttention(lstm_hidden)

    score_key = "clip"

    def frame_features(self, frames: torch.Tensor) -> torch.Tensor:
        """[B, T, 3, H, W] -> [B, T, feature_dim]."""
        b, t = frames.shape[:2]
        x = self.features(frames.flatten(0, 1))
        return torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1).view(b, t, -1)

    def forward(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        """Logits: `clip` [B] (the score), and `frames` [B, T] where a frame loss uses them."""
        features = self.frame_features(frames)
        logits: dict[str, torch.Tensor] = {}
        if self.temporal == "none":
            frame_logits = self.frame_head(features).squeeze(-1)
            logits["frames"] = frame_logits
            logits["clip"] = frame_logits.mean(dim=1)
            return logits
        states, _ = self.lstm(features)
        if self.temporal == "attention":
            summary = self.attention.pool(states)
        elif self.temporal == "last":
            summary = states[:, -1]
        else:
            summary = states.mean(dim=1)
        logits["clip"] = self.head(summary).squeeze(-1)
        if self.aux_frame_loss > 0:
            logits["frames"] = self.frame_head(features).squeeze(-1)
        return logits

    def loss(self, logits: dict[str, torch.Tensor], is_live: torch.Tensor) -> torch.Tensor:
        """BCE on the clip, plus the weighted per-frame BCE (the CNN-only model: frames only)."""
        target = is_live.to(logits["clip"].dtype)
        bce = nn.functional.binary_cross_entropy_with_logits
        if self.temporal == "none":
            frames = logits["frames"]
            return bce(frames, target.unsqueeze(1).expand_as(frames))
        loss = bce(logits["clip"], target)
        if "frames" in logits:
            frames = logits["frames"]
            loss = loss + self.aux_frame_loss * bce(frames, target.unsqueeze(1).expand_as(frames))
        return loss
