"""Writing frames: encoded videos through the ffmpeg binary, JPEG frame folders.

Encoders run single-threaded with bit-exact flags and no metadata, so the same
frames give byte-identical files.
"""

from __future__ import annotations

import fcntl
import subprocess
from pathlib import Path

import cv2
import numpy as np

JPEG_QUALITY = 92
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
# Container -> encoder arguments: H.264 for QuickTime / MP4, Motion-JPEG for AVI.
CODECS = {
    ".mov": ["-c:v", "libx264", "-preset", "ultrafast", "-crf", "18", "-pix_fmt", "yuv420p",
             "-x264-params", "threads=1:sliced-threads=0"],
    ".mp4": ["-c:v", "libx264", "-preset", "ultrafast", "-crf", "18", "-pix_fmt", "yuv420p",
             "-x264-params", "threads=1:sliced-threads=0"],
    ".avi": ["-c:v", "mjpeg", "-q:v", "3", "-pix_fmt", "yuvj420p"],
}


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


class VideoWriter:
    """Stream RGB frames into an ffmpeg process writing `path`."""

    def __init__(self, path: str | Path, size: tuple[int, int], fps: float):
        path = Path(path)
        if path.suffix not in CODECS:
            raise ValueError(f"{path}: no encoder for container {path.suffix!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        w, h = size
        cmd = [ffmpeg_exe(), "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
               "-s", f"{w}x{h}", "-r", f"{fps:g}", "-i", "-", "-an", "-threads", "1",
               *CODECS[path.suffix], "-map_metadata", "-1", "-fflags", "+bitexact",
               "-flags:v", "+bitexact", str(path)]
        self.path = path
        self.process = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        try:  # a large pipe lets rendering run on while ffmpeg starts and encodes
            fcntl.fcntl(self.process.stdin.fileno(), F_SETPIPE_SZ, 1 << 20)
        except OSError:
            pass

    def write(self, frame: np.ndarray) -> None:
        self.process.stdin.write(np.ascontiguousarray(frame, np.uint8).tobytes())

    def close(self) -> None:
        _, err = self.process.communicate()
        if self.process.returncode:
            raise RuntimeError(f"{self.path}: ffmpeg failed: {err.decode(errors='replace').strip()}")

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, kind, *_):
        if kind is None:
            self.close()
        else:
            self.process.kill()
            self.process.wait()


def encode_jpeg(image: np.ndarray) -> bytes:
    """JPEG bytes of an RGB or grey uint8 image."""
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return data.tobytes()


def placeholder_video(suffix: str, size: tuple[int, int] = (16, 16)) -> bytes:
    """A valid one-frame grey video, the stand-in media of a layout-only tree."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / f"placeholder{suffix}"
        with VideoWriter(target, size, 25) as writer:
            writer.write(np.full((size[1], size[0], 3), 128, np.uint8))
        return target.read_bytes()
