"""Frame sampling and decoding (`fas extract`).

The packet index of a video (PyAV, demuxed, not decoded) gives every frame's
display position, timestamp and the keyframes; the sampling policy picks frame
numbers from it. Two decoders (`extract.decoder`) then decode only those
frames, with identical results:

- `pyav` (default, faster): ffmpeg's libraries in-process; each wanted frame is
  reached by seeking to its keyframe when that is ahead of the decoder, else by
  decoding forward; non-reference frames that are not wanted are skipped.
- `ffmpeg`: the ffmpeg command-line tool (ffmpeg-python; the system ffmpeg or
  imageio-ffmpeg's), one process per video and modality, whose `select` filter
  keeps the wanted frames and pipes them out as raw RGB or grey pixels.

Downscaling, padding and rows are common. bench/bench_extract.py measures both
against ffmpeg per-sample input seeking and OpenCV decoding every frame
(docs/preprocessing.md). Frame-folder datasets (`media == frames`) are read
directly with the same policy.

Output: a cache-schema shard of sampled frames (kind `static`, `index` =
position in the sampled sequence), long side <= extract.max_side. The
pipeline itself never writes it: `fas align` samples each video through
`shard_sampler` and aligns its frames in memory.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from fas import shard_stage
from fas.io import FailureReport
from fas.lazy import lazy_import
from fas.paths import frames_shard
from fas.shard_stage import MediaError, ShardJob

cv2 = lazy_import("cv2")
pd = lazy_import("pandas")
parquet_cache = lazy_import("fas.cache")

MODALITIES = ("color", "depth", "ir")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
JPEG_SOI, JPEG_SOS, JPEG_EOI = b"\xff\xd8", b"\xff\xda", b"\xff\xd9"  # ITU-T T.81 markers
DECODERS = ("pyav", "ffmpeg")
FFMPEG_BATCH = 2000  # frames per ffmpeg process


@dataclass(frozen=True)
class Sample:
    """Which source frames to take: `frames[k]` at position k; `padded[k]` marks repeats."""

    frames: tuple[int, ...]
    padded: tuple[bool, ...]


def sample_frames(n_frames: int, policy: dict) -> Sample:
    """Positions (0-based, into the available frames) chosen by a sampling policy.

    Modes: `evenly` (n evenly spaced), `every_k` (k), `first_n` (n), `clips`
    (n_clips clips of clip_len consecutive frames, evenly placed). A video too
    short for the policy repeats its last frame, marked padded.
    """
    if n_frames < 1:
        raise ValueError("a video needs at least one frame")
    mode = policy["mode"]
    if mode == "evenly":
        n = int(policy["n"])
        if n_frames >= n:
            return _plain(np.linspace(0, n_frames - 1, n).round().astype(int))
        return _padded(np.arange(n_frames), n)
    if mode == "every_k":
        return _plain(np.arange(0, n_frames, int(policy["k"])))
    if mode == "first_n":
        n = int(policy["n"])
        return _padded(np.arange(min(n, n_frames)), n)
    if mode == "clips":
        n_clips, clip_len = int(policy["n_clips"]), int(policy["clip_len"])
        if n_frames < clip_len:
            one = _padded(np.arange(n_frames), clip_len)
            return Sample(one.frames * n_clips, one.padded * n_clips)
        starts = np.linspace(0, n_frames - clip_len, n_clips).round().astype(int)
        return _plain(np.concatenate([np.arange(s, s + clip_len) for s in starts]))
    raise ValueError(f"unknown sampling mode {mode!r}: evenly | every_k | first_n | clips")


def _plain(frames: np.ndarray) -> Sample:
    return Sample(tuple(int(f) for f in frames), (False,) * len(frames))


def _padded(frames: np.ndarray, length: int) -> Sample:
    extra = length - len(frames)
    if extra <= 0:
        return _plain(frames)
    return Sample(tuple(int(f) for f in frames) + (int(frames[-1]),) * extra,
                  (False,) * len(frames) + (True,) * extra)


def scaled_size(height: int, width: int, max_side: int) -> tuple[int, int]:
    """(height, width) with the long side at most max_side, aspect kept."""
    scale = min(1.0, max_side / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


@dataclass
class VideoIndex:
    """Display-ordered frame list of a video, from its packets (nothing decoded).

    `pts` is None when some packets carry no presentation timestamp, or only
    guessed ones (AVI files with B-frames): such videos are decoded
    sequentially and numbered in output order.
    """

    pts: np.ndarray | None  # presentation timestamps, sorted (display order)
    keyframe: np.ndarray    # bool per frame
    time_base: float
    start: int
    declared: int           # frame count in the container header (0 if unknown)
    count: int              # readable frames
    rate: float             # average frame rate (timestamps of videos without pts)


def index_video(path: str | Path):
    """Open a video and index its frames; raises MediaError on bad input."""
    import av

    path = Path(path)
    if not path.is_file():
        raise MediaError(path, "file not found")
    if path.stat().st_size == 0:
        raise MediaError(path, "zero-byte file")
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as error:
        raise MediaError(path, f"cannot open: {error}") from None
    if not container.streams.video:
        container.close()
        raise MediaError(path, "no video stream")
    stream = container.streams.video[0]
    if stream.codec_context is None or stream.codec_context.codec is None:
        container.close()
        raise MediaError(path, "unsupported codec")
    pts, keys, corrupt = [], [], False
    try:
        for packet in container.demux(stream):
            if packet.is_corrupt:  # a cut-off last packet is corrupt
                corrupt = True
                continue
            if packet.size == 0:
                continue
            pts.append(packet.pts)
            keys.append(packet.is_keyframe)
    except av.error.FFmpegError as error:
        container.close()
        raise MediaError(path, f"unreadable stream: {error}") from None
    if not pts:
        container.close()
        raise MediaError(path, "no frames")
    # AVI stores decode times only: with B-frames libavformat's guessed pts are in decode order
    guessed = container.format.name == "avi" and stream.codec_context.has_b_frames
    timed = None not in pts and not guessed
    order = np.argsort(pts, kind="stable") if timed else np.arange(len(pts))
    if timed and (corrupt or len(pts) < (stream.frames or 0)):
        order = order[:dense_prefix(np.asarray(pts)[order])]
    index = VideoIndex(np.asarray(pts, np.int64)[order] if timed else None,
                       np.asarray(keys, bool)[order], float(stream.time_base or 0),
                       int(stream.start_time or 0), int(stream.frames or 0), len(order),
                       float(stream.average_rate or stream.guessed_rate or 0))
    return container, stream, index


def dense_prefix(sorted_pts: np.ndarray) -> int:
    """Length of the run of frames before the first missing one (a truncated file).

    Packets arrive in decode order, so a cut file can hold a frame whose
    display predecessors are gone; numbering past that gap would be wrong.
    """
    steps = np.diff(sorted_pts)
    if not len(steps):
        return len(sorted_pts)
    gaps = np.flatnonzero(steps > 1.5 * np.median(steps))
    return int(gaps[0]) + 1 if len(gaps) else len(sorted_pts)


def decode_video(path: str | Path, frames: list[int], max_side: int, grey: bool = False,
                 decoder: str = "pyav") -> tuple[dict[int, np.ndarray], dict[int, float], int]:
    """Decode the given frame numbers (display order, from 0) of a video, exactly.

    Both decoders (`pyav`: decode_pyav, `ffmpeg`: decode_ffmpeg) get the frame
    numbers from the same packet index and return the same full-size RGB (or
    grey) frames; timestamps and downscaling (long side <= max_side, area
    interpolation) are common. Returns images (HxWx3 or HxW uint8), timestamps
    in seconds and the video's frame count. Frames beyond the end are ignored.
    """
    if decoder not in DECODERS:
        raise ValueError(f"unknown decoder {decoder!r}: {' | '.join(DECODERS)}")
    container, stream, index = index_video(path)
    wanted = sorted({f for f in frames if 0 <= f < index.count})
    try:
        if decoder == "ffmpeg":
            size = (stream.codec_context.height, stream.codec_context.width)
            container.close()
            images = decode_ffmpeg(path, wanted, size, grey)
        elif index.pts is None:
            container.close()
            images = decode_sequentially(path, wanted, grey)
        else:
            images = decode_pyav(path, container, stream, index, wanted, grey)
    finally:
        container.close()
    check_complete(path, wanted, images)
    if index.pts is None:  # AVI-like: constant frame rate, frames numbered in output order
        times = {f: f / (index.rate or 1) for f in wanted}
    else:
        times = {f: (int(index.pts[f]) - index.start) * index.time_base for f in wanted}
    return {f: downscale(image, max_side) for f, image in images.items()}, times, index.count


def decode_pyav(path, container, stream, index: VideoIndex, wanted: list[int], grey: bool
                ) -> dict[int, np.ndarray]:
    """Wanted frames through PyAV, seeking by the packet index.

    The decoder seeks to the keyframe before a wanted frame only when that
    keyframe lies ahead (else it decodes on), and skips non-reference frames
    that are not wanted (nothing depends on them).
    """
    import av

    stream.thread_type = "SLICE"  # frame threading adds a pipeline refill at every seek
    codec = stream.codec_context
    position_of = {int(p): i for i, p in enumerate(index.pts)}
    keyframes = np.flatnonzero(index.keyframe)
    targets = set(wanted)

    def keyframe_of(frame: int) -> int:
        before = keyframes[keyframes <= frame]
        return int(before[-1]) if len(before) else 0

    images: dict[int, np.ndarray] = {}
    pending = 0  # index into wanted of the next frame still to get
    try:
        while pending < len(wanted):
            start = keyframe_of(wanted[pending])
            container.seek(int(index.pts[start]), stream=stream, backward=True)
            got_any, furthest = False, -1  # furthest display position sent to the decoder
            for packet in container.demux(stream):
                if packet.is_corrupt:
                    continue
                position = position_of.get(packet.pts) if packet.pts is not None else None
                furthest = max(furthest, -1 if position is None else position)
                codec.skip_frame = "NONREF" if position is not None and position not in targets \
                    else "DEFAULT"
                for frame in codec.decode(packet if packet.size else None):
                    number = position_of.get(frame.pts)
                    if number in targets and number not in images:
                        images[number] = to_array(frame, grey)
                        got_any = True
                while pending < len(wanted) and wanted[pending] in images:
                    pending += 1
                if pending == len(wanted) or keyframe_of(wanted[pending]) > furthest + 1:
                    break  # done, or the next wanted frame is reached faster by seeking
            if not got_any:
                break
    except av.error.FFmpegError as error:
        raise MediaError(path, f"undecodable: {error}") from None
    return images


def decode_sequentially(path, wanted: list[int], grey: bool) -> dict[int, np.ndarray]:
    """decode_pyav for videos without packet timestamps: every frame in output order."""
    import av

    targets, images = set(wanted), {}
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            for number, frame in enumerate(container.decode(stream)):
                if number in targets:
                    images[number] = to_array(frame, grey)
                if len(images) == len(targets):
                    break
        except av.error.FFmpegError as error:
            raise MediaError(path, f"undecodable: {error}") from None
    return images


def to_array(frame, grey: bool) -> np.ndarray:
    """A decoded PyAV frame as full-size RGB (or grey) uint8 (swscale, as decode_ffmpeg)."""
    return frame.reformat(format="gray" if grey else "rgb24",
                          interpolation="BILINEAR").to_ndarray()


def ffmpeg_exe() -> str:
    """The ffmpeg command: the system's if on PATH, else imageio-ffmpeg's bundled binary."""
    import shutil

    import imageio_ffmpeg

    return shutil.which("ffmpeg") or imageio_ffmpeg.get_ffmpeg_exe()


def select_expression(frames: list[int]) -> str:
    """ffmpeg `select` expression taking the given sorted frame numbers (runs as `between`)."""
    terms, start = [], 0
    for i in range(1, len(frames) + 1):
        if i == len(frames) or frames[i] != frames[i - 1] + 1:
            first, last = frames[start], frames[i - 1]
            terms.append(f"eq(n,{first})" if first == last else f"between(n,{first},{last})")
            start = i
    return "+".join(terms)


def decode_ffmpeg(path, wanted: list[int], size: tuple[int, int], grey: bool
                  ) -> dict[int, np.ndarray]:
    """Wanted frames through one ffmpeg process (ffmpeg-python), as raw pixels on a pipe.

    The `select` filter keeps frame `n` (decoder output order, which is display
    order, as the packet index counts) and ffmpeg stops after the last wanted
    frame. Frames of `size` (height, width) from the index; the pixel
    conversion is the one PyAV uses, so both decoders give identical frames.
    ffmpeg's error output goes into the MediaError of an undecodable video.
    """
    import ffmpeg

    height, width = size
    if not height or not width:
        raise MediaError(path, "unknown frame size")
    channels = 1 if grey else 3
    images: dict[int, np.ndarray] = {}
    # batches keep one command-line argument (the expression) far below Linux's 128 KiB
    for batch in (wanted[i:i + FFMPEG_BATCH] for i in range(0, len(wanted), FFMPEG_BATCH)):
        command = (ffmpeg.input(str(path))["v:0"]  # the stream PyAV indexed
                   .filter("select", select_expression(batch))
                   .filter("scale", flags="bilinear")
                   .output("pipe:", format="rawvideo", pix_fmt="gray" if grey else "rgb24",
                           fps_mode="passthrough", **{"frames:v": len(batch)})
                   .global_args("-nostdin", "-hide_banner", "-loglevel", "error"))
        try:
            out, err = command.run(cmd=ffmpeg_exe(), capture_stdout=True, capture_stderr=True)
        except ffmpeg.Error as error:
            raise MediaError(path, f"undecodable: ffmpeg failed: {stderr_tail(error.stderr)}"
                             ) from None
        frame_bytes = height * width * channels
        if len(out) % frame_bytes:
            raise MediaError(path, f"undecodable: ffmpeg gave {len(out)} bytes, not whole "
                                   f"{width}x{height} frames: {stderr_tail(err)}")
        decoded = np.frombuffer(bytearray(out), np.uint8).reshape(-1, height, width, channels)
        images.update(zip(batch, decoded[..., 0] if grey else decoded))
        if len(decoded) < len(batch):
            check_complete(path, batch, images, f"; ffmpeg: {stderr_tail(err)}")
    return images


def stderr_tail(stderr: bytes | None, last: int = 2) -> str:
    """ffmpeg's first and last error lines, without memory addresses (reports stay reproducible)."""
    text = re.sub(r" @ 0x[0-9a-f]+", "", (stderr or b"").decode(errors="replace"))
    lines = list(dict.fromkeys(line.strip() for line in text.splitlines() if line.strip()))
    return " | ".join(lines[:1] + lines[1:][-last:])[:400] or "no error output"


