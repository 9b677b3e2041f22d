"""Loading `params.yaml` and resolving the active preset."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
# Both orchestrators run every command from the project folder, so the
# params of the checkout being run (or a copy of it) are in the working folder.
DEFAULT_PARAMS = Path("params.yaml")
SYNTHETIC_ROOT = Path("data/synthetic")


def load_params(path: str | Path | None = None) -> dict[str, Any]:
    """Read params.yaml (the working folder's by default)."""
    path = Path(path) if path else DEFAULT_PARAMS
    if not path.is_file():
        raise FileNotFoundError(f"{path.resolve()}: no params file here; run fas from the "
                                "project folder or pass --params")
    with open(path) as handle:
        return yaml.safe_load(handle)


def frames_shard(dataset: str, shard: str) -> Path:
    """Temporary sampled frames of one shard (`shard` is `<i>-of-<n>`)."""
    return Path("data/frames") / dataset / f"shard-{shard}.parquet"


def cache_shard(dataset: str, kind: str, shard: str) -> Path:
    """Cache shard of aligned frames (`static`) or dynamic images (`dynamic`)."""
    return Path("data/cache") / dataset / f"{kind}-{shard}.parquet"


def section_defaults(section: str) -> dict[str, Any]:
    """A params.yaml section as command-line defaults; empty outside a project folder."""
    return load_params().get(section) or {} if DEFAULT_PARAMS.is_file() else {}


def deep_merge(base: dict, override: dict) -> dict:
    """A copy of `base` with `override` merged in, recursively for dicts."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def method_config(params: dict, method: str, variant: str) -> dict[str, Any]:
    """The resolved settings of one method variant under the active preset."""
    spec = params["methods"][method]
    if variant not in spec["variants"]:
        raise KeyError(f"unknown variant {variant!r} of method {method!r}; "
                       f"known: {sorted(spec['variants'])}")
    base = {k: v for k, v in spec.items() if k != "variants"}
    resolved = deep_merge(base, spec["variants"][variant] or {})
    return deep_merge(resolved, params["presets"][params["preset"]][method])


def is_synthetic_root(root: str | Path) -> bool:
    """True when a dataset root is the embedded synthetic default."""
    root = Path(root)
    return not root.is_absolute() and root.parts[: len(SYNTHETIC_ROOT.parts)] == SYNTHETIC_ROOT.parts
