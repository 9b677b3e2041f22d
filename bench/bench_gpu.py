"""GPU training throughput of SD-Net and MotionEnhancement at the paper preset, AMP on and off.

For each method: samples/s of full training steps (loader batch -> inputs on
the GPU -> forward/backward/step) through `fas.training.loop.Trainer` at the paper
preset's batch size and DataLoader workers, the share of step time spent
waiting for the DataLoader, peak GPU memory (torch.cuda) and GPU utilisation
(nvidia-smi, sampled every 100 ms during the timed epoch). AMP on is what
training does on CUDA (fp16 autocast + GradScaler); AMP off is the same
Trainer with both disabled: the baseline of the speed-up ratio. Samples are
generated in memory in the loader's format (as in bench_train), so the wait
share is the DataLoader's, not Parquet reading.

    python -m bench gpu                       # or: python -m bench.bench_gpu [--steps N] [--only sdnet]

On a machine without CUDA it prints one line and exits with status 1.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time

import torch

from bench._util import table
from bench.bench_train import MemorySamples, build_trainer, cache_size
from fas.config import load_params

PRESET = "paper"
WARMUP_STEPS = 5


class UtilisationSampler:
    """`nvidia-smi` polling one GPU's utilisation (%) in the background."""

    def __init__(self, device: torch.device):
        self.gpu = f"GPU-{torch.cuda.get_device_properties(device).uuid}"
        self.process: subprocess.Popen | None = None
        self.samples: list[float] = []

    def __enter__(self) -> "UtilisationSampler":
        if shutil.which("nvidia-smi"):
            self.process = subprocess.Popen(
                ["nvidia-smi", "-i", self.gpu, "--query-gpu=utilization.gpu",
                 "--format=csv,noheader,nounits", "-lms", "100"],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        return self

    def __exit__(self, *exc) -> None:
        if self.process is None:
            return
        self.process.terminate()
        output, _ = self.process.communicate(timeout=10)
        self.samples = [float(line) for line in output.split() if line.strip().isdigit()]

    def summary(self) -> dict:
        if not self.samples:
            return {"gpu_util_mean": None, "gpu_util_max": None}
        return {"gpu_util_mean": round(sum(self.samples) / len(self.samples), 1),
                "gpu_util_max": max(self.samples)}


def measure(params: dict, method: str, amp: bool, steps: int, device: torch.device) -> dict:
    """A warm-up epoch (cuDNN autotuning, allocator), then a timed epoch of `steps` steps."""
    trainer, config = build_trainer(params, method, PRESET, device)  # the preset's batch, workers
    trainer.amp = amp  # AMP off: the same Trainer without autocast and gradient scaling
    trainer.scaler = torch.amp.GradScaler("cuda", enabled=amp)
    size, batch = cache_size(params, method), trainer.schedule.batch_size
    trainer.train_epoch(MemorySamples(method, config, size, batch * WARMUP_STEPS), 0)
    samples = MemorySamples(method, config, size, batch * steps)
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    with UtilisationSampler(device) as sampler:
        metrics = trainer.train_epoch(samples, 1)
        torch.cuda.synchronize(device)
    return {"method": method, "preset": PRESET, "amp": amp, "batch": batch, "steps": steps,
            "workers": trainer.schedule.workers, "input_size": config["input_size"], "cache_size": size,
            "samples_per_s": round(metrics["train/samples_per_s"], 1),
            "data_wait_share": round(metrics["train/data_wait_share"], 3),
            "peak_allocated_gib": round(torch.cuda.max_memory_allocated(device) / 2**30, 2),
            "peak_reserved_gib": round(torch.cuda.max_memory_reserved(device) / 2**30, 2),
            **sampler.summary()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="timed training steps per run")
    parser.add_argument("--only", choices=["sdnet", "motion"])
    parser.add_argument("--threads", type=int, default=4, help="torch CPU threads (input prep)")
    args = parser.parse_args([] if argv is None else argv)  # `python -m bench` calls main()
    if not torch.cuda.is_available():
        print(f"bench gpu: no CUDA device visible to torch {torch.__version__} "
              f"(CUDA build: {torch.version.cuda or 'none'}); run it on a machine with an NVIDIA GPU",
              flush=True)
        return 1
    torch.set_num_threads(args.threads)
    device = torch.device("cuda")
    params = load_params()
    print(json.dumps({"bench": "gpu", "device": torch.cuda.get_device_name(device),
                      "torch": torch.__version__, "cuda": torch.version.cuda,
                      "threads": args.threads}), flush=True)
    rows = []
    for method in [args.only] if args.only else ["sdnet", "motion"]:
        for amp in (False, True):
            result = measure(params, method, amp, args.steps, device)
            print(json.dumps({"bench": "gpu", **result}), flush=True)
            rows.append(result)
            torch.cuda.empty_cache()
    baseline = {r["method"]: r["samples_per_s"] for r in rows if not r["amp"]}
    print(table([(r["method"], "on" if r["amp"] else "off", r["batch"], r["samples_per_s"],
                  f"{r['samples_per_s'] / baseline[r['method']]:.2f}x", r["data_wait_share"],
                  r["peak_allocated_gib"], r["gpu_util_mean"]) for r in rows],
                ("method", "AMP", "batch", "samples/s", "vs AMP off", "data wait", "peak GiB",
                 "GPU util %")))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