def downscale(image: np.ndarray, max_side: int) -> np.ndarray:
    """Long side at most max_side (area interpolation), for every decoder and image folders."""
    height, width = scaled_size(*image.shape[:2], max_side)
    if (height, width) == image.shape[:2]:
        return image
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def check_complete(path, wanted: list[int], images: dict, detail: str = "") -> None:
    missing = [f for f in wanted if f not in images]
    if missing:
        raise MediaError(path, f"undecodable: frames {missing[:5]} could not be decoded "
                               f"(truncated file?){detail}")


def count_video_frames(path: str | Path, report: FailureReport | None = None) -> int:
    """Frame count from the packet index (no decoding); a truncated file is reported."""
    container, _, index = index_video(path)
    container.close()
    if report is not None and index.declared > index.count:
        report.add(path, f"truncated: {index.count} of {index.declared} frames readable",
                   "using the readable frames")
    return index.count


def folder_frames(folder: str | Path, listed: set[str] | None = None) -> dict[int, Path]:
    """Frame number -> file of a folder of numbered images (`0001.jpg`, ...), only the `listed` names if given."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MediaError(folder, "frame folder not found")
    found = {}
    for path in folder.iterdir():
        if (path.suffix.lower() in IMAGE_SUFFIXES and re.fullmatch(r"\d+", path.stem)
                and (listed is None or path.name in listed)):
            found[int(path.stem)] = path
    if not found:
        raise MediaError(folder, "no numbered image frames" + (" among the listed ones" if listed else ""))
    return dict(sorted(found.items()))


def read_image(path: Path, max_side: int, grey: bool) -> np.ndarray:
    """One frame file, decoded by OpenCV; a truncated or undecodable file is a MediaError.

    OpenCV decodes a JPEG cut short with grey padding and no error (libjpeg
    only warns), so a JPEG is first checked for its end-of-image marker after
    its last start-of-scan marker (ITU-T T.81: entropy-coded data never holds
    a marker byte pair, so a complete file has one, even with trailing bytes).
    This costs two byte searches; decoding with Pillow, which does report
    truncation, would double the decoding time.
    """
    try:
        data = path.read_bytes()
    except OSError as error:
        raise MediaError(path, f"unreadable image: {error.strerror}") from None
    if data[:2] == JPEG_SOI and data.rfind(JPEG_EOI) < data.rfind(JPEG_SOS):
        raise MediaError(path, f"truncated JPEG: no end-of-image marker ({len(data)} bytes)")
    image = cv2.imdecode(np.frombuffer(data, np.uint8),
                         cv2.IMREAD_GRAYSCALE if grey else cv2.IMREAD_COLOR)
    if image is None:
        raise MediaError(path, "undecodable image")
    if not grey:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return downscale(image, max_side)


def read_sampled_frames(listings: dict[str, dict[int, Path]], numbers: list[int], policy: dict,
                        max_side: int, report: FailureReport) -> tuple[Sample, list[int], dict]:
    """Sample frame numbers and read them from every modality's folder.

    A frame file that cannot be used (truncated, undecodable) is reported and
    its frame number dropped from all modalities; sampling is redone over the
    frames left. Returns the sample, the chosen frame numbers and the images
    by (modality, frame number).
    """
    usable, images = list(numbers), {}
    while True:
        sample = sample_frames(len(usable), policy)
        chosen = [usable[p] for p in sample.frames]
        try:
            for modality, listing in listings.items():
                for number in dict.fromkeys(chosen):
                    if (modality, number) not in images:
                        images[modality, number] = read_image(listing[number], max_side,
                                                              grey=modality != "color")
            return sample, chosen, images
        except MediaError as error:
            report.add(error.path, error.reason, "frame skipped")
            usable.remove(next(number for listing in listings.values()
                               for number, path in listing.items() if str(path) == error.path))
            if not usable:
                raise MediaError(error.path, f"{error.reason}; no usable frame left") from None


def extract_item(item: dict, root: Path, policy: dict, max_side: int, frames_fps: float,
                 max_frames: int | None, report: FailureReport, decoder: str = "pyav",
                 listed: set[str] | None = None) -> list[dict]:
    """Cache rows of the sampled frames of one manifest row (every modality).

    Videos are decoded by `decoder` (pyav | ffmpeg, see decode_video). Frame
    folders keep only the frame files `listed` by image lists, when given; a
    single image (`media == image`) is a one-frame video.

    Recoverable problems (gaps, unequal modality lengths, padding) are added to
    `report`; a MediaError means the video is unusable.
    """
    paths = {m: root / item[f"path_{m}"] for m in MODALITIES
             if isinstance(item.get(f"path_{m}"), str) and item[f"path_{m}"]}
    if not paths:
        raise MediaError(item["video_id"], "manifest row has no media path")
    labels = {k: item[k] for k in ("is_live", "pai", "subject")}
    if item["media"] in ("frames", "image"):
        listings = {m: folder_frames(p, listed) if item["media"] == "frames" else {0: p} for m, p in paths.items()}
        numbers = sorted(set.intersection(*(set(listing) for listing in listings.values())))
        for modality, listing in listings.items():
            if len(listing) != len(numbers):
                report.add(paths[modality], f"{len(listing)} frames, other modalities "
                           f"{len(numbers)} in common: using the common ones", "truncated")
            expected = set(range(min(listing), max(listing) + 1))
            gaps = sorted(expected - set(listing))
            if gaps and listed is None:  # frames left out by an image list are no gap
                report.add(paths[modality], f"missing frame(s) {gaps[:10]} in sequence",
                           "gap kept, frames renumbered by file name")
        if not numbers:
            raise MediaError(next(iter(paths.values())), "modalities share no frame number")
    else:
        counts = {m: count_video_frames(p, report) for m, p in paths.items()}
        n = min(counts.values())
        if len(set(counts.values())) > 1:
            report.add(paths["color"] if "color" in paths else next(iter(paths.values())),
                       f"modalities have different frame counts {counts}", f"using first {n}")
        numbers = list(range(n))
    if max_frames is not None:
        numbers = numbers[:max_frames]
    if item["media"] in ("frames", "image"):
        sample, chosen, images = read_sampled_frames(listings, numbers, policy, max_side, report)
    else:
        sample = sample_frames(len(numbers), policy)
        chosen, images = [numbers[p] for p in sample.frames], {}
    if any(sample.padded):
        report.add(next(iter(paths.values())), f"{len(set(chosen))} frames, fewer than the "
                   f"policy asks ({len(sample.frames)}): last frame repeated", "padded")
    rows = []
    for modality, path in paths.items():
        grey = modality != "color"
        if item["media"] in ("frames", "image"):
            cache = {number: images[modality, number] for number in chosen}
            times = {number: number / frames_fps for number in cache}
        else:
            cache, times, _ = decode_video(path, chosen, max_side, grey, decoder)
        for position, (number, padded) in enumerate(zip(chosen, sample.padded)):
            rows.append(parquet_cache.image_row(
                item["video_id"], modality, "static", position, cache[number],
                source_frames=[number], timestamps=[times[number]],
                flags=["padded"] if padded else [], labels=labels))
    return sorted(rows, key=lambda r: (r["modality"], r["index"]))


def video_listed_frames(protocols: pd.DataFrame | None) -> dict[str, set[str]]:
    """Frames named by image lists, per video whose every protocol row names some (union)."""
    if protocols is None or "frames" not in protocols:
        return {}
    listed: dict[str, set[str]] = {}
    whole = set()
    for video_id, frames in zip(protocols["video_id"].astype(str), protocols["frames"]):
        if frames is None:
            whole.add(video_id)
        else:
            listed.setdefault(video_id, set()).update(frames)
    return {video_id: frames for video_id, frames in listed.items() if video_id not in whole}


def video_max_frames(protocols: pd.DataFrame | None) -> dict[str, int]:
    """Smallest non-null max_frames per video over its protocol rows (SiW p1)."""
    if protocols is None or "max_frames" not in protocols:
        return {}
    limited = protocols.dropna(subset=["max_frames"])
    return {str(k): int(v) for k, v in limited.groupby("video_id")["max_frames"].min().items()}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    shard_stage.add_arguments(parser, frames_shard("<dataset>", "<i>-of-<n>").as_posix())
    shard_stage.add_source_arguments(parser, "")


def shard_sampler(job: ShardJob, index_dir: Path, root: Path
                  ) -> tuple[list[tuple[str, dict]], Callable[[str, dict], list[dict]]]:
    """The videos of a job's shard (manifest rows) and the function sampling one into cache rows.

    `fas extract` writes the rows to a frames shard; `fas align` aligns them
    as they come, so the frames never reach the disk.
    """
    settings = job.params["extract"]
    manifest = pd.read_parquet(index_dir / "manifest.parquet")
    protocols_path = index_dir / "protocols.parquet"
    protocols = pd.read_parquet(protocols_path) if protocols_path.exists() else None
    limits = video_max_frames(protocols) if settings["max_frames"] == "protocol" else {}
    listed = video_listed_frames(protocols)
    items = {r["video_id"]: r for r in manifest.to_dict("records")}

    def extract(video_id: str, item: dict) -> list[dict]:
        return extract_item(item, root, settings["sampling"][job.params["preset"]],
                            int(settings["max_side"]),
                            float(settings["frames_fps"]), limits.get(video_id), job.report,
                            settings["decoder"], listed.get(video_id))

    return [(v, items[v]) for v in job.shard.members(items)], extract


def run(args: argparse.Namespace) -> int:
    job = ShardJob.from_args("extract", args)
    videos, extract = shard_sampler(job, job.index_dir(args.index), job.root(args.root))
    return job.run(args.out or frames_shard(job.dataset, job.shard), videos, len(videos), extract)
