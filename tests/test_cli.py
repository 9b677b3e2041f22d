"""The `fas` command: user errors are one line naming the file or key and the reason, no
traceback (exit 2 for a bad command line or params file, 1 for work that failed); --version,
a fast --help (heavy imports are lazy), training progress."""

from __future__ import annotations

import errno
import io as text_io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fas import io
from fas.cli import STAGES, main
from fas.config import REPO_ROOT
from fas.train import EpochProgress

BIN = Path(sys.executable).parent
HEAVY = ("torch", "pandas", "sklearn", "scipy", "matplotlib", "mlflow", "dvc")


def one_line(capsys) -> str:
    """The single line a failed command printed on stderr (and nothing on stdout)."""
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    return lines[0]


@pytest.mark.parametrize("argv, code, expected", [
    (["train", "--experiment", "cefa.p9.f1.sdnet.full.s0"], 2, "not in the grid"),
    (["evaluate", "--experiment", "cefa"], 2, "malformed experiment id 'cefa'"),
    (["extract", "foo"], 2, "unknown dataset 'foo'"),
    (["align", "foo"], 2, "unknown dataset 'foo'"),
    (["dynamic", "foo"], 2, "unknown dataset 'foo'"),
    (["extract", "cefa", "--index", "/no/such"], 1,
     "/no/such/manifest.parquet: input not found (`fas index cefa` writes it)"),
    (["dynamic", "cefa", "--static", "/no/such.parquet"], 1, "/no/such.parquet: input not found"),
    (["grid", "--dataset", "foo"], 2, "--dataset foo: no experiment of the grid"),
    (["grid", "--method", "foo"], 2, "--method foo: no experiment of the grid"),
    (["index", "foo", "--root", ".", "--out", "x"], 2, "argument dataset: invalid choice: 'foo'"),
    (["train"], 2, "the following arguments are required: --experiment"),
    (["nosuchstage"], 2, "invalid choice: 'nosuchstage'"),
    (["dag", "jobs", "--params", "/no/such.yaml"], 2, "/no/such.yaml: no params file here"),
])
def test_user_errors_are_one_line_with_their_exit_code(argv, code, expected, capsys):
    assert main(argv) == code
    line = one_line(capsys)
    assert line.startswith("fas") and expected in line, line


def test_an_unknown_protocol_stops_every_entry_point_with_its_key_path(tmp_path, capsys):
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    params["grid"][0]["protocols"]["p9"] = [1]
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    for argv in (["grid"], ["dag", "jobs"], ["extract", "cefa"],
                 ["train", "--experiment", "cefa.p1.f1.sdnet.full.s0"], ["report"]):
        assert main([*argv, "--params", str(path)]) == 2, argv
        assert "grid[0].protocols.p9: cefa has no protocol 'p9'" in one_line(capsys)


@pytest.mark.parametrize("code, reason", [(errno.ENOSPC, "No space left on device"),
                                          (errno.EROFS, "Read-only file system")])
def test_a_full_or_read_only_disk_is_one_line_naming_the_output(code, reason, tmp_path,
                                                                monkeypatch, capsys):
    def refuse(source, target):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(io.os, "replace", refuse)
    target = tmp_path / "dvc.yaml"
    assert main(["dag", "dvc", "--out", str(target)]) == 1
    assert one_line(capsys) == f"fas dag: {target}: {reason}" + (
        " (free some space and run the same command again)" if code == errno.ENOSPC
        else " (the output folder is on a read-only file system)")
    assert list(tmp_path.iterdir()) == []  # nothing half-written left behind


def _namespace_mount_works() -> bool:
    unshare = shutil.which("unshare")
    return bool(unshare) and subprocess.run(
        [unshare, "-rm", "true"], capture_output=True).returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(not _namespace_mount_works(), reason="needs unshare -rm (user namespaces)")
