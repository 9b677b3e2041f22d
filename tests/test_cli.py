"""The `fas` command itself: --version, a fast --help (heavy imports are lazy), training progress."""

import io
import subprocess
import sys

from fas.cli import STAGES, main
from fas.train import EpochProgress

HEAVY = ("torch", "pandas", "sklearn", "scipy", "matplotlib", "mlflow", "dvc")


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
    log = io.StringIO()
    with EpochProgress("cefa.p1.f1.sdnet.full.s0", 3, stream=log) as progress:
        progress.update({"train/loss": 0.5, "dev/eer": 0.125}, 1)
        progress.update({"train/loss": 0.25}, 2)
    lines = log.getvalue().splitlines()
    assert lines[0].startswith("train cefa.p1.f1.sdnet.full.s0: epoch 1/3 loss 0.5000 dev EER 12.50% time ")
    assert lines[1].startswith("train cefa.p1.f1.sdnet.full.s0: epoch 2/3 loss 0.2500 time ")
    assert len(lines) == 2


def test_training_progress_is_a_bar_on_a_terminal():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    screen = Terminal()
    with EpochProgress("x", 2, stream=screen) as progress:
        progress.update({"train/loss": 0.5, "dev/eer": 0.25}, 1)
    assert "1/2" in screen.getvalue() and "dev EER=25.00%" in screen.getvalue()
    assert "\n" not in screen.getvalue().rstrip("\n").split("\r")[-1]  # redrawn in place
