"""Eulerian magnification of whole face tracks into the cache (`fas magnify`).

MotionEnhancement magnifies motion before its CNN sees a frame. The temporal
band-pass needs the whole video to settle, so magnification runs here, once,
over every run of consecutive sampled colour frames of a video (with
`extract.sampling.paper` every frame: the whole face track), never per
training clip. The settings are `evm:` resolved through Wu et al.'s presets
(fas/evm_settings.py); rows are stored with kind `magnified`, read by the
motion method's clips.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from fas import shard_stage
from fas.cache import consecutive_runs, frame_rate, image_row, iter_video_rows, read_meta
from fas.evm_settings import resolve_evm
from fas.lazy import lazy_import
from fas.paths import cache_shard
from fas.shard_stage import MediaError, ShardJob

torch = lazy_import("torch")
evm_model = lazy_import("fas.models.evm")

DEFAULT_FPS = 30.0  # a run without timestamps that span time (a repeated frame)


def magnify_video(video_id: str, rows: list[dict], evm: dict) -> list[dict]:
    """`magnified` rows of one video's colour rows, each consecutive run magnified as a whole."""
    colour = sorted((r for r in rows if r["modality"] == "color"), key=lambda r: r["index"])
    if not colour:
        raise MediaError(video_id, "no colour frames to magnify")
    frames = [int(r["source_frames"][0]) for r in colour]
    times = [float(r["timestamps"][0]) for r in colour]
    out = []
    for run in consecutive_runs(frames):
        members = colour[run.start:run.stop]
        stack = torch.from_numpy(np.stack([r["image"] for r in members])).permute(0, 3, 1, 2)
        fps = frame_rate(frames[run.start:run.stop], times[run.start:run.stop]) or DEFAULT_FPS
        magnified = evm_model.magnify(stack.float().div(255), fps, **evm)
        images = magnified.mul(255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
        for row, image in zip(members, images.numpy()):
            out.append(image_row(video_id, "color", "magnified", row["index"], image,
                                 source_frames=row["source_frames"], timestamps=row["timestamps"],
                                 flags=row["flags"], labels=row))
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    shard_stage.add_arguments(parser, cache_shard("<dataset>", "magnified", "<i>-of-<n>").as_posix())
    parser.add_argument("--static", type=Path, default=None,
                        help="aligned static shard "
                             f"({cache_shard('<dataset>', 'static', '<i>-of-<n>').as_posix()})")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (1, the default, gives the same bytes under every "
                             "orchestrator; 0 = torch's default)")


def run(args: argparse.Namespace) -> int:
    job = ShardJob.from_args("magnify", args, section="evm")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    static = args.static or cache_shard(job.dataset, "static", job.shard)
    out = args.out or cache_shard(job.dataset, "magnified", job.shard)
    evm = resolve_evm(job.settings)
    n_videos = len(set(read_meta([static]).column("video_id").to_pylist()))
    return job.run(out, iter_video_rows(static), n_videos,
                   lambda video_id, rows: magnify_video(video_id, rows, evm))
