"""The `fas` console command: one subcommand per pipeline stage."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

# subcommand -> (module, one-line help). Modules are imported on use so that
# `fas --help` stays fast and a stage's heavy imports cost only that stage.
STAGES: dict[str, tuple[str, str]] = {
    "synth": ("fas.synth.cli", "generate synthetic replicas of the benchmark datasets"),
    "index": ("fas.datasets.cli", "parse a dataset layout into manifest and protocol tables"),
    "check": ("fas.datasets.check", "compare a copy of a dataset with its published split sizes"),
    "extract": ("fas.extract", "sample and decode frames through ffmpeg"),
    "align": ("fas.align", "detect, align and crop faces into the Parquet cache"),
    "dynamic": ("fas.dynamic", "dynamic images by approximate rank pooling"),
    "train": ("fas.train", "train one experiment of the grid and write its scores"),
    "evaluate": ("fas.evaluate", "ISO/IEC 30107-3 metrics for one experiment"),
    "report": ("fas.report", "LaTeX tables, plots and the results index"),
    "grid": ("fas.grid", "list the experiments of the grid in params.yaml"),
    "dag": ("fas.dag", "the pipeline's jobs; writes dvc.yaml from the grid"),
    "track": ("fas.tracking", "MLflow store set-up and run bookkeeping"),
}


class Tee:
    """A text stream writing to the console and to a job's log file."""

    def __init__(self, console, log):
        self.console, self.log = console, log

    def write(self, text: str) -> int:
        self.log.write(text)
        self.log.flush()
        return self.console.write(text)

    def flush(self) -> None:
        self.console.flush()
        self.log.flush()

    def isatty(self) -> bool:
        return self.console.isatty()


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser; stage parsers are filled in lazily by `main`."""
    parser = argparse.ArgumentParser(prog="fas", description=__doc__)
    parser.add_argument("--log", metavar="FILE", help="also write this job's output to FILE")
    subparsers = parser.add_subparsers(dest="stage", metavar="STAGE", required=True)
    for name, (_, help_text) in STAGES.items():
        subparsers.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) >= 2 and argv[0] == "--log":
        log_path = Path(argv[1])
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(log_path, "w")
        sys.stdout, sys.stderr = Tee(sys.stdout, log), Tee(sys.stderr, log)
        argv = argv[2:]
    if not argv or argv[0] not in STAGES:
        build_parser().parse_args(argv)  # prints usage or the error and exits
        return 2
    name, rest = argv[0], argv[1:]
    module = importlib.import_module(STAGES[name][0])
    parser = argparse.ArgumentParser(prog=f"fas {name}", description=module.__doc__)
    module.add_arguments(parser)
    args = parser.parse_args(rest)
    return int(module.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
