"""What a job pins before its numeric libraries load: one thread each, and the AVX2 cap that
makes machines with and without AVX-512 compute the same bytes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from fas import numerics

SKIP_WITHOUT_AVX2 = pytest.mark.skipif(not numerics.can_cap(),
                                       reason="the cap applies to x86-64 CPUs with AVX2 and FMA")


def test_unset_variables_get_one_thread_and_the_cap():
    environ = {"MKL_NUM_THREADS": "4", "ATEN_CPU_CAPABILITY": "default"}
    numerics.pin_threads(environ)
    numerics.cap_instruction_sets(environ, cap=True)
    assert environ == {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "4",
                       **numerics.INSTRUCTION_SET_CAP, "ATEN_CPU_CAPABILITY": "default"}
    assert numerics.settings(environ) == {name: environ[name] for name in numerics.VARIABLES}


def test_without_the_cap_only_threads_are_pinned(monkeypatch):
    monkeypatch.setattr(numerics, "can_cap", lambda: False)  # an ARM machine, say
    environ = {}
    numerics.pin(environ)
    assert environ == dict.fromkeys(numerics.THREAD_VARIABLES, "1")
    assert numerics.settings(environ)["MKL_CBWR"] is None


@pytest.mark.parametrize(("machine", "flags", "expected"), [
    ("x86_64", {"sse2", "avx", "avx2", "fma", "avx512f"}, True),
    ("AMD64", {"avx2", "fma"}, True),
    ("x86_64", {"sse2", "avx"}, False),  # the AVX2 kernels would not run
    ("x86_64", {"avx2"}, False),
    ("aarch64", {"avx2", "fma"}, False),  # other names, other kernels: the libraries choose
])
def test_the_cap_needs_an_x86_cpu_with_avx2_and_fma(machine, flags, expected):
    assert numerics.can_cap(machine, flags) is expected


def test_cpu_flags_are_read_from_the_first_processor(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: X\nflags\t\t: fpu sse2 avx2 fma\n\n"
                       "processor\t: 1\nflags\t\t: fpu\n")
    assert numerics.cpu_flags(str(cpuinfo)) == {"fpu", "sse2", "avx2", "fma"}
    assert numerics.cpu_flags(str(tmp_path / "missing")) == set()


KERNELS = """
import json, os
from fas import numerics
numerics.pin()
os.environ.update(ONEDNN_VERBOSE="1", MKL_VERBOSE="1")
import numpy, threadpoolctl, torch
from numpy._core._multiarray_umath import __cpu_features__
convolution = torch.nn.Conv2d(16, 32, 3)
convolution(torch.randn(8, 16, 32, 32, requires_grad=True)).sum().backward()  # oneDNN
torch.randn(64, 64) @ torch.randn(64, 64)  # MKL
print(json.dumps({"aten": torch.backends.cpu.get_cpu_capability(),
                  "numpy_avx512": __cpu_features__["X86_V4"],
                  "blas_threads": sorted({p["num_threads"] for p in threadpoolctl.threadpool_info()
                                          if p["user_api"] == "blas"})}))
"""


def loaded_kernels() -> tuple[dict, str]:
    """What the libraries of a freshly pinned interpreter report: (summary, their verbose log)."""
    environ = {k: v for k, v in os.environ.items() if k not in numerics.VARIABLES}
    done = subprocess.run([sys.executable, "-c", KERNELS], capture_output=True, text=True,
                          check=True, env=environ)
    *log, summary = done.stdout.strip().splitlines()
    return json.loads(summary), "\n".join(log) + done.stderr


@SKIP_WITHOUT_AVX2
def test_every_numeric_library_runs_its_avx2_kernels():
    summary, log = loaded_kernels()
    assert summary == {"aten": "AVX2", "numpy_avx512": False, "blas_threads": [1]}
    assert "isa:Intel AVX2\n" in log  # oneDNN's convolutions
    assert "CNR:COMPATIBLE" in log  # MKL's conditional numerical reproducibility
