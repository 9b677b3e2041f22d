"""Start-up of the `fas` command: `--version` and every `fas <stage> --help`.

Baselines measured in the same run: a bare interpreter, and importing PyTorch
(what every `fas train --help` paid before stage modules imported their heavy
dependencies lazily, `fas.lazy`).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench._util import best_time, table

BIN = Path(sys.executable).parent


def _seconds(*command: str) -> float:
    return best_time(lambda: subprocess.run(command, capture_output=True, check=True))


def main() -> None:
    from fas.cli import STAGES

    bare = _seconds(sys.executable, "-c", "pass")
    torch = _seconds(sys.executable, "-c", "import torch")
    rows = [("python -c pass", f"{bare:.2f}", "1.0"),
            ("python -c 'import torch'", f"{torch:.2f}", f"{torch / bare:.1f}"),
            ("fas --version", f"{(v := _seconds(str(BIN / 'fas'), '--version')):.2f}",
             f"{v / bare:.1f}")]
    for stage in STAGES:
        seconds = _seconds(str(BIN / "fas"), stage, "--help")
        rows.append((f"fas {stage} --help", f"{seconds:.2f}", f"{seconds / bare:.1f}"))
    print(table(rows, ("command", "best of 3 (s)", "x bare python")))


if __name__ == "__main__":
    main()
