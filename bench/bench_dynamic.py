"""Rank pooling of 224x224x3 frames: fas vs the previous OpenCV passes, a matrix product, a per-frame loop, memory bandwidth.

Workload: videos of two runs of 8 consecutive frames (the demo sampling),
window 8, stride 8, as `fas dynamic` runs it: each video's images are used
and dropped before the next video is pooled (the stage turns them into rows),
so their memory is reused as in the stage. Keeping all 64 videos' images
alive instead would time the kernel handing out fresh pages (about 2 us per
4 KiB on this VM, 10 us per frame), not the pooling. Thread pools are pinned
to 1 (threadpoolctl: BLAS, OpenMP; OpenCV) so that BLAS and OpenCV cannot fan
out. The ceiling is the machine's memory bandwidth, measured by copying a
large uint8 array (just before the fas timing and at the end, the higher of
the two: the load of a shared machine changes within a run): pooling must at
least read every frame once. Agreement
with the matrix product (an older implementation) is checked on random
frames and on smooth ones, whose differences cancel as in real video; the
previous OpenCV passes must give the same images bit for bit.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from bench._util import best_time, peak_memory_mb, table
from fas.dynamic import dynamic_images, rank_pool_coefficients, scale_into, to_uint8, windows

N_VIDEOS, FRAMES_PER_VIDEO, SHAPE = 64, 16, (224, 224, 3)
REPEATS = 5  # best of 5, as the bandwidth copy: runs on this shared machine vary by 1.5x


def matrix_product(frames: np.ndarray, spans: list[range], buffer_floats: int = 1 << 18
                   ) -> np.ndarray:
    """An older `dynamic_images`: one matrix product over column blocks.

    (windows x frames coefficients, mostly zeros) times (frames x pixels), each
    block of frames converted to float32 first; then `to_uint8`.
    """
    matrix = np.zeros((len(spans), len(frames)), np.float32)  # each window's coefficients
    for row, span in enumerate(spans):
        matrix[row, np.asarray(span)] = rank_pool_coefficients(len(span))
    flat = frames.reshape(len(frames), -1)
    pooled = np.empty((len(spans), flat.shape[1]), np.float32)
    step = max(1024, buffer_floats // len(frames))
    block = np.empty((len(frames), step), np.float32)
    for start in range(0, flat.shape[1], step):
        stop = min(start + step, flat.shape[1])
        np.copyto(block[:, :stop - start], flat[:, start:stop])
        np.matmul(matrix, block[:, :stop - start], out=pooled[:, start:stop])
    return to_uint8(pooled).reshape((len(spans),) + frames.shape[1:])


def opencv_passes(frames: np.ndarray, spans: list[range]) -> np.ndarray:
    """The previous `dynamic_images`: OpenCV sums two weighted frames per call, then adds the pairs."""
    shape = np.shape(frames[0])
    pooled, pair = np.empty((2, *shape), np.float32)
    images = np.empty((len(spans), *shape), np.uint8)
    for span, image in zip(spans, images):
        alpha = rank_pool_coefficients(len(span)).tolist()
        for k in range(0, len(span), 2):
            alone = k + 1 == len(span)
            cv2.addWeighted(frames[span[k]], alpha[k], frames[span[k if alone else k + 1]],
                            0.0 if alone else alpha[k + 1], 0.0, dst=pair if k else pooled,
                            dtype=cv2.CV_32F)
            if k:
                cv2.accumulate(pair, pooled)
        scale_into(pooled, image)
    return images


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


def smooth_video(rng: np.random.Generator) -> np.ndarray:
    """A blurred random pattern drifting 1 px and brightening 2 grey levels a frame, plus sensor noise."""
    noise = rng.uniform(0, 255, (SHAPE[0], SHAPE[1] + FRAMES_PER_VIDEO, SHAPE[2])).astype(np.float32)
    pattern = cv2.GaussianBlur(noise, (0, 0), 6)
    pattern = (pattern - pattern.min()) / (pattern.max() - pattern.min()) * 200
    frames = [pattern[:, t:t + SHAPE[1]] + 2 * t + rng.normal(0, 1, SHAPE)
              for t in range(FRAMES_PER_VIDEO)]
    return np.clip(np.rint(frames), 0, 255).astype(np.uint8)


def bandwidth_gb_s() -> float:
    source = np.ones(256 << 20, np.uint8)
    target = np.empty_like(source)
    seconds = best_time(lambda: np.copyto(target, source), repeats=5)
    return 2 * source.nbytes / seconds / 1e9  # read + write


def pool_all(method, videos: list[np.ndarray], spans: list[range]) -> None:
    """Pool every video, dropping each video's images before the next (as the stage does)."""
    for video in videos:
        method(video, spans)


