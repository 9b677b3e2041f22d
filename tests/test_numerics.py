"""What a job pins before its numeric libraries load: one thread each, and the AVX2 cap that
makes machines with and without AVX-512 compute the same bytes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from fas import numerics

CPU = numerics.this_cpu()
SKIP_WITHOUT_AVX2 = pytest.mark.skipif(not CPU.takes_cap,
                                       reason="the cap applies to x86-64 CPUs with AVX2 and FMA")
INTEL = numerics.Cpu("x86_64", "GenuineIntel", frozenset({"sse2", "avx2", "fma", "avx512f"}))


def test_unset_variables_get_one_thread_and_the_cap():
    environ = {"MKL_NUM_THREADS": "4", "ATEN_CPU_CAPABILITY": "default"}
    numerics.pin_threads(environ)
    numerics.cap_instruction_sets(environ, INTEL)
    assert environ == {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "4",
                       **numerics.INSTRUCTION_SET_CAP, **numerics.MKL_CAP,
                       "ATEN_CPU_CAPABILITY": "default"}
    assert numerics.settings(environ) == {name: environ[name] for name in numerics.VARIABLES}


@pytest.mark.parametrize(("cpu", "capped"), [
    (INTEL, {**numerics.INSTRUCTION_SET_CAP, **numerics.MKL_CAP}),
    (numerics.Cpu("x86_64", "AuthenticAMD", frozenset({"avx2", "fma"})),
     numerics.INSTRUCTION_SET_CAP),  # MKL ignores its AVX2 branch there
    (numerics.Cpu("x86_64", "GenuineIntel", frozenset({"sse2", "avx"})), {}),  # no AVX2 kernels
    (numerics.Cpu("x86_64", "GenuineIntel", frozenset({"avx2"})), {}),
    (numerics.Cpu("aarch64", "", frozenset({"avx2", "fma"})), {}),  # the libraries choose
])
def test_the_cap_needs_an_x86_cpu_with_avx2_and_fma_and_mkl_an_intel_one(cpu, capped):
    environ = {}
    numerics.cap_instruction_sets(environ, cpu)
    assert environ == capped


def test_the_cpu_is_read_from_the_first_processor(tmp_path, monkeypatch):
    monkeypatch.setattr(numerics.platform, "machine", lambda: "x86_64")
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: X\n"
                       "flags\t\t: fpu sse2 avx2 fma\n\nprocessor\t: 1\nvendor_id\t: Other\n"
                       "flags\t\t: fpu\n")
    assert numerics.this_cpu(str(cpuinfo)) == numerics.Cpu(
        "x86_64", "AuthenticAMD", frozenset({"fpu", "sse2", "avx2", "fma"}))
    assert numerics.this_cpu(str(tmp_path / "missing")) == numerics.Cpu("x86_64")


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
    # MKL's conditional numerical reproducibility (its AVX2 branch on Intel CPUs only)
    assert ("CNR:AVX2" if CPU.vendor == "GenuineIntel" else "CNR:AUTO") in log
