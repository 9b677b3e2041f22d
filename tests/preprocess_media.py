"""Generated media for the preprocessing tests: videos whose frames show their own number."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

BITS = 10


def numbered_frame(number: int, height: int = 48, width: int = 80) -> np.ndarray:
    """An RGB frame whose top row of BITS blocks spells `number` in binary (white = 1)."""
    frame = np.full((height, width, 3), 64, np.uint8)
    frame[height // 2:, :, 0] = (number * 7) % 256  # a colour that varies with the number
    block = width // BITS
    for bit in range(BITS):
        if number >> bit & 1:
            frame[: height // 2, bit * block:(bit + 1) * block] = 255
        else:
            frame[: height // 2, bit * block:(bit + 1) * block] = 0
    return frame


def read_number(image: np.ndarray) -> int:
    """The number drawn by numbered_frame (image possibly downscaled)."""
    grey = image if image.ndim == 2 else image.mean(axis=2)
    height, width = grey.shape
    block = width / BITS
    number = 0
    for bit in range(BITS):
        cell = grey[: height // 2 - 1, int(bit * block) + 1:int((bit + 1) * block) - 1]
        if cell.mean() > 128:
            number |= 1 << bit
    return number


def write_video(path: Path, n_frames: int, *, gop: int = 10, fps: int = 25,
                height: int = 48, width: int = 80, codec: str = "libx264",
                faststart: bool = False, open_gop: bool = False,
                frame_times_ms: list[int] | None = None) -> Path:
    """Encode numbered frames near-losslessly (x264 qp 1, 4:4:4, two B-frames between P-frames).

    `frame_times_ms` gives a variable frame rate: each frame's presentation time.
    """
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = width, height
        if frame_times_ms is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        if codec == "libx264":
            stream.pix_fmt = "yuv444p"
            # qp 1, not 0: x264's lossless mode turns B-frames off, and the tests need them
            params = "bframes=2:b-adapt=0" + (":open-gop=1" if open_gop else "")
            stream.options = {"qp": "1", "g": str(gop), "preset": "ultrafast",
                              "x264-params": params}
        else:
            stream.pix_fmt = "yuv420p"
        for number in range(n_frames):
            frame = av.VideoFrame.from_ndarray(numbered_frame(number, height, width), format="rgb24")
            if frame_times_ms is not None:
                frame.pts, frame.time_base = int(frame_times_ms[number]), Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_frame_folder(folder: Path, numbers, grey: bool = False) -> Path:
    """Numbered JPEG frames `0001.jpg`, ... in a folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for number in numbers:
        image = numbered_frame(number)
        image = image.mean(axis=2).astype(np.uint8) if grey else image[:, :, ::-1]
        cv2.imwrite(str(folder / f"{number:04d}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 98])
    return folder


def manifest_row(video_id: str, media: str = "video", *, color=None, depth=None, ir=None,
                 annotation=None, is_live: bool = True, pai: str = "live",
                 subject: str = "s1") -> dict:
    """One manifest.parquet row (docs/ARCHITECTURE.md) for tests."""
    return {"dataset": "test", "video_id": video_id, "subject": subject, "is_live": is_live,
            "pai": pai, "media": media, "path_color": color, "path_depth": depth,
            "path_ir": ir, "path_annotation": annotation, "session": None, "device": None,
            "ethnicity": None, "quality": None, "medium": None, "lighting": None}


def write_index(index_dir: Path, rows: list[dict], protocols: list[dict] | None = None) -> Path:
    """manifest.parquet (and protocols.parquet) for tests."""
    import pandas as pd

    index_dir.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_parquet(index_dir / "manifest.parquet")
    if protocols is not None:
        pd.DataFrame(protocols).to_parquet(index_dir / "protocols.parquet")
    return index_dir


def write_params(path: Path, **sections) -> Path:
    """params.yaml: the repository's with some sections replaced."""
    import yaml

    from fas.config import load_params

    params = load_params()
    for name, value in sections.items():
        params[name] = {**params.get(name, {}), **value}
    path.write_text(yaml.safe_dump(params))
    return path
