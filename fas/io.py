"""Atomic file writes and the failure report shared by every stage."""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator


@contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `target`; rename it over `target` on success.

    A killed or failing writer leaves no file at `target`, so a half-written
    artifact never looks complete.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    try:
        yield tmp_path
        if tmp_path.exists():
            tmp_path.chmod(0o666 & ~umask)  # mkstemp makes 0600; give the usual mode
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


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
