"""A warm interpreter for the grid's many short jobs (`python -m fas.warm --socket PATH`).

A demo training job spends about 8 s of CPU importing PyTorch, torch._dynamo
(torch.optim loads it) and MLflow's SQL store before 2-5 s of training, and
the grid runs about 200 `fas train` and `fas evaluate` jobs. A local
Snakemake run therefore starts one server (`serve`) that imports those
modules once and listens on a Unix socket; `fas train` and `fas evaluate`
with FAS_WARM_SOCKET naming it hand their command line, working folder,
environment and standard streams to it (`delegate`). The server forks a
child that runs the command as `fas` would and sends back its exit status;
the job's own process, the one Snakemake waits for, waits for the child, and
when it dies (a cancelled job) the server kills the child's process group.

The server runs a command only where the caller's interpreter, `fas`
package and numeric settings (`fas.numerics`) are its own; otherwise, and
without the variable or a server answering, the command runs in its own
process, as under DVC. The outputs are the same either way
(tests/test_warm.py).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import random
import resource
import selectors
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fas import cli, numerics

SOCKET_VARIABLE = "FAS_WARM_SOCKET"
STAGES = ("train", "evaluate")  # the commands worth a warm start: many jobs, heavy imports
# What those commands import (lazily: fas.lazy) before their work starts.
PRELOAD = ("torch", "torch._dynamo", "torch.optim", "torch.utils.data", "pandas",
           "pyarrow.parquet", "mlflow", "mlflow.tracking", "mlflow.store.db.utils",
           "mlflow.store.tracking.sqlalchemy_store", "fas.train", "fas.evaluate", "fas.metrics",
           "fas.tracking", "fas.loader", "fas.training.loop", "fas.training.methods",
           "fas.training.samples", "fas.training.splits")
MAX_CHILDREN = 64  # beyond, callers run their commands themselves
REFUSED = -(2 ** 31)  # status sent for a request the server does not run
HEADER = struct.Struct("!I")
STATUS = struct.Struct("!i")


def compatibility() -> dict:
    """What must match between a caller and the server for a fork to run the caller's command
    (the numeric settings `fas` pins: the server's libraries loaded with its own)."""
    import fas

    real = os.path.realpath  # one environment reached through a link is the same environment
    return {"executable": real(sys.executable), "prefix": real(sys.prefix),
            "fas": real(fas.__file__),
            "numerics": numerics.settings()}


# -- the caller -----------------------------------------------------------------------------

def delegate(argv: list[str]) -> int | None:
    """Run `fas ARGV` in the warm server; its exit status, or None to run it here instead."""
    path = os.environ.get(SOCKET_VARIABLE)
    if not path or not argv or argv[0] not in STAGES:
        return None
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(path)
    except OSError:  # no server (yet, or any more): nothing was started
        connection.close()
        return None
    with connection:
        request = json.dumps({"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ),
                              **compatibility()}).encode()
        streams = [_open_or_devnull(fd) for fd in (0, 1, 2)]
        socket.send_fds(connection, [HEADER.pack(len(request))], streams)
        connection.sendall(request)
        reply = _receive(connection, STATUS.size)
    if reply is None:
        print(f"fas {argv[0]}: the warm server ({path}) ended before the command did",
              file=sys.stderr)
        return 1
    status = STATUS.unpack(reply)[0]
    if status == REFUSED:
        return None
    return status if status >= 0 else 128 - status  # killed by signal N: 128 + N, as a shell


def _open_or_devnull(fd: int) -> int:
    """`fd` if open (a job's stdin may be closed), else /dev/null."""
    try:
        os.fstat(fd)
        return fd
    except OSError:
        return os.open(os.devnull, os.O_RDWR)


def _receive(connection: socket.socket, size: int) -> bytes | None:
    """Exactly `size` bytes, or None where the peer closed first."""
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


# -- the server -----------------------------------------------------------------------------

def preload() -> None:
    """Import PRELOAD, then compute once what every command would compute again."""
    for name in PRELOAD:
        importlib.import_module(name)
    from mlflow.utils import requirements_utils

    from fas import config

    # Logging a model checks its requirements against a map of every installed
    # distribution's files, built once per process: 1.7 s of a 5 s training job.
    requirements_utils._init_modules_to_packages_map()
    config._validator()  # the params schema, compiled


def serve(path: Path, parent: int | None) -> None:
    """Answer requests on the socket `path` until SIGTERM, or until process `parent` is gone."""
    preload()
    own = compatibility()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    temporary = path.with_name(f"{path.name}.{os.getpid()}")
    listener.bind(str(temporary))
    os.replace(temporary, path)  # callers never see a socket that does not answer yet
    listener.listen(64)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    children: dict[int, socket.socket] = {}  # child pid -> its caller's connection
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"fas warm: serving {path} (pid {os.getpid()})", flush=True)
    try:
        while parent is None or _alive(parent):
            for key, _ in selector.select(timeout=0.5):
                if key.fileobj is listener:
                    _accept(listener, selector, children, own)
                else:  # a caller's connection is readable only when it went away
                    _kill(next(pid for pid, c in children.items() if c is key.fileobj))
            _reap(selector, children)
    finally:
        for pid in list(children):
            _kill(pid)
        path.unlink(missing_ok=True)


