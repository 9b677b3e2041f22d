"""Alignment speed per backend, and the detector's hit rate on synthetic frames.

Synthetic frames: scikit-image's astronaut photograph (a real face) pasted
into 640x480 frames at random scale (0.6-1.6x: 36-96 px between the outer eye
corners), rotation (+-20 degrees), position and brightness, over
smoothed-noise backgrounds; the true landmarks are the
detector's landmarks on the original photograph moved by the same transform.
Faceless frames (backgrounds only) measure false detections.
"""

from __future__ import annotations

import cv2
import numpy as np
import skimage.data

from bench._util import best_time, peak_memory_mb, table
from fas.align import LandmarkDetector, align_video, similarity, template

N_FACES, N_EMPTY, SIZE = 40, 20, (480, 640)


def background(rng) -> np.ndarray:
    noise = rng.integers(0, 256, (SIZE[0] // 8, SIZE[1] // 8, 3), dtype=np.uint8)
    return cv2.GaussianBlur(cv2.resize(noise, SIZE[::-1], interpolation=cv2.INTER_CUBIC), (0, 0), 3)


def synthetic_frames(reference: np.ndarray, rng):
    """(frame, true landmarks) pairs with the photograph's face moved at random."""
    face = skimage.data.astronaut()
    mask = np.zeros(face.shape[:2], np.uint8)
    cv2.ellipse(mask, (225, 130), (95, 125), 0, 0, 360, 255, -1)
    frames = []
    for _ in range(N_FACES):
        scale, angle = rng.uniform(0.6, 1.6), rng.uniform(-20, 20)
        matrix = cv2.getRotationMatrix2D((225, 130), angle, scale)
        matrix[:, 2] += rng.uniform([130, 130], [SIZE[1] - 130, SIZE[0] - 130]) - (225, 130)
        moved = cv2.warpAffine(face, matrix, SIZE[::-1])
        alpha = cv2.warpAffine(mask, matrix, SIZE[::-1])[:, :, None] / 255.0
        frame = background(rng) * (1 - alpha) + moved * alpha * rng.uniform(0.5, 1.2)
        truth = np.c_[reference, np.ones(5)] @ matrix.T
        frames.append((np.clip(frame, 0, 255).astype(np.uint8), truth))
    return frames


def main() -> None:
    rng = np.random.default_rng(0)
    detectors = {f"detector (dlib HOG, upsample {u})": LandmarkDetector(upsample=u) for u in (0, 1)}
    reference = detectors["detector (dlib HOG, upsample 0)"](skimage.data.astronaut())
    frames = synthetic_frames(reference, rng)
    empty = [background(rng) for _ in range(N_EMPTY)]
    rows = []
    for name, detector in detectors.items():
        hits, errors = 0, []
        for frame, truth in frames:
            found = detector(frame)
            if found is not None and np.linalg.norm(found.mean(0) - truth.mean(0)) < 20:
                hits += 1
                eye_gap = np.linalg.norm(truth[0] - truth[2])
                errors.append(np.mean(np.linalg.norm(found - truth, axis=1)) / eye_gap)
        false = sum(detector(frame) is not None for frame in empty)
        seconds = best_time(lambda: [detector(f) for f, _ in frames[:20]], repeats=1) / 20
        rows.append((name, f"{1 / seconds:.1f}", f"{hits}/{N_FACES}", f"{false}/{N_EMPTY}",
                     f"{np.mean(errors):.3f}" if errors else "-"))
    settings = {"margin": 0.2, "smoothing": 5}
    video = {"color": [{"image": f, "source_frame": i} for i, (f, _) in enumerate(frames)]}
    boxes = {i: (t[:, 0].min(), t[:, 1].min() - 20, np.ptp(t[:, 0]), np.ptp(t[:, 1]) + 40)
             for i, (_, t) in enumerate(frames)}
    for backend, extra in [("annotations", {"boxes": boxes}), ("precropped", {})]:
        seconds = best_time(lambda: align_video(video, backend, settings, 112, **extra)) / N_FACES
        rows.append((backend, f"{1 / seconds:,.0f}", "-", "-", "-"))
    warp_only = best_time(lambda: [cv2.warpAffine(f, similarity(t, template(112, 0.2)), (112, 112))
                                   for f, t in frames]) / N_FACES
    rows.append(("warp only (given landmarks)", f"{1 / warp_only:,.0f}", "-", "-", "-"))
    print(f"{N_FACES} synthetic 640x480 frames with a face, {N_EMPTY} without")
    print(table(rows, ("backend", "frames/s", "faces found", "false detections",
                       "landmark error / eye-corner gap")))
    print(peak_memory_mb())


if __name__ == "__main__":
    main()
