"""Face detection and 5-point alignment into the static cache (`fas align`).

Backends (params `align.backend`, per dataset; `detector` by default):
- `detector`: dlib's HOG face detector and its 5-point landmark model from
  the face_recognition_models package (weights inside a PyPI package, nothing
  downloaded; DEPENDENCIES.md), then a least-squares similarity transform of
  the landmarks onto dlib's canonical 5-point template.
- `annotations`: Replay-Attack `face-locations` boxes (`frame x y w h`; zeros or
  a missing line = no face), the box mapped onto the crop with the margin.
- `precropped`: frames that are face crops already (CeFA, CASIA-SURF): resize.

The frames come from the dataset itself: each video of the shard is sampled
and decoded as `fas extract` does (the `extract:` section) and aligned in
memory, so sampled frames never become a file that two jobs share; `--frames`
reads a frames shard of `fas extract` instead.

Transforms are smoothed over time within consecutive runs of sampled frames;
a frame without a face takes the nearest frame's transform (`face_reused`);
a video without any face is reported and centre-cropped (`no_face`). Depth
and IR frames use the colour frame's transform.
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import numpy as np

from fas import shard_stage
from fas.config import crop_size, per_dataset
from fas.extract import shard_sampler
from fas.paths import cache_shard, frames_shard
from fas.lazy import lazy_import
from fas.shard_stage import MediaError, ShardJob

cv2 = lazy_import("cv2")
pd = lazy_import("pandas")
parquet_cache = lazy_import("fas.cache")

# dlib's canonical 5-point face, unit square (get_face_chip_details in
# dlib/image_transforms/interpolation.h); order of the 5-point model's parts:
# eye corners of the face's left eye (outer, inner), right eye (outer, inner), nose base.
TEMPLATE_5 = np.array([[0.8595674595992, 0.2134981538014],
                       [0.6460604764104, 0.2289674387677],
                       [0.1205750620789, 0.2137274526848],
                       [0.3340850613712, 0.2290642403242],
                       [0.4901123135679, 0.6277975316475]])
BACKENDS = ("detector", "annotations", "precropped")


def template(crop_size: int, margin: float) -> np.ndarray:
    """Target landmark positions in a crop: the template inside a border of `margin`."""
    return (margin + TEMPLATE_5) / (2 * margin + 1) * crop_size


def similarity(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (Umeyama 1991) taking source points to target; 2x3."""
    source, target = np.asarray(source, float), np.asarray(target, float)
    mean_s, mean_t = source.mean(0), target.mean(0)
    s, t = source - mean_s, target - mean_t
    covariance = t.T @ s / len(source)
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1
    rotation = u @ sign @ vt
    scale = np.trace(np.diag(singular) @ sign) / s.var(0).sum()
    matrix = np.zeros((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = mean_t - scale * rotation @ mean_s
    return matrix


def box_transform(box, crop_size: int, margin: float) -> np.ndarray:
    """Map a face box (x, y, w, h; top-left) to the crop: its square, centred, with margin."""
    x, y, w, h = (float(v) for v in box)
    side = max(w, h) * (1 + 2 * margin)
    scale = crop_size / side
    cx, cy = x + w / 2, y + h / 2
    return np.array([[scale, 0, crop_size / 2 - scale * cx],
                     [0, scale, crop_size / 2 - scale * cy]])


def centre_transform(height: int, width: int, crop_size: int) -> np.ndarray:
    """The central square of a frame onto the crop (used when no face was found)."""
    side = min(height, width)
    return box_transform(((width - side) / 2, (height - side) / 2, side, side), crop_size, 0.0)


def warp(image: np.ndarray, matrix: np.ndarray, crop_size: int) -> np.ndarray:
    return cv2.warpAffine(image, matrix, (crop_size, crop_size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


class LandmarkDetector:
    """dlib HOG face detector + 5-point shape predictor (weights from face_recognition_models)."""

    def __init__(self, upsample: int = 0):
        import dlib

        # Importing face_recognition_models fails on current setuptools (no
        # pkg_resources); its models folder is found without importing it.
        spec = importlib.util.find_spec("face_recognition_models")
        if spec is None:
            raise RuntimeError("face_recognition_models is not installed (pip install "
                               "face-recognition-models)")
        models = Path(spec.submodule_search_locations[0]) / "models"
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
        self.upsample = upsample
        self._rectangle = dlib.rectangle

    def __call__(self, image: np.ndarray) -> np.ndarray | None:
        """5x2 landmarks (x, y) of the largest face of an RGB or grey image, or None."""
        grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        grey = np.ascontiguousarray(grey)
        faces = self.detector(grey, self.upsample)
        if len(faces) == 0:
            return None
        height, width = grey.shape
        # the largest box; among equal ones the most central (DEPENDENCIES.md: false positives are small)
        face = max(faces, key=lambda r: (r.area(), -abs(r.center().x - width / 2)
                                         - abs(r.center().y - height / 2)))
        shape = self.predictor(grey, face)
        return np.array([[shape.part(i).x, shape.part(i).y] for i in range(5)], float)


def read_face_locations(path: str | Path) -> dict[int, tuple[float, float, float, float]]:
    """Replay-Attack `face-locations` file: frame -> (x, y, w, h); no-face lines left out."""
    boxes = {}
    try:
        text = Path(path).read_text()
    except UnicodeDecodeError:
        raise MediaError(path, "not a text file of 'frame x y w h' lines") from None
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        try:
            if len(fields) != 5:
                raise ValueError
            frame, *box = (float(f) for f in fields)
        except ValueError:
            raise MediaError(path, f"line {number}: expected 'frame x y w h', got {line!r}") from None
        if box[2] > 0 and box[3] > 0:
            boxes[int(frame)] = tuple(box)
    return boxes


def fill_and_smooth(matrices: list[np.ndarray | None], source_frames: list[int],
                    smoothing: int) -> tuple[list[np.ndarray], list[bool]]:
    """Missing transforms take the nearest found one; then a moving average within runs.

    Similarity matrices [[a, -b, tx], [b, a, ty]] are closed under averaging,
    so the smoothed transforms are similarities too. Returns the transforms
    and a reused flag per frame.
    """
    found = [i for i, m in enumerate(matrices) if m is not None]
    filled, reused = [], []
    for i, matrix in enumerate(matrices):
        if matrix is None:
            nearest = min(found, key=lambda j: (abs(j - i), j))
            filled.append(matrices[nearest])
            reused.append(True)
        else:
            filled.append(matrix)
            reused.append(False)
    stack = np.stack(filled)
    smoothed = stack.copy()
    half = max(int(smoothing), 1) // 2
    for run in parquet_cache.consecutive_runs(source_frames):
        for i in run:
            lo, hi = max(run.start, i - half), min(run.stop, i + half + 1)
            smoothed[i] = stack[lo:hi].mean(0)
    return list(smoothed), reused


def align_video(frames: dict[str, list[dict]], backend: str, settings: dict, crop_size: int,
                detector: LandmarkDetector | None = None,
                boxes: dict[int, tuple] | None = None, box_scale: float = 1.0
                ) -> tuple[dict[str, list[np.ndarray]], list[set[str]], int]:
    """Aligned crops of one video.

    `frames[modality]` lists the video's sampled frames in order, as dicts
    with `image` and `source_frame`. Returns crops per modality, extra flags
    per position and the number of frames with a face found.
    """
    margin, smoothing = float(settings["margin"]), int(settings["smoothing"])
    reference = frames["color"] if "color" in frames else next(iter(frames.values()))
    n = len(reference)
    if backend == "precropped":
        crops = {m: [cv2.resize(f["image"], (crop_size, crop_size), interpolation=cv2.INTER_AREA)
                     for f in fs] for m, fs in frames.items()}
        return crops, [set() for _ in range(n)], n
    matrices: list[np.ndarray | None] = []
    for frame in reference:
        if backend == "detector":
            points = detector(frame["image"])
            matrices.append(None if points is None
                            else similarity(points, template(crop_size, margin)))
        elif backend == "annotations":
            box = boxes.get(frame["source_frame"])
            matrices.append(None if box is None
                            else box_transform(np.array(box) * box_scale, crop_size, margin))
        else:
            raise ValueError(f"unknown align backend {backend!r}: one of {BACKENDS}")
    n_found = sum(m is not None for m in matrices)
    if n_found == 0:
        height, width = reference[0]["image"].shape[:2]
        transforms = [centre_transform(height, width, crop_size)] * n
        flags = [{"no_face"} for _ in range(n)]
    else:
        transforms, reused = fill_and_smooth(matrices, [f["source_frame"] for f in reference],
                                             smoothing)
        flags = [{"face_reused"} if r else set() for r in reused]
    crops = {}
    ref_width = reference[0]["image"].shape[1]
    for modality, modality_frames in frames.items():
        crops[modality] = []
        for position, frame in enumerate(modality_frames):
            matrix = transforms[position].copy()
            matrix[:, :2] *= ref_width / frame["image"].shape[1]  # same geometry at another size
            crops[modality].append(warp(frame["image"], matrix, crop_size))
    return crops, flags, n_found


def original_width(path: Path) -> int:
    """Width of a video as stored (face-location boxes are in its pixels)."""
    import av

    try:
        with av.open(str(path)) as container:
            return container.streams.video[0].width
    except (av.error.FFmpegError, IndexError) as error:
        raise MediaError(path, f"cannot read the video size: {error}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    shard_stage.add_arguments(parser, cache_shard("<dataset>", "static", "<i>-of-<n>").as_posix())
    parser.add_argument("--frames", type=Path, default=None,
                        help="read the frames from this shard of `fas extract` (e.g. "
                             f"{frames_shard('<dataset>', '<i>-of-<n>').as_posix()}); by default "
                             "each video of the shard is sampled (`extract:` section) and "
                             "aligned in memory")
    shard_stage.add_source_arguments(parser, ", for annotation files")


def run(args: argparse.Namespace) -> int:
    job = ShardJob.from_args("align", args)
    settings, index_dir, root = job.settings, job.index_dir(args.index), job.root(args.root)
    out = args.out or cache_shard(job.dataset, "static", job.shard)
    backend = per_dataset(settings["backend"], job.dataset)
    size = crop_size(job.params, job.dataset)
    manifest_path = index_dir / "manifest.parquet"
    manifest = pd.read_parquet(manifest_path).set_index("video_id")
    detector = LandmarkDetector(int(settings["upsample"])) if backend == "detector" else None

    def align(video_id: str, rows: list[dict]) -> list[dict]:
        if video_id not in manifest.index:
            raise MediaError(video_id, f"not in {manifest_path}")
        item = manifest.loc[video_id]
        media_path = root / str(item.get("path_color") or "")
        frames = {}
        for row in rows:
            frames.setdefault(row["modality"], []).append(
                {"image": row["image"], "source_frame": row["source_frames"][0]})
        boxes, box_scale = None, 1.0
        try:
            if backend == "annotations":
                if not isinstance(item.get("path_annotation"), str):
                    raise MediaError(media_path, "no face-location file in the manifest")
                boxes = read_face_locations(root / item["path_annotation"])
                box_scale = rows[0]["width"] / original_width(media_path)
            crops, extra, n_found = align_video(frames, backend, settings, size,
                                                detector, boxes, box_scale)
        except OSError as error:
            raise MediaError(media_path, str(error)) from None
        if n_found == 0:
            job.report.add(media_path, "no face found in any sampled frame",
                           "centre crop, flagged no_face")
        positions: dict[str, int] = {}
        out_rows = []
        for row in rows:
            position = positions.setdefault(row["modality"], 0)
            positions[row["modality"]] += 1
            out_rows.append(parquet_cache.image_row(
                video_id, row["modality"], "static", row["index"],
                crops[row["modality"]][position], source_frames=row["source_frames"],
                timestamps=row["timestamps"], flags=set(row["flags"]) | extra[position],
                labels=row))
        return out_rows

    if args.frames:
        frames_path = job.input(args.frames, "--frames", frames_shard(job.dataset, job.shard),
                                "extract")
        n_videos = len(set(parquet_cache.read_meta([frames_path]).column("video_id").to_pylist()))
        return job.run(out, parquet_cache.iter_video_rows(frames_path), n_videos, align)
    videos, extract = shard_sampler(job, index_dir, root)

    def extract_and_align(video_id: str, item: dict) -> list[dict]:
        return align(video_id, parquet_cache.with_images(extract(video_id, item)))

    return job.run(out, videos, len(videos), extract_and_align)
