"""The warm server (fas.warm): a command it runs writes what its own process writes,
answers with the same exit status and streams, and dies with the process that asked."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from fas import warm
from test_train import SDNET_ID, outputs, tiny_params, toy  # noqa: F401 - `toy` is a fixture

FAS = Path(sys.executable).parent / "fas"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A server as a Snakemake run starts one: (socket path, its log)."""
    log = tmp_path_factory.mktemp("warm") / "warm.log"
    process, path = warm.start(log, parent=os.getpid())
    deadline = time.monotonic() + 180
    while not path.exists():
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the warm server did not start"
        time.sleep(0.2)
    yield path, log
    warm.stop(process, path)
    assert not path.exists()


def fas(*args, socket: Path | None = None, cwd: Path | None = None, wait: bool = True, **env):
    environ = {**os.environ, **env}
    environ.pop(warm.SOCKET_VARIABLE, None)
    if socket is not None:
        environ[warm.SOCKET_VARIABLE] = str(socket)
    command = [str(FAS), *args]
    if not wait:
        return subprocess.Popen(command, env=environ, cwd=cwd, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    return subprocess.run(command, env=environ, cwd=cwd, capture_output=True, text=True)


def ran_in(log: Path) -> list[str]:
    """The command lines the server forked, in order."""
    return re.findall(r"runs fas (.*)", log.read_text())


def train_args(root: Path, params: Path, out: str) -> list[str]:
    return ["train", "--experiment", SDNET_ID, "--params", str(params), "--device", "cpu",
            "--index-root", str(root / "index"), "--cache-root", str(root / "cache"),
            "--out", str(root / out), "--scratch", str(root / f"scratch-{out}"),
            "--checkpoint-interval", "0"]


def test_without_a_server_the_command_runs_in_its_own_process(tmp_path, monkeypatch):
    monkeypatch.setenv(warm.SOCKET_VARIABLE, str(tmp_path / "no-server"))
    assert warm.delegate(["train", "--help"]) is None
    assert warm.delegate(["report", "--help"]) is None  # not a warm stage: never asked


def test_a_user_error_comes_back_as_its_one_line_and_exit_status(server):
    path, log = server
    done = fas("train", "--experiment", "nope", socket=path)
    assert done.returncode == 2
    assert done.stderr.splitlines()[0].startswith("fas train: ")
    assert "Traceback" not in done.stderr
    assert ran_in(log)[-1] == "train --experiment nope"


@pytest.mark.parametrize("setting", [{"OMP_NUM_THREADS": "2"}, {"MKL_CBWR": "COMPATIBLE"}],
                         ids=["threads", "instruction-sets"])
def test_a_caller_with_other_numeric_settings_runs_its_command_itself(server, setting):
    path, log = server
    before = ran_in(log)
    done = fas("evaluate", "--experiment", "nope", socket=path, **setting)
    assert done.returncode == 2 and "fas evaluate: " in done.stderr
    assert ran_in(log) == before


@pytest.mark.slow
def test_training_in_the_server_writes_what_its_own_process_writes(toy, server):  # noqa: F811
    path, log = server
    params = tiny_params(toy)
    alone = fas(*train_args(toy, params, "alone"))
    assert alone.returncode == 0, alone.stderr
    served = fas(*train_args(toy, params, "served"), socket=path)
    assert served.returncode == 0, served.stderr
    assert ran_in(log)[-1].startswith(f"train --experiment {SDNET_ID}")
    assert "epoch 3/3" in served.stderr  # the job's streams are the command's
    for name in ("scores.parquet", "frame_scores.parquet"):
        expected = pd.read_parquet(outputs(toy, SDNET_ID, "alone") / name)
        pd.testing.assert_frame_equal(pd.read_parquet(outputs(toy, SDNET_ID, "served") / name),
                                      expected)


@pytest.mark.slow
def test_killing_the_caller_kills_its_command(toy, server):  # noqa: F811
    path, log = server
    params = tiny_params(toy, epochs=500)
    caller = fas(*train_args(toy, params, "killed"), socket=path, wait=False)
    deadline = time.monotonic() + 60
    while not (started := re.findall(r"pid (\d+) runs fas train .*killed", log.read_text())):
        assert time.monotonic() < deadline and caller.poll() is None
        time.sleep(0.1)
    child = int(started[0])
    time.sleep(1)  # training
    caller.send_signal(signal.SIGKILL)
    caller.wait()
    deadline = time.monotonic() + 10
    while f"pid {child} ended" not in log.read_text():
        assert time.monotonic() < deadline, "the server's child outlived its caller"
        time.sleep(0.1)
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)
    assert not (outputs(toy, SDNET_ID, "killed") / "scores.parquet").exists()
