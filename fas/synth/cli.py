"""`fas synth`: write synthetic replicas of the benchmark datasets in their real layouts."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from fas.config import section_defaults
from fas.synth import DATASETS
from fas.synth.generate import generate
from fas.synth.spec import SCALES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = section_defaults("synth")
    parser.add_argument("dataset", choices=[*DATASETS, "all"])
    parser.add_argument("--out", required=True,
                        help="dataset root (for `all`: the parent, each dataset goes to OUT/<dataset>)")
    parser.add_argument("--scale", choices=SCALES, default=defaults.get("scale", "demo"))
    parser.add_argument("--seed", type=int, default=defaults.get("seed", 0))
    parser.add_argument("--difficulty", type=float, default=defaults.get("difficulty", 0.5),
                        help="0 = strong attack cues and small domain shift .. 1 = faint cues, strong shift")
    parser.add_argument("--layout-only", action="store_true",
                        help="full-size tree with one-frame placeholder media (to check split counts)")
    parser.add_argument("--workers", type=int, default=min(os.cpu_count() or 1, 8))


def run(args: argparse.Namespace) -> int:
    if not 0 <= args.difficulty <= 1:
        print(f"fas synth: --difficulty must be in [0, 1], got {args.difficulty}", file=sys.stderr)
        return 2
    datasets = DATASETS if args.dataset == "all" else (args.dataset,)
    for dataset in datasets:
        out = Path(args.out) / dataset if args.dataset == "all" else Path(args.out)
        summary = generate(dataset, out, args.scale, args.seed, args.difficulty,
                           args.layout_only, args.workers)
        print(f"{dataset}: {summary['videos']} videos ({summary['live_videos']} live), "
              f"{summary['files']} files in {summary['seconds']:.1f} s -> {out}")
    return 0
