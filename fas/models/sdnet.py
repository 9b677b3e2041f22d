"""SD-Net with partially shared multi-modal fusion (REFERENCE.md section 1).

Per modality a static branch (one frame), a dynamic branch (a dynamic image)
and a static-dynamic branch fed by the sum of the two res1 outputs, each on
ResNet-18 blocks (conv, res1..res4, global average pooling). Across modalities
a shared branch (ResNet-18 without conv and res1) receives the summed
modality features (forward feeding) and returns its output to the static and
dynamic branches (backward feeding). `HalfwayFusionNet` is the paper's
no-sharing baseline (NHF).
"""

from __future__ import annotations

import torch
from torch import nn

BRANCHES = ("static", "dynamic", "static_dynamic")
STAGES = ("layer1", "layer2", "layer3", "layer4")  # res1..res4 in the paper's terms


class ResNetTrunk(nn.Module):
    """ResNet-18 blocks with base width `width`; a subset of conv, res1..res4.

    Module names follow torchvision's resnet18 (`conv1`, `bn1`, `layer1`...),
    so a torchvision state dict loads into it directly, and at width 64 each
    block has exactly torchvision's parameters.
    """

    def __init__(self, width: int, stem: bool = True, stages: tuple[str, ...] = STAGES):
        super().__init__()
        self.stages = stages
        if stem:
            self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
            self.bn1 = nn.BatchNorm2d(width)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.has_stem = stem
        for i, name in enumerate(STAGES):
            planes, inplanes = width * 2 ** i, width * 2 ** max(i - 1, 0)
            if name in stages:
                setattr(self, name, _make_layer(inplanes, planes, stride=1 if i == 0 else 2))
        for module in self.modules():  # torchvision's initialisation
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.maxpool(self.relu(self.bn1(self.conv1(x))))

    def block(self, name: str, x: torch.Tensor) -> torch.Tensor:
        return getattr(self, name)(x)


