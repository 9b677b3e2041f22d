"""Face alignment: transforms with known answers, synthetic landmarks, a real photograph."""

import json
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest
import skimage.data

from fas.align import (LandmarkDetector, align_video, box_transform, fill_and_smooth,
                       read_face_locations, similarity, template)
from fas.cache import decode_pixels, image_row, write_shard
from fas.shard_stage import MediaError
from fas.cli import main as fas_main
from preprocess_media import manifest_row, write_index, write_params

SETTINGS = {"margin": 0.2, "smoothing": 1}


@pytest.fixture(scope="module")
def detector():
    return LandmarkDetector(upsample=0)


def _apply(matrix, points):
    return np.c_[points, np.ones(len(points))] @ matrix.T


def test_similarity_recovers_a_known_transform():
    angle, scale, shift = 0.3, 1.7, np.array([12.0, -5.0])
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    source = template(112, 0.2)
    target = source @ rotation.T + shift
    matrix = similarity(source, target)
    assert np.allclose(matrix[:, :2], rotation) and np.allclose(matrix[:, 2], shift)


def test_template_with_margin_sits_inside_the_crop():
    points = template(112, 0.2)
    assert points.min() > 112 * 0.2 / 1.4 - 1e-9 and points.max() < 112 * 1.2 / 1.4
    assert np.allclose(template(224, 0.2), 2 * points)


class KnownLandmarks:
    """A stand-in detector returning the landmarks the frame was drawn with."""

    def __init__(self, points_by_frame):
        self.points = points_by_frame

    def __call__(self, image):
        return self.points.get(int(image[0, 0, 0]))


def _synthetic_face(number, rng, size=200):
    """A frame with 5 bright dots at known landmark positions (a random similarity of the template)."""
    angle, scale = rng.uniform(-0.4, 0.4), rng.uniform(0.8, 1.4)
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    points = template(100, 0.0) @ rotation.T + rng.uniform(30, 70, 2)
    image = np.zeros((size, size, 3), np.uint8)
    for x, y in points:
        cv2.circle(image, (int(round(x * 16)), int(round(y * 16))), 3 * 16, (255, 255, 255), -1,
                   lineType=cv2.LINE_AA, shift=4)
    image[0, 0, 0] = number
    return image, points


def test_synthetic_faces_land_on_the_template(tmp_path):
    rng = np.random.default_rng(0)
    frames, points = [], {}
    for number in range(1, 6):
        image, landmarks = _synthetic_face(number, rng)
        frames.append({"image": image, "source_frame": number * 10})
        points[number] = landmarks
    crops, flags, found = align_video({"color": frames}, "detector", SETTINGS, 112,
                                      KnownLandmarks(points))
    assert found == 5 and flags == [set()] * 5
    errors = []
    for crop in crops["color"]:
        grey = crop[:, :, 1].astype(float)
        for x, y in template(112, 0.2):
            window = grey[int(y) - 6:int(y) + 7, int(x) - 6:int(x) + 7]
            ys, xs = np.mgrid[int(y) - 6:int(y) + 7, int(x) - 6:int(x) + 7]
            centre = np.array([(xs * window).sum(), (ys * window).sum()]) / window.sum()
            errors.append(np.hypot(*(centre - (x, y))))
    assert max(errors) < 0.5  # pixels


def test_missing_faces_reuse_the_nearest_and_smoothing_stays_within_runs():
    a, b = np.eye(2, 3), 3 * np.eye(2, 3)
    filled, reused = fill_and_smooth([None, a, None, None, b], [0, 1, 2, 3, 4], smoothing=1)
    assert reused == [True, False, True, True, False]
    assert np.allclose(filled[2], a) and np.allclose(filled[3], b) and np.allclose(filled[0], a)
    smoothed, _ = fill_and_smooth([a, b, a, b], [0, 1, 50, 51], smoothing=3)
    assert np.allclose(smoothed[1], 2 * np.eye(2, 3))  # mean of a, b: the run 0-1 only
    assert np.allclose(smoothed[2], 2 * np.eye(2, 3))


def test_real_photograph_landmarks_follow_a_rotation(detector):
    image = skimage.data.astronaut()
    points = detector(image)
    assert points is not None
    assert points[0, 0] > points[1, 0] > points[4, 0] > points[3, 0] > points[2, 0]
    assert 90 < points[:4, 1].mean() < 115 and points[4, 1] > points[:4, 1].max()
    rotation = cv2.getRotationMatrix2D((256, 256), 12, 1.0)
    rotated = cv2.warpAffine(image, rotation, (512, 512))
    moved = detector(rotated)
    assert moved is not None
    error = np.hypot(*(moved - _apply(rotation, points)).T)
    assert error.max() < 5, error  # pixels, on a face about 60 pixels between eye corners
    crop = cv2.warpAffine(image, similarity(points, template(112, 0.2)), (112, 112))
    assert detector(cv2.resize(crop, (224, 224))) is not None


