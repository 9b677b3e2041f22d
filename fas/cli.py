"""The `fas` console command: one subcommand per pipeline stage."""

from __future__ import annotations

import argparse
import importlib
import sys

from fas.errors import UserError

# subcommand -> (module, one-line help). Modules are imported on use so that
# `fas --help` stays fast and a stage's heavy imports cost only that stage.
STAGES: dict[str, tuple[str, str]] = {
    "synth": ("fas.synth.cli", "generate synthetic replicas of the benchmark datasets"),
    "index": ("fas.datasets.cli", "parse a dataset layout into manifest and protocol tables"),
    "extract": ("fas.extract", "sample and decode frames through ffmpeg"),
    "align": ("fas.align", "detect, align and crop faces into the Parquet cache"),
    "dynamic": ("fas.dynamic", "dynamic images by approximate rank pooling"),
    "train": ("fas.train", "train one experiment of the grid and write its scores"),
    "evaluate": ("fas.evaluate", "ISO/IEC 30107-3 metrics for one experiment"),
    "report": ("fas.report", "LaTeX tables, plots and the results index"),
    "metrics": ("fas.metrics_table", "APCER/BPCER/ACER/HTER/EER/AUC of experiments, a table "
                                     "like `bob pad metrics`"),
    "scores": ("fas.bob_scores", "export and import scores as bob's PAD score files"),
    "grid": ("fas.grid", "list the experiments of the grid in params.yaml"),
    "dag": ("fas.dag", "the pipeline's jobs; writes dvc.yaml from the grid"),
    "track": ("fas.tracking", "MLflow store set-up and run bookkeeping"),
}


def version() -> str:
    """The installed package's version."""
    from importlib.metadata import PackageNotFoundError, version as installed

    try:
        return installed("fas")
    except PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser; stage parsers are filled in lazily by `main`."""
    parser = argparse.ArgumentParser(prog="fas", description=__doc__)
    parser.add_argument("--version", action="version", version=f"fas {version()}")
    subparsers = parser.add_subparsers(dest="stage", metavar="STAGE", required=True)
    for name, (_, help_text) in STAGES.items():
        subparsers.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in STAGES:
        build_parser().parse_args(argv)  # prints usage or the error and exits
        return 2
    name, rest = argv[0], argv[1:]
    module = importlib.import_module(STAGES[name][0])
    parser = argparse.ArgumentParser(prog=f"fas {name}", description=module.__doc__)
    module.add_arguments(parser)
    args = parser.parse_args(rest)
    try:
        return int(module.run(args) or 0)
    except UserError as error:
        print(f"fas {name}: {error.args[0] if error.args else error}", file=sys.stderr)
        return error.exit_code


if __name__ == "__main__":
    sys.exit(main())
