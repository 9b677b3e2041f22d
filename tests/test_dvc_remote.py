"""Preprocessing caches shared through a DVC remote: pushed after preprocessing, pulled by a clone.

The remote is a local folder here; an S3 bucket or an SSH host works the same
way (README, "Sharing preprocessing caches"). The clone restores the Parquet
caches and trains from them: nothing upstream of training runs again.
"""

import subprocess

import pytest

from fas.config import load_params
from fas.dag import jobs
from fixtures.tiny_project import assert_every_output, make_project, run, tiny_params

pytestmark = pytest.mark.slow

GIT_USER = ["-c", "user.name=fas", "-c", "user.email=fas@localhost"]


def stages_run(output: str) -> set[str]:
    """Kinds of the stages a `dvc repro` ran (`train` for `train-cefa.p1...`)."""
    return {line.split("'")[1].split("-")[0] for line in output.splitlines()
            if line.startswith("Running stage")}


def one_experiment_params() -> dict:
    """The tiny grid cut to one CeFA experiment: what is shared matters here, not how much."""
    params = tiny_params()
    params["grid"] = [{**params["grid"][0], "variants": ["full"]}]
    return params


def test_remote_restores_caches_and_repro_skips_preprocessing(tmp_path):
    origin = make_project(tmp_path / "origin", one_experiment_params())
    run(origin, "dvc", "remote", "add", "-d", "shared", str(tmp_path / "remote"))
    preprocessed = run(origin, "dvc", "repro", "--glob", "index-*", "align-*", "dynamic-*",
                       "magnify-*").stdout
    assert stages_run(preprocessed) == {"synth", "index", "align", "dynamic"}
    subprocess.run(["git", "add", "-A"], cwd=origin, check=True)
    subprocess.run(["git", *GIT_USER, "commit", "-q", "-m", "preprocessed"], cwd=origin, check=True)
    pushed = run(origin, "dvc", "push").stdout
    print(f"dvc push: {pushed.strip().splitlines()[-1]}")

    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(origin), str(clone)], check=True)
    # --allow-missing: stages that never ran (training and after) have nothing to pull yet
    pulled = run(clone, "dvc", "pull", "--allow-missing").stdout
    print(f"dvc pull: {pulled.strip().splitlines()[-1]}")
    params = load_params(clone / "params.yaml")
    restored = [path for job in jobs(params) if job.stage in ("index", "align", "dynamic", "magnify")
                for path in job.outs]
    assert any(path.startswith("data/cache/") for path in restored)
    for path in restored:
        assert (clone / path).read_bytes() == (origin / path).read_bytes(), path
    assert not (clone / "data/synthetic").exists() and not (clone / "data/frames").exists()

    # --allow-missing: the synthetic videos and frame shards are not in the remote
    # (not cached outputs) and are not needed since their stages did not change
    reproduced = run(clone, "dvc", "repro", "--allow-missing").stdout
    assert stages_run(reproduced) == {"track", "train", "evaluate", "report"}
    assert not (clone / "data/synthetic").exists() and not (clone / "data/frames").exists()
    assert_every_output(clone)