def _accept(listener, selector, children, own: dict) -> None:
    connection, _ = listener.accept()
    connection.settimeout(10)
    try:
        header, streams, _, _ = socket.recv_fds(connection, HEADER.size, 3)
        request = json.loads(_receive(connection, HEADER.unpack(header)[0]) or b"null")
    except (OSError, ValueError, struct.error):
        connection.close()
        return
    runnable = isinstance(request, dict) and (request.get("argv") or [None])[0] in STAGES \
        and all(request.get(key) == value for key, value in own.items()) \
        and len(streams) == 3 and len(children) < MAX_CHILDREN
    if not runnable:
        for fd in streams:
            os.close(fd)
        try:
            connection.sendall(STATUS.pack(REFUSED))
        except OSError:
            pass  # the caller is gone
        connection.close()
        return
    pid = os.fork()
    if pid == 0:
        _run_child(request, streams, [listener, connection, *children.values()])
    print(f"fas warm: pid {pid} runs fas {' '.join(request['argv'])}", flush=True)
    for fd in streams:
        os.close(fd)
    connection.settimeout(None)
    children[pid] = connection
    selector.register(connection, selectors.EVENT_READ)


def _run_child(request: dict, streams: list[int], inherited: list[socket.socket]) -> None:
    """In the fork: become the caller's command, then exit with its status."""
    code = 1
    try:
        os.setpgid(0, 0)  # its own group: killing it takes DataLoader workers too
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        for sock in inherited:
            sock.close()
        for target, fd in zip((0, 1, 2), streams):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        os.environ.pop(SOCKET_VARIABLE, None)  # the command runs here: it must not delegate again
        random.seed()  # a fresh process's state, not the server's copy
        sys.argv = ["fas", *request["argv"]]
        code = cli.main(request["argv"])
    except SystemExit as end:
        code = end.code if isinstance(end.code, int) else 0 if end.code is None else 1
    except BaseException:  # noqa: BLE001 - the child must never return into the server's loop
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _reap(selector, children: dict[int, socket.socket]) -> None:
    """Send each finished child's exit status to its caller."""
    while children:
        pid, status, usage = os.wait4(-1, os.WNOHANG)
        if pid == 0:
            return
        connection = children.pop(pid, None)
        if connection is None:
            continue
        selector.unregister(connection)
        code = os.waitstatus_to_exitcode(status)
        print(f"fas warm: pid {pid} ended with status {code} after "
              f"{usage.ru_utime + usage.ru_stime:.2f} s of CPU", flush=True)
        try:
            connection.sendall(STATUS.pack(code))
        except OSError:
            pass  # the caller is gone
        connection.close()


def _kill(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


# -- starting and stopping it for a run -----------------------------------------------------

def start(log: Path, parent: int) -> tuple[subprocess.Popen, Path]:
    """Start a server for process `parent` (it ends with it); its socket's path.

    The socket answers once the server has imported its modules (about 10 s);
    commands run before that run in their own processes.
    """
    path = Path(tempfile.mkdtemp(prefix="fas-warm-")) / "socket"  # short: socket paths <= 107
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as out:
        # -P: import `fas` as the console command does, not from the working folder
        process = subprocess.Popen([sys.executable, "-P", "-m", "fas.warm", "--socket", str(path),
                                    "--parent", str(parent)], stdin=subprocess.DEVNULL,
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return process, path


def stop(process: subprocess.Popen, path: Path) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:  # a stuck server must not keep the run waiting
        process.kill()
    path.unlink(missing_ok=True)
    try:
        path.parent.rmdir()
    except OSError:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--socket", type=Path, required=True, help="Unix socket to listen on")
    parser.add_argument("--parent", type=int, help="end when this process has ended")
    args = parser.parse_args(argv)
    numerics.pin()  # as `fas` does, before the numeric libraries load
    started = time.perf_counter()
    try:
        serve(args.socket, args.parent)
    finally:
        own = resource.getrusage(resource.RUSAGE_SELF)
        print(f"fas warm: stopped after {time.perf_counter() - started:.0f} s, "
              f"own CPU {own.ru_utime + own.ru_stime:.2f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
