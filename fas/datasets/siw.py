"""SiW: `{Train,Test}/{live,spoof}/<SSS>/<SSS-Sensor-Type-Medium-Session>.mov`; protocols derived.

Layout, codes and protocol rules: REFERENCE.md section 3, "SiW".
"""

from __future__ import annotations

import re

from fas.datasets.base import Adapter, BadName, Context, Layout, table

TYPES = {"1": "live", "2": "print", "3": "replay"}
REPLAY_MEDIA = {"1": "ipad_pro", "2": "iphone_7_plus", "3": "asus_mb168b", "4": "galaxy_s8"}
P1_TRAIN_FRAMES = 60  # P1 trains on the first 60 frames of each training video


def decode(groups: dict) -> dict:
    pai = table(TYPES, groups["type"], "Type")
    if (pai == "live") != (groups["part"] == "live"):
        raise BadName(f"a {pai} video is filed under {groups['part']}/")
    if groups["sid"] != groups["subject"]:
        raise BadName(f"subject {groups['subject']} is filed under {groups['sid']}/")
    medium = None
    if pai == "replay":
        medium = table(REPLAY_MEDIA, groups["medium"], "replay medium")
    elif pai == "print":
        medium = f"printer_{groups['medium']}"
    return {"subject": groups["subject"], "is_live": pai == "live", "pai": pai, "medium": medium,
            "device": f"sensor_{groups['sensor']}", "session": groups["session"]}


class SiW(Adapter):
    name = "siw"
    media = "video"
    layouts = (Layout(re.compile(
        r"(?P<video>(?P<folder>Train|Test)/(?P<part>live|spoof)/(?P<sid>\d{3})/"
        r"(?P<subject>\d{3})-(?P<sensor>\d+)-(?P<type>\d)-(?P<medium>\d+)-(?P<session>\d+))(?:\.m)?\.mov"),
        decode),)
    side_files = re.compile(r"(?:Train|Test)/(?:live|spoof)/\d{3}/[^/]+\.face")  # per-frame face boxes

    def build_protocols(self, ctx: Context) -> None:
        for video_id, video in ctx.videos.items():
            split = "train" if video_id.startswith("Train/") else "test"
            pai = video["pai"]
            # P1: all videos; training uses only the first 60 frames.
            ctx.add("p1", 1, split, video_id, max_frames=P1_TRAIN_FRAMES if split == "train" else None)
            # P2: leave one replay medium out; fold k tests on medium k, trains on the other three.
            for fold, medium in enumerate(REPLAY_MEDIA.values(), start=1):
                if pai == "live" or (pai == "replay" and (medium == video["medium"]) == (split == "test")):
                    ctx.add("p2", fold, split, video_id)
            # P3: fold 1 trains on print and tests on replay, fold 2 the reverse.
            for fold, (trained, tested) in enumerate((("print", "replay"), ("replay", "print")), start=1):
                if pai == "live" or pai == (trained if split == "train" else tested):
                    ctx.add("p3", fold, split, video_id)
