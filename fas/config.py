"""Loading params.yaml: validated against its JSON schema, defaults filled from it.

Every entry point (`fas <stage>`, the Snakefile, and through the stage
commands DVC) reads params through `load_params`, so an invalid file fails
the same way everywhere, naming the key path and the reason, before any work
starts. Defaults live in the schema only (workflow/schemas/params.schema.yaml).
"""

from __future__ import annotations

import copy
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from fas.errors import UsageError

REPO_ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PATH = REPO_ROOT / "workflow" / "schemas" / "params.schema.yaml"
PROTOCOLS_PATH = Path(__file__).resolve().parent / "data" / "protocols.yaml"
# Both orchestrators run every command from the project folder, so the
# params of the checkout being run (or a copy of it) are in the working folder.
DEFAULT_PARAMS = Path("params.yaml")
SYNTHETIC_ROOT = Path("data/synthetic")


class ParamsError(UsageError):
    """An invalid params file: the file, the key path and the reason."""


class _Loader(yaml.CSafeLoader):
    """YAML 1.2 floats: `1e-3` is a number, not the string PyYAML's 1.1 rules make of it.

    libyaml's parser (PyYAML's C extension): the pure-Python one spends several
    times longer on params.yaml and the schema, in every job."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d[\d_]*)?(?:\.\d*)?[eE][-+]?\d+$"),
    list("-+0123456789."))


def load_params(path: str | Path | None = None) -> dict[str, Any]:
    """params.yaml (the working folder's by default), validated, with defaults filled in."""
    path = Path(path) if path else DEFAULT_PARAMS
    return validate_params(read_params_file(path), str(path))


def read_params_file(path: str | Path | None = None) -> Any:
    """params.yaml as written, not validated: what DVC reads."""
    path = Path(path) if path else DEFAULT_PARAMS
    if not path.is_file():
        raise ParamsError(f"{path.resolve()}: no params file here; run fas from the "
                          "project folder or pass --params")
    try:
        with open(path) as handle:
            return yaml.load(handle, Loader=_Loader)
    except yaml.YAMLError as error:
        raise ParamsError(f"{path}: not valid YAML ({' '.join(str(error).split())})") from None


def validate_params(params: Any, source: str = "params.yaml") -> dict[str, Any]:
    """A validated copy of `params` with the schema's defaults filled in."""
    params = copy.deepcopy(params) if params is not None else {}
    from jsonschema.exceptions import best_match

    error = best_match(_validator().iter_errors(params))
    if error is not None:
        where, reason = _describe(error)
        raise ParamsError(f"{source}: {where or '(top level)'}: {reason}")
    for where, reason in _cross_check(params):
        raise ParamsError(f"{source}: {where}: {reason}")
    return params


def key_path(parts) -> str:
    """`grid[2].variants` style path of a location in params."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


def _describe(error) -> tuple[str, str]:
    """(key path, reason) of a schema violation; an unknown key is named in the path."""
    where = key_path(error.absolute_path)
    if error.validator in ("additionalProperties", "unevaluatedProperties"):
        known = sorted(error.schema.get("properties", {}))
        patterns = list(error.schema.get("patternProperties", {}))
        unknown = [key for key in error.instance if key not in known
                   and not any(re.search(pattern, key) for pattern in patterns)]
        hint = f"; known keys here: {', '.join(known)}" if known else ""
        if error.validator == "unevaluatedProperties":  # the known keys span several schemas
            unknown, hint = re.findall(r"'([^']*)'", error.message.split("(")[-1]), ""
        return key_path([*error.absolute_path, unknown[0]]) if unknown else where, \
            f"not a known key (a typo?){hint}"
    return where, error.message


def _cross_check(params: dict):
    """Facts a JSON schema cannot state: names that must exist elsewhere in params."""
    from fas.experiment import cross_sources

    datasets = params["datasets"]
    for section in ("shards", "align.crop_size.demo", "align.crop_size.paper", "align.backend",
                    "evaluate.table_apcer"):
        setting = params
        for part in section.split("."):
            setting = setting[part]
        for name in setting:
            if name != "default" and name not in datasets:
                yield f"{section}.{name}", f"{name!r} is not a dataset of datasets:"
    windows = [params["dynamic"]["window"], *params["dynamic"]["extra_windows"]]
    for name, overrides in [("sdnet", params["methods"]["sdnet"]),
                            *((f"sdnet.variants.{v}", o) for v, o in
                              params["methods"]["sdnet"]["variants"].items())]:
        chosen = overrides.get("dynamic_window")
        if chosen is not None and chosen not in windows:
            yield (f"methods.{name}.dynamic_window", f"{chosen!r} is neither dynamic.window nor "
                   "one of dynamic.extra_windows: no such dynamic images are computed")
    for i, block in enumerate(params["grid"]):
        variants = params["methods"][block["method"]]["variants"]
        for j, variant in enumerate(block["variants"]):
            if variant not in variants:
                yield (f"grid[{i}].variants[{j}]", f"unknown variant {variant!r} of method "
                       f"{block['method']!r}; known: {sorted(variants)}")
        if block["dataset"] == "cross":
            for protocol in block["protocols"]:
                try:
                    unknown = [d for d in cross_sources(protocol, datasets) if d not in datasets]
                except ValueError as error:
                    yield f"grid[{i}].protocols.{protocol}", str(error)
                    continue
                if unknown:
                    yield (f"grid[{i}].protocols.{protocol}",
                           f"reads {', '.join(unknown)}, which datasets: does not declare")
        elif block["dataset"] not in datasets:
            yield (f"grid[{i}].dataset", f"{block['dataset']!r} is not a dataset of datasets: "
                   f"({', '.join(sorted(datasets))}, or cross)")
        yield from _check_protocols(f"grid[{i}]", block)


def _check_protocols(where: str, block: dict):
    """Protocols and folds of a grid block that its dataset does not have (`indexed_protocols`).

    Datasets the table does not hold are not checked: test fixtures with ready-made caches,
    and `casia_fas`, whose protocols are named by its release's list files. A cross-dataset
    protocol is checked when the table holds all its sources.
    """
    from fas.experiment import cross_sources

    known = indexed_protocols()
    dataset = block["dataset"]
    for protocol, folds in block["protocols"].items():
        if dataset == "cross":
            try:
                indexed = set(cross_sources(protocol, known)) <= set(known)
            except ValueError:
                continue  # reported above
            if not indexed:
                continue
        elif dataset not in known:
            continue
        table = known[dataset]
        if protocol not in table:
            yield (f"{where}.protocols.{protocol}", f"{dataset} has no protocol {protocol!r} "
                   f"to train on (it has {', '.join(table)})")
            continue
        for j, fold in enumerate(folds):
            if fold not in table[protocol]:
                yield (f"{where}.protocols.{protocol}[{j}]", f"{dataset} protocol {protocol} has "
                       f"no fold {fold} (its folds: {', '.join(map(str, table[protocol]))})")


@lru_cache(maxsize=1)
def indexed_protocols() -> dict[str, dict[str, list[int]]]:
    """dataset -> protocol -> folds a grid can train on (fas/data/protocols.yaml)."""
    with open(PROTOCOLS_PATH) as handle:
        return yaml.safe_load(handle)


@lru_cache(maxsize=1)
def _validator():
    """A JSON-schema validator that also fills each property's `default` (jsonschema's recipe)."""
    from jsonschema import Draft202012Validator, validators

    check_properties = Draft202012Validator.VALIDATORS["properties"]

    def fill_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema:
                    instance.setdefault(name, copy.deepcopy(subschema["default"]))
        yield from check_properties(validator, properties, instance, schema)

    with open(SCHEMA_PATH) as handle:
        schema = yaml.load(handle, Loader=yaml.CSafeLoader)
    Draft202012Validator.check_schema(schema)
    filling = validators.extend(Draft202012Validator, {"properties": fill_defaults})
    return filling(schema)


def section_defaults(section: str) -> dict[str, Any]:
    """A params.yaml section as command-line defaults; empty outside a project folder."""
    return load_params()[section] if DEFAULT_PARAMS.is_file() else {}


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


def per_dataset(setting: dict, dataset: str):
    """A per-dataset setting (`shards`, `align.backend`, ...): the dataset's value or `default`."""
    return setting.get(dataset, setting["default"])


def metric_name(metric: str, table_apcer: str) -> str:
    """The metrics.json key of a table column: pooled APCER/ACER when `table_apcer` (the
    dataset's `evaluate.table_apcer` convention) says so."""
    return f"{metric}_pooled" if table_apcer == "pooled" and metric in ("apcer", "acer") else metric


def crop_size(params: dict, dataset: str) -> int:
    """The aligned crop side of a dataset under the active preset (`align.crop_size.<preset>`)."""
    return int(per_dataset(params["align"]["crop_size"][params["preset"]], dataset))


def is_synthetic_root(root: str | Path) -> bool:
    """True when a dataset root is the embedded synthetic default."""
    root = Path(root)
    return not root.is_absolute() and root.parts[: len(SYNTHETIC_ROOT.parts)] == SYNTHETIC_ROOT.parts
