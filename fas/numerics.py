"""What every job pins before its numeric libraries load: thread pools and instruction sets.

Thread pools. A job's budget is one core unless its orchestrator says
otherwise (Snakemake sets the thread variables to a rule's `threads:`): the
stages' matrix products are small, and BLAS fanning each out over every core
runs them several times slower (`make bench`, dynamic images). Torch's own
pool is set by `--threads` where a stage has one.

Instruction sets. NumPy, MKL (torch's BLAS, FFT and vector maths), oneDNN
(torch's convolutions) and ATen choose their kernels by the CPU they run on,
and the AVX-512 kernels round differently from the AVX2 ones: with the same
params, a machine with AVX-512 drew 5 of the 15,056 synthetic CeFA frames
differently (NumPy), magnified other bytes (MKL) and trained other models
from the same frames (MKL and oneDNN). Capped at AVX2 with FMA (x86-64-v3:
Intel CPUs since 2013, AMD since 2015), Intel machines compute the same
bytes: a QEMU-emulated Haswell wrote the files of an AVX-512 machine
(docs/ARCHITECTURE.md, "The same bytes on every machine"). On AMD CPUs MKL
refuses its AVX2 branch and runs its own, so their models differ from
Intel's. The cap costs no time a whole run shows; it applies on x86-64 CPUs
with AVX2 and FMA only, elsewhere the libraries choose.

A variable the caller has set is left as it is: that is how Snakemake gives a
rule its threads, and how a user chooses other kernels.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

# variable -> its value for the AVX2 cap (the libraries read them when they load)
INSTRUCTION_SET_CAP = {
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",  # NumPy >= 2.4's names
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "ATEN_CPU_CAPABILITY": "avx2",
    "OPENBLAS_CORETYPE": "Haswell",  # NumPy's and scikit-learn's BLAS
}
# MKL's conditional numerical reproducibility, on Intel CPUs (others get MKL's own branches).
# Its COMPATIBLE branch, offered for every vendor, computes torch.sqrt with an approximation
# whose last bits depend on the CPU: not the same bytes either.
MKL_CAP = {"MKL_CBWR": "AVX2"}
VARIABLES = (*THREAD_VARIABLES, *INSTRUCTION_SET_CAP, *MKL_CAP)


@dataclass(frozen=True)
class Cpu:
    machine: str  # platform.machine()
    vendor: str = ""  # /proc/cpuinfo's vendor_id: GenuineIntel, AuthenticAMD
    flags: frozenset[str] = field(default_factory=frozenset)

    @property
    def takes_cap(self) -> bool:
        """Whether it runs the AVX2 kernels the cap selects."""
        return self.machine.lower() in ("x86_64", "amd64") and {"avx2", "fma"} <= self.flags


def this_cpu(cpuinfo: str = "/proc/cpuinfo") -> Cpu:
    """This machine's CPU (vendor and flags of the first processor; empty without the file)."""
    found = {}
    try:
        with open(cpuinfo, encoding="ascii", errors="replace") as lines:
            for line in lines:
                key, _, value = line.partition(":")
                if key.strip() in ("vendor_id", "flags"):
                    found.setdefault(key.strip(), value.strip())
                if len(found) == 2:
                    break
    except OSError:
        pass
    return Cpu(platform.machine(), found.get("vendor_id", ""),
               frozenset(found.get("flags", "").split()))


def pin_threads(environ=os.environ) -> None:
    """One thread per numeric library, where the caller has not chosen."""
    for variable in THREAD_VARIABLES:
        environ.setdefault(variable, "1")


def cap_instruction_sets(environ=os.environ, cpu: Cpu | None = None) -> None:
    """The AVX2 cap where the CPU takes it, for variables the caller has not set."""
    cpu = this_cpu() if cpu is None else cpu
    if not cpu.takes_cap:
        return
    chosen = {**INSTRUCTION_SET_CAP, **(MKL_CAP if cpu.vendor == "GenuineIntel" else {})}
    for variable, value in chosen.items():
        environ.setdefault(variable, value)


def pin(environ=os.environ) -> None:
    """Everything a job pins (`fas` and the warm server call it before the libraries load)."""
    pin_threads(environ)
    cap_instruction_sets(environ)


def settings(environ=os.environ) -> dict[str, str | None]:
    """The pinned variables' values (what a warm server's libraries were loaded with)."""
    return {variable: environ.get(variable) for variable in VARIABLES}
