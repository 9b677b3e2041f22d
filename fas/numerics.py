"""What every job pins before its numeric libraries load: thread pools and instruction sets.

Thread pools. A job's budget is one core unless its orchestrator says
otherwise (Snakemake sets the thread variables to a rule's `threads:`): the
stages' matrix products are small, and BLAS fanning each out over every core
runs them several times slower (`make bench`, dynamic images). Torch's own
pool is set by `--threads` where a stage has one.

Instruction sets. NumPy, MKL (torch's BLAS and FFT), oneDNN (torch's
convolutions) and ATen choose their kernels by the CPU they run on, and the
AVX-512 kernels round differently from the AVX2 ones: with the same params, a
machine with AVX-512 drew 5 of the 15,056 synthetic CeFA frames differently
(NumPy), magnified other bytes (MKL) and trained other models from the same
frames (MKL and oneDNN). Capped at AVX2 with FMA (x86-64-v3: Intel CPUs since
2013, AMD since 2015), such machines compute the same bytes: QEMU-emulated
CPUs without AVX-512 wrote the files of an AVX-512 machine
(docs/ARCHITECTURE.md, "The same bytes on every machine"). The cap costs
about 6 % of the grid's CPU time. It applies on x86-64 CPUs with AVX2 and FMA
only; elsewhere the libraries choose.

A variable the caller has set is left as it is: that is how Snakemake gives a
rule its threads, and how a user chooses other kernels.
"""

from __future__ import annotations

import os
import platform

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

# variable -> its value for the AVX2 cap (the libraries read them when they load)
INSTRUCTION_SET_CAP = {
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",  # NumPy >= 2.4's names
    # MKL's conditional numerical reproducibility: its branch for Intel and AMD alike (MKL
    # ignores its AVX2 branch on AMD CPUs); the demo's training and magnification take no longer
    "MKL_CBWR": "COMPATIBLE",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "ATEN_CPU_CAPABILITY": "avx2",
    "OPENBLAS_CORETYPE": "Haswell",  # NumPy's and scikit-learn's BLAS
}
VARIABLES = (*THREAD_VARIABLES, *INSTRUCTION_SET_CAP)
CPU_FLAGS_FOR_CAP = {"avx2", "fma"}


def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> set[str]:
    """The first CPU's feature flags (Linux); empty where the file is not there."""
    try:
        with open(cpuinfo, encoding="ascii", errors="replace") as lines:
            for line in lines:
                if line.startswith("flags"):
                    return set(line.partition(":")[2].split())
    except OSError:
        pass
    return set()


def can_cap(machine: str | None = None, flags: set[str] | None = None) -> bool:
    """Whether this CPU runs the AVX2 kernels the cap selects."""
    machine = platform.machine() if machine is None else machine
    if machine.lower() not in ("x86_64", "amd64"):
        return False
    return CPU_FLAGS_FOR_CAP <= (cpu_flags() if flags is None else flags)


def pin_threads(environ=os.environ) -> None:
    """One thread per numeric library, where the caller has not chosen."""
    for variable in THREAD_VARIABLES:
        environ.setdefault(variable, "1")


def cap_instruction_sets(environ=os.environ, cap: bool | None = None) -> None:
    """The AVX2 cap (where this CPU can take it, or where `cap` says), where the caller has not
    chosen."""
    if can_cap() if cap is None else cap:
        for variable, value in INSTRUCTION_SET_CAP.items():
            environ.setdefault(variable, value)


def pin(environ=os.environ) -> None:
    """Everything a job pins (`fas` and the warm server call it before the libraries load)."""
    pin_threads(environ)
    cap_instruction_sets(environ)


def settings(environ=os.environ) -> dict[str, str | None]:
    """The pinned variables' values (what a warm server's libraries were loaded with)."""
    return {variable: environ.get(variable) for variable in VARIABLES}
