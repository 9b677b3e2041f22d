"""Extraction of 16 evenly spaced frames from 30 s H.264 videos.

Ours, both decoders of fas.extract.decode_video: `pyav` (packet index, seek to
a frame's keyframe only when it is ahead of the decoder) and `ffmpeg` (one
ffmpeg process whose `select` filter keeps the wanted frames: the `select`
baseline below plus stopping after the last wanted frame and the packet
index's probing), against the plain ffmpeg `select` filter (one process,
decodes the whole file), ffmpeg input seeking (one process per sample), PyAV
keyframe seeking (seek, take the first decoded frame) and OpenCV decoding every
frame. Exactness is checked against OpenCV's decode-all, which counts frames
itself.
"""

from __future__ import annotations

import subprocess

import cv2
import numpy as np

from bench._util import OUT, best_time, peak_memory_mb, table
from fas.extract import decode_video, ffmpeg_exe, sample_frames

SIZES = [(640, 480), (1280, 720)]
GOPS = [30, 250]
SECONDS, FPS, N_SAMPLES = 30, 30, 16


def make_video(width: int, height: int, gop: int):
    """A 30 s test pattern (ffmpeg testsrc2) in H.264, cached in bench/out/."""
    path = OUT / f"testsrc_{width}x{height}_gop{gop}.mp4"
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i",
                        f"testsrc2=size={width}x{height}:rate={FPS}:duration={SECONDS}",
                        "-c:v", "libx264", "-preset", "veryfast", "-g", str(gop),
                        "-keyint_min", str(gop), "-pix_fmt", "yuv420p", str(path)], check=True)
    return path


def opencv_decode_all(path, frames):
    capture = cv2.VideoCapture(str(path))
    wanted, found, number = set(frames), {}, 0
    while capture.grab():
        if number in wanted:
            found[number] = cv2.cvtColor(capture.retrieve()[1], cv2.COLOR_BGR2RGB)
        number += 1
    capture.release()
    return found


def ffmpeg_select(path, frames, width, height):
    import ffmpeg

    expression = "+".join(f"eq(n,{f})" for f in frames)  # ffmpeg-python escapes the commas
    out, _ = (ffmpeg.input(str(path)).filter("select", expression)
              .output("pipe:", format="rawvideo", pix_fmt="rgb24", fps_mode="vfr")
              .run(cmd=ffmpeg_exe(), capture_stdout=True, capture_stderr=True))
    images = np.frombuffer(out, np.uint8).reshape(-1, height, width, 3)
    return dict(zip(frames, images))


def ffmpeg_input_seek(path, frames, width, height):
    import ffmpeg

    found = {}
    for frame in frames:
        out, _ = (ffmpeg.input(str(path), ss=f"{frame / FPS:.6f}")
                  .output("pipe:", vframes=1, format="rawvideo", pix_fmt="rgb24")
                  .run(cmd=ffmpeg_exe(), capture_stdout=True, capture_stderr=True))
        found[frame] = np.frombuffer(out, np.uint8).reshape(height, width, 3)
    return found


def pyav_keyframe_seek(path, frames):
    import av

    found = {}
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in frames:
            container.seek(int(frame / FPS / stream.time_base), stream=stream, backward=True)
            found[frame] = next(container.decode(stream)).to_ndarray(format="rgb24")
    return found


def same_frame(a: np.ndarray, b: np.ndarray) -> bool:
    """Same source frame: colour conversions differ slightly, other frames much more."""
    return np.mean(np.abs(a.astype(int) - b.astype(int)) > 24) < 1e-3


def main() -> None:
    rows = []
    for width, height in SIZES:
        for gop in GOPS:
            path = make_video(width, height, gop)
            frames = list(sample_frames(SECONDS * FPS, {"mode": "evenly", "n": N_SAMPLES}).frames)
            methods = {
                "fas (PyAV, keyframe-aware)": lambda: decode_video(path, frames, 10_000)[0],
                "fas (ffmpeg command, select)":
                    lambda: decode_video(path, frames, 10_000, decoder="ffmpeg")[0],
                "ffmpeg select filter": lambda: ffmpeg_select(path, frames, width, height),
                "ffmpeg input seek / sample": lambda: ffmpeg_input_seek(path, frames, width, height),
                "PyAV keyframe seek": lambda: pyav_keyframe_seek(path, frames),
                "OpenCV decode all": lambda: opencv_decode_all(path, frames),
            }
            truth = opencv_decode_all(path, frames)
            times, exactness = {}, {}
            for name, method in methods.items():
                result = method()
                exactness[name] = sum(same_frame(result[f], truth[f]) for f in frames)
                times[name] = best_time(method, repeats=2)
            ours = times["fas (PyAV, keyframe-aware)"]
            for name in methods:
                rows.append((f"{width}x{height}", gop, name, f"{times[name]:.3f}",
                             f"{exactness[name]}/{len(frames)}", f"{times[name] / ours:.2f}x"))
    print(table(rows, ("video", "GOP", "method", "seconds", "exact frames", "time / fas")))
    print("(ratios > 1: slower than fas; a method is exact when its frames are the requested ones)")
    print(peak_memory_mb())


if __name__ == "__main__":
    main()
