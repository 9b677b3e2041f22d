"""Atomic writes: nothing half-written at the target, killed writers' temporaries removed."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys

import pytest

from fas.io import atomic_path, write_json


def test_a_failed_write_leaves_neither_target_nor_temporary(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed halfway")
    assert list(tmp_path.iterdir()) == []


def test_a_killed_writers_temporary_is_removed_by_the_next_write(tmp_path):
    """SIGKILL skips every clean-up: the rerun of the job removes what the kill left."""
    target = tmp_path / "shard.parquet"
    writer = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\n"
        "from fas.io import atomic_path\n"
        f"with atomic_path({str(target)!r}) as tmp:\n"
        "    tmp.write_bytes(b'x' * 1000)\n"
        "    print('writing', flush=True)\n"
        "    time.sleep(60)\n")], stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "writing"
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith(".shard.parquet.") and left[0].endswith(".tmp")
    (tmp_path / ".other.parquet.abcdefgh.tmp").write_text("another target's")
    write_json(target, {"ok": True})
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.parquet.abcdefgh.tmp",
                                                          "shard.parquet"]


def test_a_file_system_error_names_the_target_not_the_temporary(tmp_path, monkeypatch):
    def full(source, target):
        raise OSError(errno.ENOSPC, "Error writing bytes to file")  # pyarrow: no file name

    monkeypatch.setattr(os, "replace", full)
    target = tmp_path / "metrics.json"
    with pytest.raises(OSError) as raised:
        write_json(target, {})
    assert (raised.value.errno, raised.value.filename) == (errno.ENOSPC, str(target))
    assert raised.value.strerror == "No space left on device"
    assert list(tmp_path.iterdir()) == []
