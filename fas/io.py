"""Atomic file writes and the failure report shared by every stage."""

from __future__ import annotations

import glob
import json
import os
import re
import tempfile
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator


@contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `target`; rename it over `target` on success.

    A killed or failing writer leaves no file at `target`, so a half-written
    artifact never looks complete. A kill leaves the temporary file
    (`.<name>.<random>.tmp`) behind instead: the next write of the same target
    removes it (one job owns each output, so no other writer can be using it).
    An error of the file system (a full or read-only disk) names `target`.
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(target)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as error:
        raise _naming(error, target) from error
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    try:
        yield tmp_path
        if tmp_path.exists():
            tmp_path.chmod(0o666 & ~umask)  # mkstemp makes 0600; give the usual mode
        os.replace(tmp_path, target)
    except OSError as error:
        raise _naming(error, target) from error
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _naming(error: OSError, target: Path) -> OSError:
    """A file-system error about the write of `target` (or its temporary file) names `target`."""
    name = Path(error.filename).name if isinstance(error.filename, str) else None
    if error.errno and (name is None or name.startswith(f".{target.name}.")
                        or error.filename == str(target.parent)):
        return OSError(error.errno, os.strerror(error.errno), str(target))
    return error


def remove_stale_temporaries(target: Path) -> list[Path]:
    """Delete the temporary files killed writers of `target` left (`.<name>.<8 chars>.tmp`)."""
    pattern = re.compile(rf"^\.{re.escape(target.name)}\.[A-Za-z0-9_]{{8}}\.tmp(-journal)?$")
    stale = [path for path in target.parent.glob(f".{glob.escape(target.name)}.*.tmp*")
             if pattern.match(path.name)]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def write_json(target: str | os.PathLike, payload: object) -> None:
    """Write JSON atomically, with sorted keys so reruns are byte-identical."""
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")


@dataclass
class FailureReport:
    """Per-file problems met by a stage: the file, the reason, what was done."""

    stage: str
    entries: list[dict] = field(default_factory=list)

    def add(self, path: str | os.PathLike, reason: str, action: str = "skipped") -> None:
        self.entries.append({"path": str(path), "reason": reason, "action": action})

    def __len__(self) -> int:
        return len(self.entries)

    def summary(self) -> str:
        lines = [f"{self.stage}: {len(self.entries)} problem(s)"]
        lines += [f"  {e['path']}: {e['reason']} ({e['action']})" for e in self.entries]
        return "\n".join(lines)

    def write(self, target: str | os.PathLike) -> None:
        ordered = sorted(self.entries, key=lambda e: (e["path"], e["reason"]))
        write_json(target, {**asdict(self), "entries": ordered})