def test_a_real_full_and_read_only_file_system(tmp_path):
    """ENOSPC (an output, the MLflow store) and EROFS from a real 16 KiB tmpfs, mounted in a
    private mount namespace."""
    mount = tmp_path / "disk"
    mount.mkdir()
    script = (f"mount -t tmpfs -o size=16k none {mount} || exit 99; "
              f"fas dag dvc --out {mount}/dvc.yaml; echo rc=$?; "
              f"fas track init --receipt {mount}/grid.json 2>&1 | grep -v INFO >&2; "
              "echo rc=${PIPESTATUS[0]}; "
              f"mount -o remount,ro {mount} && fas dag dvc --out {mount}/dvc.yaml; echo rc=$?")
    done = subprocess.run(["unshare", "-rm", "bash", "-c", script], cwd=REPO_ROOT,
                          capture_output=True, text=True,
                          env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
                               "FAS_TRACKING": "1",  # the MLflow store on the full disk
                               "MLFLOW_TRACKING_URI": f"sqlite:///{mount}/mlflow.db"})
    if done.returncode == 99:
        pytest.skip("tmpfs cannot be mounted here")
    assert done.stdout.split() == ["rc=1", "rc=1", "rc=1"]
    assert done.stderr.splitlines() == [
        f"fas dag: {mount}/dvc.yaml: No space left on device "
        "(free some space and run the same command again)",
        f"fas track: {mount}/mlflow.db: No space left on device "
        "(free some space and run the same command again)",
        f"fas dag: {mount}/dvc.yaml: Read-only file system "
        "(the output folder is on a read-only file system)"]


def test_a_closed_pipe_ends_quietly():
    """`fas dag jobs | head`: the reader is gone before the output is written."""
    process = subprocess.Popen([str(BIN / "fas"), "dag", "jobs"], cwd=REPO_ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == 1 and stderr == ""


def test_version(capsys):
    try:
        main(["--version"])
    except SystemExit as done:
        assert done.code == 0
    assert capsys.readouterr().out.startswith("fas ")


def test_stage_modules_import_no_heavy_library():
    """What `fas <stage> --help` loads: PyTorch, pandas, scikit-learn, ... wait for a real run."""
    script = f"""
import sys, importlib
for module in {sorted({m for m, _ in STAGES.values()})!r}:
    importlib.import_module(module)
    loaded = [h for h in {HEAVY!r} if type(sys.modules.get(h)).__name__ == "module"]
    print(module, *loaded)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True)
    assert all(len(line.split()) == 1 for line in done.stdout.splitlines()), done.stdout


def test_every_stage_help_prints_its_options(capsys):
    for stage in STAGES:
        try:
            main([stage, "--help"])
        except SystemExit as done:
            assert done.code == 0
        assert f"usage: fas {stage}" in capsys.readouterr().out


def test_training_progress_is_a_line_per_epoch_in_a_log():
    log = text_io.StringIO()
    with EpochProgress("cefa.p1.f1.sdnet.full.s0", 3, stream=log) as progress:
        progress.update({"train/loss": 0.5, "dev/eer": 0.125}, 1)
        progress.update({"train/loss": 0.25}, 2)
    lines = log.getvalue().splitlines()
    assert lines[0].startswith("train cefa.p1.f1.sdnet.full.s0: epoch 1/3 loss 0.5000 dev EER 12.50% time ")
    assert lines[1].startswith("train cefa.p1.f1.sdnet.full.s0: epoch 2/3 loss 0.2500 time ")
    assert len(lines) == 2


def test_training_progress_is_a_bar_on_a_terminal():
    class Terminal(text_io.StringIO):
        def isatty(self):
            return True

    screen = Terminal()
    with EpochProgress("x", 2, stream=screen) as progress:
        progress.update({"train/loss": 0.5, "dev/eer": 0.25}, 1)
    assert "1/2" in screen.getvalue() and "dev EER=25.00%" in screen.getvalue()
    assert "\n" not in screen.getvalue().rstrip("\n").split("\r")[-1]  # redrawn in place