def test_annotation_boxes(tmp_path):
    path = tmp_path / "a.face"
    path.write_text("0 10 20 30 40\n1 0 0 0 0\n3 12 20 30 40\n")
    boxes = read_face_locations(path)
    assert boxes == {0: (10, 20, 30, 40), 3: (12, 20, 30, 40)}
    matrix = box_transform(boxes[0], 112, 0.0)
    assert np.allclose(_apply(matrix, [[25, 40], [5, 20], [45, 60]]), [[56, 56], [0, 0], [112, 112]])
    for bad in ("0 10 20\n", "0 10 20 x 40\n"):
        path.write_text(bad)
        with pytest.raises(MediaError, match="line 1: expected 'frame x y w h'"):
            read_face_locations(path)
    path.write_bytes(b"\xff\xfe\x00binary")  # a garbage file: reported, not a traceback
    with pytest.raises(MediaError, match="not a text file"):
        read_face_locations(path)


def _frames_shard(path, videos):
    rows = []
    for video_id, frames in videos.items():
        for modality, images in frames.items():
            for position, image in enumerate(images):
                rows.append(image_row(video_id, modality, "static", position, image,
                                      source_frames=[position], timestamps=[position / 25],
                                      labels={"is_live": True, "pai": "live", "subject": "s"}))
    write_shard(path, rows, 8)
    return path


def test_align_stage_detector_end_to_end(tmp_path, detector):
    face = skimage.data.astronaut()
    shifted = [np.roll(face, (5 * k, 3 * k), axis=(0, 1)) for k in range(4)]
    shifted[2] = np.zeros_like(face)  # a frame without a face
    depth = [f.mean(axis=2).astype(np.uint8)[::2, ::2] for f in shifted]  # half resolution
    noise = [np.random.default_rng(k).integers(0, 50, (120, 160, 3), dtype=np.uint8) for k in range(2)]
    frames = _frames_shard(tmp_path / "frames.parquet",
                           {"face": {"color": shifted, "depth": depth}, "none": {"color": noise}})
    index = write_index(tmp_path / "index", [manifest_row("face", color="face.mp4"),
                                             manifest_row("none", color="none.mp4")])
    params = write_params(tmp_path / "params.yaml", align={"crop_size": {"demo": {"default": 64}}, "smoothing": 1})
    out = tmp_path / "static-0-of-1.parquet"
    assert fas_main(["align", "test", "--frames", str(frames), "--index", str(index), "--root",
                     str(tmp_path), "--out", str(out), "--params", str(params)]) == 0
    table = pq.read_table(out)
    rows = table.drop_columns(["pixels"]).to_pylist()
    images = decode_pixels(table)
    assert all(img.shape[:2] == (64, 64) for img in images)
    face_color = [r["flags"] for r in rows if r["video_id"] == "face" and r["modality"] == "color"]
    assert face_color == [[], [], ["face_reused"], []]
    assert all(r["flags"] == ["no_face"] for r in rows if r["video_id"] == "none")
    by_key = {(r["video_id"], r["modality"], r["index"]): img for r, img in zip(rows, images)}
    colour_grey = by_key["face", "color", 0].mean(axis=2)
    assert np.corrcoef(colour_grey.ravel(), by_key["face", "depth", 0].ravel().astype(float))[0, 1] > 0.9
    failures = json.loads(Path(f"{out}.failures.json").read_text())["entries"]
    assert [Path(e["path"]).name for e in failures] == ["none.mp4"]


def test_align_stage_annotations_and_precropped(tmp_path):
    image = np.zeros((100, 200, 3), np.uint8)
    image[40:60, 90:110] = 255  # the "face": a white square
    frames = _frames_shard(tmp_path / "frames.parquet", {"v": {"color": [image, image, image]}})
    (tmp_path / "v.face").write_text("0 90 40 20 20\n1 0 0 0 0\n")
    write_index(tmp_path / "index", [manifest_row("v", color="v.mp4", annotation="v.face")])
    from preprocess_media import write_video
    write_video(tmp_path / "v.mp4", 3, height=100, width=200)
    for backend in ("annotations", "precropped"):
        params = write_params(tmp_path / "params.yaml", align={
            "crop_size": {"demo": {"default": 32}}, "margin": 0.0, "smoothing": 1, "backend": {"default": backend}})
        out = tmp_path / f"{backend}.parquet"
        assert fas_main(["align", "test", "--frames", str(frames), "--index", str(tmp_path / "index"),
                         "--root", str(tmp_path), "--out", str(out), "--params", str(params)]) == 0
        table = pq.read_table(out)
        crops = decode_pixels(table)
        if backend == "annotations":
            assert crops[0][2:30, 2:30].min() == 255  # the box fills the crop
            assert table.column("flags").to_pylist() == [[], ["face_reused"], ["face_reused"]]
        else:
            assert crops[0].shape == (32, 32, 3) and crops[0][:, :8].max() == 0


def test_crop_size_per_dataset():
    from fas.config import per_dataset

    assert per_dataset({"default": 96}, "cefa") == 96
    sizes = {"default": 112, "replay": 224}
    assert per_dataset(sizes, "replay") == 224 and per_dataset(sizes, "cefa") == 112
