"""One grid, two orchestrators: fas.grid, Snakemake and DVC name the same jobs."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fas import dag
from fas.config import REPO_ROOT, load_params, read_params_file
from fas.experiment import cross_sources
from fas.grid import expand
from fas.scheduler import downstream_counts

BIN = Path(sys.executable).parent


def test_committed_dvc_yaml_is_up_to_date():
    assert (REPO_ROOT / "dvc.yaml").read_text() == dag.render_dvc_yaml(
        load_params(), read_params_file()), "dvc.yaml is stale: run `fas dag dvc`"


def test_every_experiment_has_train_and_evaluate_jobs():
    params = load_params()
    names = {job.name for job in dag.jobs(params)}
    for experiment in expand(params):
        assert f"train-{experiment.id}" in names
        assert f"evaluate-{experiment.id}" in names


def test_outputs_are_unique_and_every_dependency_is_produced_or_a_source():
    jobs = dag.jobs(load_params())
    outputs = [out for job in jobs for out in job.outs]
    assert len(outputs) == len(set(outputs))
    produced = set(outputs)
    for job in jobs:
        for dep in job.deps:
            assert dep in produced, f"{job.name} reads {dep}, which no job writes"


def test_commands_quote_roots_holding_spaces_and_shell_metacharacters(tmp_path):
    """Each job's command, run by a shell as both orchestrators do, passes the root unchanged."""
    params = load_params()
    trap = tmp_path / "TRAPPED"
    roots = {}
    for dataset in params["datasets"]:
        roots[dataset] = (f"{tmp_path}/my data; touch {trap} $(touch {trap}) `touch {trap}` "
                          f"'quoted' \"double\" & | > <{dataset}")
        params["datasets"][dataset]["root"] = roots[dataset]
    stub = tmp_path / "bin" / "fas"
    stub.parent.mkdir()
    log = tmp_path / "argv.jsonl"
    stub.write_text(f"#!{sys.executable}\nimport json, sys\n"
                    f"open({str(log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n")
    stub.chmod(0o755)
    jobs = [job for job in dag.jobs(params) if "--root" in job.cmd]
    assert {job.stage for job in jobs} >= {"index", "align"}
    for job in jobs:
        subprocess.run(["bash", "-c", f"{job.cmd} > /dev/null 2>&1"], check=True,
                       env={**os.environ, "PATH": f"{stub.parent}{os.pathsep}{os.environ['PATH']}"})
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(calls) == len(jobs) and not trap.exists()
    for job, argv in zip(jobs, calls):
        root = argv[argv.index("--root") + 1]
        assert argv[0] == job.stage and (root in roots.values() or root == "data/index"), argv


def test_cross_protocol_sources_follow_their_names():
    datasets = load_params()["datasets"]
    assert cross_sources("replay_to_casia_fasd", datasets) == ["casia_fasd", "replay"]
    assert cross_sources("ocm_to_i", datasets) == ["casia_fasd", "msu", "oulu", "replay"]
    with pytest.raises(ValueError):
        cross_sources("replay", datasets)


@pytest.mark.slow
def test_snakemake_runs_the_same_commands_as_dvc_in_priority_order():
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    dry = subprocess.run([str(BIN / "snakemake"), "-n", "-p", "--forceall", "--verbose"],
                         cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=True)
    priorities, priority = {}, 0  # Snakemake prints a job's priority only when it is not 0
    for line in (dry.stdout + dry.stderr).splitlines():
        if line.startswith(("rule ", "localrule ")):
            priority = 0
        elif line.startswith("    priority: "):
            priority = int(line.removeprefix("    priority: "))
        elif line.startswith("Shell command: fas "):
            cmd = re.sub(r" > logs/\S+ 2>&1$", "", line.removeprefix("Shell command: "))
            priorities[cmd] = priority
    dvc = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]
    dvc_cmds = {stage["cmd"] for stage in dvc.values()}
    assert set(priorities) == dvc_cmds
    assert len(dvc_cmds) == len(dvc)  # one command per job, none repeated
    downstream = downstream_counts(dag.jobs(load_params()))
    assert priorities == {stage["cmd"]: downstream[name] for name, stage in dvc.items()}


