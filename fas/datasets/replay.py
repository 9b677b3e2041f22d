"""Idiap Replay-Attack: split folders, real and attack (fixed/hand) videos, face-location files.

Layout and grandtest: REFERENCE.md section 3, "Idiap Replay-Attack".
"""

from __future__ import annotations

import re

from fas.datasets.base import RELEASE, Adapter, BadName, Context, Expected, Layout

SPLITS = {"train": "train", "devel": "dev", "test": "test"}
# attack_<what is shown on>_..._<displayed by>_<content>: a printed high-definition
# photo, or a photo/video on an iPhone (mobile) or iPad (highdef) screen.
ATTACKS = {("print", "highdef", "photo"): "print",
           ("mobile", "mobile", "photo"): "replay_mobile", ("mobile", "mobile", "video"): "replay_mobile",
           ("highdef", "highdef", "photo"): "replay_highdef", ("highdef", "highdef", "video"): "replay_highdef"}


def decode_real(groups: dict) -> dict:
    return {"subject": groups["client"], "is_live": True, "pai": "live", "device": "webcam",
            "session": groups["session"], "lighting": groups["lighting"]}


def decode_attack(groups: dict) -> dict:
    key = (groups["kind"], groups["source"], groups["content"])
    if key not in ATTACKS:
        raise BadName(f"attack_{key[0]} with {key[1]}_{key[2]} is not a Replay-Attack combination")
    return {"subject": groups["client"], "is_live": False, "pai": ATTACKS[key], "device": "webcam",
            "session": groups["session"], "lighting": groups["lighting"],
            "medium": f"{groups['support']}_{groups['source']}_{groups['content']}"}


# grandtest: 15 / 15 / 20 clients, 60 + 300, 60 + 300, 80 + 400 videos (REFERENCE section 3).
PUBLISHED = tuple(Expected(RELEASE, "grandtest", 1, split, live, attack)
                  for split, live, attack in (("train", 60, 300), ("dev", 60, 300), ("test", 80, 400)))

LIGHTING = r"(?P<lighting>adverse|controlled)"
SESSION = r"client(?P<client>\d{3})_session(?P<session>\d\d)"


class Replay(Adapter):
    name = "replay"
    media = "video"
    has_annotations = True
    published = PUBLISHED
    layouts = (
        Layout(re.compile(rf"(?P<video>(?P<folder>train|devel|test)/real/{SESSION}_webcam_authenticate_"
                          rf"{LIGHTING}_\d)\.mov"), decode_real),
        Layout(re.compile(r"(?P<video>(?P<folder>train|devel|test)/attack/(?P<support>fixed|hand)/"
                          rf"attack_(?P<kind>[a-z]+)_{SESSION}_(?P<source>highdef|mobile)_(?P<content>photo|video)"
                          rf"_{LIGHTING})\.mov"), decode_attack),
    )
    # Enrolment videos are not used for PAD; face-location files are annotations.
    side_files = re.compile(r"enroll/.*|face-locations/.*\.face")

    def annotation(self, video_id: str, side_files: set[str]) -> str | None:
        candidate = f"face-locations/{video_id}.face"
        return candidate if candidate in side_files else None

    def build_protocols(self, ctx: Context) -> None:
        for video_id in ctx.videos:
            ctx.add("grandtest", 1, SPLITS[video_id.split("/", 1)[0]], video_id)