def conv3x3(inplanes: int, planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(inplanes, planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(inplanes: int, planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(inplanes, planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """torchvision's ResNet BasicBlock: two 3x3 convolutions and the identity (or a projection).

    Written out with torchvision's module names, so its state dicts load and a test
    checks the outputs against torchvision's block: importing torchvision costs
    every training job about 2 s of CPU, more than a demo model's training.
    """

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


def _make_layer(inplanes: int, planes: int, stride: int, blocks: int = 2) -> nn.Sequential:
    """Two BasicBlocks, as torchvision's ResNet._make_layer builds for resnet18."""
    downsample = None
    if stride != 1 or inplanes != planes:
        downsample = nn.Sequential(conv1x1(inplanes, planes, stride), nn.BatchNorm2d(planes))
    layers = [BasicBlock(inplanes, planes, stride, downsample)]
    layers += [BasicBlock(planes, planes) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


def _pool(x: torch.Tensor) -> torch.Tensor:
    return torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)


class ModalityNet(nn.Module):
    """SD-Net inside one modality: static, dynamic and static-dynamic branches."""

    def __init__(self, width: int, branches: tuple[str, ...], fused_term: bool):
        super().__init__()
        unknown = set(branches) - set(BRANCHES)
        if unknown or not branches:
            raise ValueError(f"sdnet branches must be a non-empty subset of {BRANCHES}, got {branches}")
        if "static_dynamic" in branches and not {"static", "dynamic"} <= set(branches):
            raise ValueError("the static_dynamic branch needs both the static and dynamic branches")
        self.branches = tuple(b for b in BRANCHES if b in branches)
        self.trunks = nn.ModuleDict({
            b: ResNetTrunk(width, stem=b != "static_dynamic",
                           stages=STAGES[1:] if b == "static_dynamic" else STAGES)
            for b in self.branches})
        self.heads = nn.ModuleDict({b: nn.Linear(width * 8, 1) for b in self.branches})
        # L_fused on the summed branch features; with one branch it would repeat that branch's loss
        self.fused_head = nn.Linear(width * 8, 1) if fused_term and len(self.branches) > 1 else None


FUSIONS = ("psmm", "halfway", "late")


class SDNet(nn.Module):
    """SD-Net per modality with partially shared fusion (PSMM) or late fusion.

    Forward feeding: S~^t = sum_m X^t_m + S^t feeds shared block t+1 (S^1 = 0);
    X^t_m is the sum of the modality's static and dynamic branch outputs at
    block t (and of its static-dynamic branch from block 2 on when
    `shared_from_static_dynamic`). Backward feeding: the static and dynamic
    branches of every modality receive X^t_{m,b} + S^t as input of their
    block t+1 (t = 2, 3). `late`: no shared branch, the modalities' features
    are summed at the end. A single modality has nothing to share: it is
    SD-Net inside that modality (one ResNet-18 with a single branch), scored
    by its fused logit (or its only branch).
    """

    def __init__(self, modalities: list[str], branches: list[str], width: int = 64,
                 fusion: str = "psmm", backward_feeding: bool = True, loss_terms: int = 4,
                 shared_from_static_dynamic: bool = False):
        super().__init__()
        if fusion not in ("psmm", "late"):
            raise ValueError(f"sdnet fusion must be 'psmm' or 'late' here ('halfway' is "
                             f"HalfwayFusionNet), got {fusion!r}")
        if loss_terms not in (3, 4):
            raise ValueError(f"sdnet loss_terms must be 3 or 4, got {loss_terms!r}")
        if not modalities:
            raise ValueError("sdnet needs at least one modality")
        self.modalities = tuple(modalities)
        multimodal = len(self.modalities) > 1
        self.fusion = fusion if multimodal else "late"
        self.backward_feeding = backward_feeding and self.fusion == "psmm"
        self.shared_from_static_dynamic = shared_from_static_dynamic
        self.loss_terms = loss_terms
        self.nets = nn.ModuleDict({m: ModalityNet(width, tuple(branches), loss_terms == 4) for m in modalities})
        self.shared = (ResNetTrunk(width, stem=False, stages=STAGES[1:])
                       if self.fusion == "psmm" else None)
        net = next(iter(self.nets.values()))
        if multimodal or (net.fused_head is None and len(net.branches) > 1):
            self.whole_head = nn.Linear(width * 8, 1)
            self.score_key = "whole"
        else:  # one modality: its fused logit, or its only branch, is the score
            self.whole_head = None
            self.score_key = f"{self.modalities[0]}/" + (
                "fused" if net.fused_head is not None else net.branches[0])

    def forward(self, static: dict[str, torch.Tensor],
                dynamic: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Logits (P(live) after a sigmoid) of every loss term; `score_key` names the score."""
        inputs = {"static": static, "dynamic": dynamic}
        # res1 of every branch with a stem; the static-dynamic branch starts from their sum
        state: dict[str, dict[str, torch.Tensor]] = {}
        for m, net in self.nets.items():
            state[m] = {b: net.trunks[b].block("layer1", net.trunks[b].stem(inputs[b][m]))
                        for b in net.branches if b != "static_dynamic"}
            if "static_dynamic" in net.branches:
                state[m]["static_dynamic"] = state[m]["static"] + state[m]["dynamic"]
        shared = None  # S^t, the output of shared block t; S^1 = 0
        for t, name in enumerate(STAGES[1:], start=1):  # block t+1 = res2..res4
            fed_back = shared if self.backward_feeding and t >= 2 else None
            if self.shared is not None:
                summed = sum(self._modality_sum(state[m], t) for m in self.modalities)
                shared = self.shared.block(name, summed if shared is None else summed + shared)
            for m, net in self.nets.items():
                for b in net.branches:
                    x = state[m][b]
                    if fed_back is not None and b != "static_dynamic":
                        x = x + fed_back
                    state[m][b] = net.trunks[b].block(name, x)
        logits: dict[str, torch.Tensor] = {}
        whole = _pool(shared) if shared is not None else 0
        for m, net in self.nets.items():
            features = {b: _pool(state[m][b]) for b in net.branches}
            for b, f in features.items():
                logits[f"{m}/{b}"] = net.heads[b](f).squeeze(1)
            fused = sum(features.values())
            if net.fused_head is not None:
                logits[f"{m}/fused"] = net.fused_head(fused).squeeze(1)
            whole = whole + fused
        if self.whole_head is not None:
            logits["whole"] = self.whole_head(whole).squeeze(1)
        return logits

    def loss(self, logits: dict[str, torch.Tensor], is_live: torch.Tensor) -> torch.Tensor:
        """L_whole + sum over modalities of L_s + L_d + L_sd (+ L_fused)."""
        return _bce_sum(logits, is_live)

    def _modality_sum(self, branch_state: dict[str, torch.Tensor], t: int) -> torch.Tensor:
        """X^t_m: what the modality feeds the shared branch at block t.

        The static and dynamic branch outputs; the static-dynamic branch only when
        `shared_from_static_dynamic`, and never at t = 1 (it has no res1 of its own:
        its input is the static + dynamic res1 sum, which would count twice).
        """
        return sum(x for b, x in branch_state.items()
                   if b != "static_dynamic" or (self.shared_from_static_dynamic and t > 1))


class HalfwayFusionNet(nn.Module):
    """The no-sharing baseline (NHF, WACV Fig. 3; CASIA-SURF section IV-A): halfway fusion.

    Per modality and branch, conv and res1; per branch the modalities' res1
    outputs are concatenated, reduced by a 1x1 convolution and go through one
    res2..res4 (the static-dynamic branch from the static + dynamic res1 sums).
    Each branch has a loss when there are several; `whole` (on the summed
    branch features) is the score.
    """

    def __init__(self, modalities: list[str], branches: list[str], width: int = 64):
        super().__init__()
        if not modalities:
            raise ValueError("sdnet needs at least one modality")
        probe = ModalityNet(width, tuple(branches), fused_term=False)  # validates the branches
        self.modalities, self.branches = tuple(modalities), probe.branches
        stems = [b for b in self.branches if b != "static_dynamic"]
        self.stems = nn.ModuleDict({
            f"{m}_{b}": ResNetTrunk(width, stages=STAGES[:1]) for m in modalities for b in stems})
        self.reduce = nn.ModuleDict({
            b: nn.Sequential(conv1x1(width * len(modalities), width), nn.BatchNorm2d(width),
                             nn.ReLU(inplace=True)) for b in self.branches})
        self.trunks = nn.ModuleDict({
            b: ResNetTrunk(width, stem=False, stages=STAGES[1:]) for b in self.branches})
        self.heads = nn.ModuleDict({b: nn.Linear(width * 8, 1) for b in self.branches}
                                   if len(self.branches) > 1 else {})
        self.whole_head = nn.Linear(width * 8, 1)

    score_key = "whole"

    def forward(self, static: dict[str, torch.Tensor],
                dynamic: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        inputs = {"static": static, "dynamic": dynamic}
        res1 = {(m, b): self.stems[f"{m}_{b}"].block("layer1", self.stems[f"{m}_{b}"].stem(inputs[b][m]))
                for m in self.modalities for b in self.branches if b != "static_dynamic"}
        for m in self.modalities:
            if "static_dynamic" in self.branches:
                res1[m, "static_dynamic"] = res1[m, "static"] + res1[m, "dynamic"]
        logits, whole = {}, 0
        for b in self.branches:
            x = self.reduce[b](torch.cat([res1[m, b] for m in self.modalities], dim=1))
            for name in STAGES[1:]:
                x = self.trunks[b].block(name, x)
            features = _pool(x)
            if b in self.heads:
                logits[b] = self.heads[b](features).squeeze(1)
            whole = whole + features
        logits["whole"] = self.whole_head(whole).squeeze(1)
        return logits

    def loss(self, logits: dict[str, torch.Tensor], is_live: torch.Tensor) -> torch.Tensor:
        return _bce_sum(logits, is_live)


def _bce_sum(logits: dict[str, torch.Tensor], is_live: torch.Tensor) -> torch.Tensor:
    """The sum of one binary cross-entropy per logit (REFERENCE section 1)."""
    target = is_live.to(next(iter(logits.values())).dtype)
    return sum(nn.functional.binary_cross_entropy_with_logits(logit, target)
               for logit in logits.values())
