"""The `fas` console command: one subcommand per pipeline stage.

A user error (`fas.errors.UserError`, an argument error, an input or output
file the system refuses) is printed as one line naming the file or key and
the reason, without a traceback: exit status 2 for a bad command line or
params file, 1 for work that failed. A closed output pipe (`fas dag jobs |
head`) ends the command quietly.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import resource
import sys

from fas import numerics
from fas.errors import UsageError, UserError

# subcommand -> (module, one-line help). Modules are imported on use so that
# `fas --help` stays fast and a stage's heavy imports cost only that stage.
STAGES: dict[str, tuple[str, str]] = {
    "synth": ("fas.synth.cli", "generate synthetic replicas of the benchmark datasets"),
    "index": ("fas.datasets.cli", "parse a dataset layout into manifest and protocol tables"),
    "check": ("fas.datasets.check", "compare a copy of a dataset with its published split sizes"),
    "extract": ("fas.extract", "sample and decode frames through ffmpeg"),
    "align": ("fas.align", "detect, align and crop faces into the Parquet cache"),
    "dynamic": ("fas.dynamic", "dynamic images by approximate rank pooling"),
    "magnify": ("fas.magnify", "Eulerian magnification of whole face tracks (MotionEnhancement)"),
    "train": ("fas.train", "train one experiment of the grid and write its scores"),
    "evaluate": ("fas.evaluate", "ISO/IEC 30107-3 metrics for one experiment"),
    "report": ("fas.report", "LaTeX tables, plots and the results index"),
    "metrics": ("fas.metrics_table", "APCER/BPCER/ACER/HTER/EER/AUC of experiments, a table "
                                     "like `bob pad metrics`"),
    "scores": ("fas.bob_scores", "export and import scores as bob's PAD score files"),
    "verdict": ("fas.verdict", "check split sizes and that the grid's models learn"),
    "grid": ("fas.grid", "list the experiments of the grid in params.yaml"),
    "dag": ("fas.dag", "the pipeline's jobs; writes dvc.yaml from the grid"),
    "track": ("fas.tracking", "MLflow store set-up and run bookkeeping"),
}

# What to do about an input or output the system refuses, by errno.
OS_ERROR_HINTS = {
    errno.ENOSPC: "free some space and run the same command again",
    errno.EDQUOT: "free some space and run the same command again",
    errno.EROFS: "the output folder is on a read-only file system",
    errno.EACCES: "check the file's permissions",
    errno.EPERM: "check the file's permissions",
}


class OneLineParser(argparse.ArgumentParser):
    """argparse, with its errors as one line (`fas STAGE: reason (fas STAGE --help)`), exit 2."""

    def error(self, message: str):
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def version() -> str:
    """The installed package's version."""
    from importlib.metadata import PackageNotFoundError, version as installed

    try:
        return installed("fas")
    except PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser; stage parsers are filled in lazily by `main`."""
    parser = OneLineParser(prog="fas", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"fas {version()}")
    subparsers = parser.add_subparsers(dest="stage", metavar="STAGE", required=True)
    for name, (_, help_text) in STAGES.items():
        subparsers.add_parser(name, help=help_text, add_help=False)
    return parser


def describe_os_error(error: OSError) -> str:
    """`<file>: <reason>[; <what to do>]` of an input or output the system refused."""
    reason = os.strerror(error.errno) if error.errno else (error.strerror or "")
    where = error.filename or (str(error) if not error.errno else "")
    hint = OS_ERROR_HINTS.get(error.errno)
    text = f"{where}: {reason}" if where and reason else where or reason or type(error).__name__
    return f"{text} ({hint})" if hint else text


def _quiet_stdout() -> None:
    """After a closed pipe: send what is left for stdout to /dev/null, so exit prints nothing."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    name = argv[0] if argv and argv[0] in STAGES else None
    prog = f"fas {name}" if name else "fas"
    from fas import warm  # after `fas` has loaded: the two import each other

    numerics.pin()  # before the numeric libraries load, here or in the warm server
    if (code := warm.delegate(argv)) is not None:  # a warm server ran it (Snakemake runs)
        return code
    try:
        if name is None:
            build_parser().parse_args(argv)  # prints help, or raises the usage error
            return 2
        module = importlib.import_module(STAGES[name][0])
        parser = OneLineParser(prog=prog, description=module.__doc__)
        module.add_arguments(parser)
        args = parser.parse_args(argv[1:])
        code = int(module.run(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return code
    except UserError as error:
        print(f"{prog}: {error.args[0] if error.args else error}", file=sys.stderr)
        return error.exit_code
    except BrokenPipeError:  # the reader left (`fas dag jobs | head`): nothing to report
        _quiet_stdout()
        return 1
    except OSError as error:
        print(f"{prog}: {describe_os_error(error)}", file=sys.stderr)
        return 1
    finally:
        if os.environ.get(USAGE_VARIABLE):
            print(usage_line(name), file=sys.stderr)


# Set (by the Snakemake rules) to end each job's log with its CPU time and peak memory,
# which `python -m bench grid` sums per stage.
USAGE_VARIABLE = "FAS_USAGE"


def usage_line(stage: str) -> str:
    """`fas usage: stage=<s> cpu_s=<x> peak_rss_mb=<y>`: this process and its children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    rss = max(own.ru_maxrss, children.ru_maxrss) / 1024
    return f"fas usage: stage={stage} cpu_s={cpu:.2f} peak_rss_mb={rss:.0f}"


if __name__ == "__main__":
    sys.exit(main())