def _snakemake(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run([str(BIN / "snakemake"), *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True)


@pytest.mark.slow
def test_the_default_profile_is_used_from_the_repository_root():
    """`snakemake -j 2` loads the root Snakefile and, beside it, profiles/default (rerun-incomplete)."""
    done = _snakemake("-n")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Using workflow specific profile profiles/default" in done.stdout + done.stderr


@pytest.mark.slow
def test_slurm_profile_dry_run_succeeds():
    done = _snakemake("-n", "--workflow-profile", "profiles/slurm")
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.slow
def test_workflow_is_lint_clean_and_snakefmt_formatted():
    lint = _snakemake("--lint")
    assert lint.returncode == 0 and "good condition" in lint.stdout + lint.stderr
    fmt = subprocess.run([str(BIN / "snakefmt"), "--check", "workflow", "Snakefile"],
                         cwd=REPO_ROOT, capture_output=True, text=True)
    assert fmt.returncode == 0, fmt.stderr[-2000:]


def test_commands_do_not_embed_parameter_values():
    """A parameter change reruns jobs through the params DVC watches (dvc.lock), never by
    editing commands, so dvc.yaml only changes with the grid."""
    params, raw = load_params(), read_params_file()
    changed = load_params()
    changed["synth"]["scale"] = "tiny"
    changed["augment"]["rotation_deg"] = 5
    changed["dynamic"]["window"] = 4
    assert dag.render_dvc_yaml(changed, raw) == dag.render_dvc_yaml(params, raw)


def _watched(params: dict, name: str) -> list[str]:
    return dag.dvc_stages(params, read_params_file())["stages"][name]["params"]


def test_an_experiment_watches_only_its_own_parameters():
    params = load_params()
    sdnet, motion = _watched(params, "train-cefa.p1.f1.sdnet.full.s0"), \
        _watched(params, "train-replay.grandtest.f1.motion.full.s0")
    assert "presets.demo.sdnet" in sdnet and "methods.sdnet.variants.full" in sdnet
    assert not any(key.startswith(("presets.demo.motion", "methods.motion", "methods.sdnet.variants.wobf",
                                   "presets.paper", "evm", "evaluate")) for key in sdnet)
    assert "evm.preset" in motion and "augment" not in motion  # magnifies; motion.augment is off
    assert not any(key.startswith("evm") for key in
                   _watched(params, "train-replay.grandtest.f1.motion.no_magnification.s0"))
    mevr = _watched(params, "train-replay.grandtest.f1.mevr.full.s0")  # augments: flip and colour only
    assert {"augment.flip", "augment.color_jitter"} <= set(mevr) and "augment" not in mevr
    assert "evaluate.table_apcer" not in _watched(params, "evaluate-cefa.p1.f1.sdnet.full.s0")
    assert _watched(params, "report")[0] == "evaluate.table_apcer"


def test_watched_keys_are_spelled_out_in_params_yaml():
    """DVC reads params.yaml as written: a key only the schema's default fills in is watched
    through its parent, and a dataset without its own entry through `default`."""
    raw = read_params_file()
    assert dag.dvc_params(["align.backend.default", "align.crop_size.demo.default", "align.margin"],
                          raw) == ["align.backend", "align.crop_size.demo.default", "align.margin"]
    assert dag.dvc_params(["methods.sdnet", "methods.sdnet.fusion"], raw) == ["methods.sdnet"]
    params = load_params()
    align = _watched(params, "align-cefa.0-of-2")
    # the crop size is per preset: the active preset's entry, then the dataset's or `default`
    assert "align.backend.cefa" in align and "align.crop_size.demo.default" in align
    assert "align.crop_size.paper.replay" not in _watched(params, "align-replay.0-of-1")  # demo preset
    assert "align.backend" in _watched(params, "align-msu.0-of-1")  # no entry: the default


def test_metrics_and_plots_are_declared_for_dvc():
    content = dag.dvc_stages(load_params(), read_params_file())
    metrics = [m for stage in content["stages"].values() for m in stage.get("metrics", [])]
    assert metrics == ["results/metrics.json"]  # one small summary, not a file per experiment
    names = [next(iter(plot)) for plot in content["plots"]]
    assert {"roc cefa.p1.sdnet.full", "det cefa.p1.sdnet.full", "training cefa.p1.sdnet.full"} <= set(names)
    roc = next(plot for plot in content["plots"] if "roc cefa.p1.sdnet.full" in plot)
    assert len(roc["roc cefa.p1.sdnet.full"]["y"]) == 3  # one curve per fold
