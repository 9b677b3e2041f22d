"""`fas synth`: write synthetic replicas of the benchmark datasets in their real layouts."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from fas.config import section_defaults
from fas.lazy import lazy_import
from fas.synth import DATASETS
from fas.synth.spec import SCALES

generation = lazy_import("fas.synth.generate")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", choices=[*DATASETS, "all"])
    parser.add_argument("--out", required=True,
                        help="dataset root (for `all`: the parent, each dataset goes to OUT/<dataset>)")
    parser.add_argument("--scale", choices=SCALES, help="default: params synth.scale, else demo")
    parser.add_argument("--seed", type=int, help="default: params synth.seed, else 0")
    parser.add_argument("--difficulty", type=float,
                        help="0 = strong attack cues and small domain shift .. 1 = faint cues, "
                             "strong shift (default: params synth.difficulty, else 0.5)")
    parser.add_argument("--layout-only", action="store_true",
                        help="full-size tree with one-frame placeholder media (to check split counts)")
    parser.add_argument("--workers", type=int, default=min(os.cpu_count() or 1, 8))


def run(args: argparse.Namespace) -> int:
    defaults = section_defaults("synth")  # read here, not for --help: validating params takes time
    for name, fallback in (("scale", "demo"), ("seed", 0), ("difficulty", 0.5)):
        if getattr(args, name) is None:
            setattr(args, name, defaults.get(name, fallback))
    if not 0 <= args.difficulty <= 1:
        print(f"fas synth: --difficulty must be in [0, 1], got {args.difficulty}", file=sys.stderr)
        return 2
    datasets = DATASETS if args.dataset == "all" else (args.dataset,)
    for dataset in datasets:
        out = Path(args.out) / dataset if args.dataset == "all" else Path(args.out)
        summary = generation.generate(dataset, out, args.scale, args.seed, args.difficulty,
                                      args.layout_only, args.workers)
        print(f"{dataset}: {summary['videos']} videos ({summary['live_videos']} live), "
              f"{summary['files']} files in {summary['seconds']:.1f} s -> {out}")
    return 0
