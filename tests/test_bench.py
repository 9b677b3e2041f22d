"""The benchmarks' own set-up: `make bench` must not break when a stage's API moves."""

from __future__ import annotations

from bench.bench_train import evm_cost
from fas.config import load_params


def test_the_magnification_benchmark_runs_with_the_resolved_evm_section():
    result = evm_cost(load_params(), "demo")
    assert result["bench"] == "evm" and result["resolution"] > 0 and result["ms_per_clip"] > 0


def test_the_memory_benchmark_runs_the_grids_own_commands_for_each_dataset():
    from bench.bench_memory import _stages

    params = {**load_params(), "shards": {"default": 1}}  # as the benchmark runs them
    assert [stage for stage, _ in _stages(params, "replay")] == [
        "synth", "index", "align", "magnify", "train", "evaluate"]
    cefa = dict(_stages(params, "cefa"))
    assert list(cefa) == ["synth", "index", "align", "dynamic", "train", "evaluate"]
    assert cefa["train"] == ["train", "--experiment", "cefa.p1.f1.sdnet.full.s0"]


def test_a_stage_peak_does_not_start_at_the_benchmarks_own(tmp_path):
    import numpy as np

    from bench.bench_memory import _peak

    ballast = np.ones(2**26)  # 512 MB held and touched by this process
    peak_mb, _ = _peak(["--version"], tmp_path)
    assert ballast.sum() == 2**26 and peak_mb < 100
