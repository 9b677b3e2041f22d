"""Approximate rank pooling of 224x224x3 frames: vectorised vs a per-frame loop vs memory bandwidth.

Workload: videos of two runs of 8 consecutive frames (the demo sampling),
window 8, stride 8, as `fas dynamic` runs it. The ceiling is the machine's
memory bandwidth, measured here by copying a large uint8 array: pooling
must at least read every frame once.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from bench._util import best_time, peak_memory_mb, table
from fas.dynamic import dynamic_images, rank_pool_coefficients, to_uint8, windows

N_VIDEOS, FRAMES_PER_VIDEO, SHAPE = 64, 16, (224, 224, 3)


def per_frame_loop(frames: np.ndarray, spans: list[range]) -> np.ndarray:
    """The straightforward version: one float accumulation per frame in Python."""
    images = []
    for span in spans:
        alpha = rank_pool_coefficients(len(span))
        total = np.zeros(frames.shape[1:], np.float32)
        for weight, t in zip(alpha, span):
            total += np.float32(weight) * frames[t].astype(np.float32)
        images.append(total)
    return to_uint8(np.stack(images))


def bandwidth_gb_s() -> float:
    source = np.ones(256 << 20, np.uint8)
    target = np.empty_like(source)
    seconds = best_time(lambda: np.copyto(target, source), repeats=5)
    return 2 * source.nbytes / seconds / 1e9  # read + write


def main() -> None:
    rng = np.random.default_rng(0)
    videos = [rng.integers(0, 256, (FRAMES_PER_VIDEO,) + SHAPE, dtype=np.uint8)
              for _ in range(N_VIDEOS)]
    source_frames = list(range(8)) + list(range(100, 108))
    spans = [span for span, _ in windows(source_frames, 8, 8)]
    total_frames = N_VIDEOS * FRAMES_PER_VIDEO
    vectorised = best_time(lambda: [dynamic_images(v, spans) for v in videos])
    with ThreadPoolExecutor(2) as pool:  # two videos at a time, as two shards would run
        threaded = best_time(lambda: list(pool.map(lambda v: dynamic_images(v, spans), videos)))
    loop = best_time(lambda: [per_frame_loop(v, spans) for v in videos])
    agree = max(int(np.abs(dynamic_images(v, spans).astype(int) - per_frame_loop(v, spans)).max())
                for v in videos[:4])
    bandwidth = bandwidth_gb_s()
    ceiling = bandwidth * 1e9 / 2 / np.prod(SHAPE)  # frames/s if reading each frame once were all
    fps = {"fas, 1 thread (one blocked matrix product)": total_frames / vectorised,
           "fas, 2 threads over videos": total_frames / threaded,
           "per-frame loop, 1 thread": total_frames / loop,
           "memory bandwidth ceiling": ceiling}
    base = fps["fas, 1 thread (one blocked matrix product)"]
    rows = [(name, f"{value:,.0f}", f"{value / base:.2f}") for name, value in fps.items()]
    print(f"{total_frames} frames of {SHAPE}, windows of 8, stride 8; "
          f"copy bandwidth {bandwidth:.1f} GB/s (read + write)")
    print(table(rows, ("method", "frames/s", "throughput / fas 1 thread")))
    print(f"max |fas - loop| = {agree} grey level(s); {peak_memory_mb()}")


if __name__ == "__main__":
    main()