def agreement(videos: list[np.ndarray], spans: list[range]) -> str:
    """Largest difference to the matrix product and the fraction of pixels that differ at all."""
    differences = [np.abs(dynamic_images(v, spans).astype(int) - matrix_product(v, spans))
                   for v in videos]
    differing = sum(int((d > 0).sum()) for d in differences) / sum(d.size for d in differences)
    return f"max {max(int(d.max()) for d in differences)}, {differing:.4%} of pixels differ"


def main() -> None:
    rng = np.random.default_rng(0)
    videos = [rng.integers(0, 256, (FRAMES_PER_VIDEO,) + SHAPE, dtype=np.uint8)
              for _ in range(N_VIDEOS)]
    smooth = [smooth_video(rng) for _ in range(8)]
    source_frames = list(range(8)) + list(range(100, 108))
    spans = [span for span, _ in windows(source_frames, 8, 8)]
    total_frames = N_VIDEOS * FRAMES_PER_VIDEO
    with threadpool_limits(1):
        cv2.setNumThreads(1)
        pinned = ", ".join(f"{p['internal_api']} {p['num_threads']}" for p in threadpool_info())
        print(f"thread pools pinned: {pinned}, OpenCV {cv2.getNumThreads()}")
        bandwidth = bandwidth_gb_s()  # beside the fas timing, and again at the end: the higher counts
        dynamic_images(videos[0], spans)  # numba's compiled pass: loaded from its disk cache once
        fas = best_time(lambda: pool_all(dynamic_images, videos, spans), REPEATS)
        with ThreadPoolExecutor(2) as pool:  # two halves of the videos at once, as two shards would run
            threaded = best_time(lambda: list(pool.map(
                lambda half: pool_all(dynamic_images, half, spans), [videos[0::2], videos[1::2]])),
                REPEATS)
        previous = best_time(lambda: pool_all(opencv_passes, videos, spans), REPEATS)
        reference = best_time(lambda: pool_all(matrix_product, videos, spans), REPEATS)
        loop = best_time(lambda: pool_all(per_frame_loop, videos, spans), REPEATS)
        agree = max(int(np.abs(dynamic_images(v, spans).astype(int) - per_frame_loop(v, spans)).max())
                    for v in videos[:4])
        same = all((dynamic_images(v, spans) == opencv_passes(v, spans)).all() for v in videos + smooth)
        bandwidth = max(bandwidth, bandwidth_gb_s())
    ceiling = bandwidth * 1e9 / 2 / np.prod(SHAPE)  # frames/s if reading each frame once were all
    fps = {"fas, 1 thread (compiled pass, 8 frames each)": total_frames / fas,
           "fas, 2 threads over videos": total_frames / threaded,
           "previous: OpenCV passes (2 frames each), 1 thread": total_frames / previous,
           "matrix product, 1 thread": total_frames / reference,
           "per-frame loop, 1 thread": total_frames / loop,
           "memory bandwidth ceiling": ceiling}
    base = fps["fas, 1 thread (compiled pass, 8 frames each)"]
    rows = [(name, f"{value:,.0f}", f"{value / base:.2f}") for name, value in fps.items()]
    print(f"{total_frames} frames of {SHAPE}, windows of 8, stride 8; "
          f"copy bandwidth {bandwidth:.1f} GB/s (read + write)")
    print(table(rows, ("method", "frames/s", "throughput / fas 1 thread")))
    print(f"fas, 1 thread: {base / ceiling:.0%} of the memory bandwidth ceiling")
    print(f"max |fas - loop| = {agree} grey level(s)")
    print(f"fas vs the previous OpenCV passes: {'identical' if same else 'DIFFERENT'} images")
    print(f"fas vs matrix product: random frames {agreement(videos[:8], spans)}; "
          f"smooth frames {agreement(smooth, spans)}")
    print(peak_memory_mb())


if __name__ == "__main__":
    main()
