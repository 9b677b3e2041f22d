"""MSU-MFSD: real/attack videos per client and the train/test subject lists (no dev set).

Layout and subject lists: REFERENCE.md section 3, "MSU-MFSD". As released, the
lists sit in the release folder and the videos in its `scene01/{real,attack}/`;
the videos may also sit directly in `{real,attack}/` beside the lists.
"""

from __future__ import annotations

import re

from fas.datasets.base import RELEASE, Adapter, Context, Expected, Layout

ATTACKS = {"ipad_video": "replay_ipad", "iphone_video": "replay_iphone", "printed_photo": "print"}
LISTS = {"train_sub_list.txt": "train", "test_sub_list.txt": "test"}
SCENE = r"(?:scene01/)?"
# 15 training and 20 test subjects, 2 real + 6 attack videos each (REFERENCE section 3).
PUBLISHED = (Expected(RELEASE, "standard", 1, "train", 30, 90), Expected(RELEASE, "standard", 1, "test", 40, 120))


def decode_real(groups: dict) -> dict:
    return {"subject": groups["client"], "is_live": True, "pai": "live", "device": groups["device"]}


def decode_attack(groups: dict) -> dict:
    return {"subject": groups["client"], "is_live": False, "pai": ATTACKS[groups["attack"]],
            "device": groups["device"], "medium": groups["attack"]}


class Msu(Adapter):
    name = "msu"
    media = "video"
    layouts = (
        Layout(re.compile(rf"{SCENE}(?P<video>real/real_client(?P<client>\d{{3}})_(?P<device>android|laptop)"
                          r"_SD_scene01)\.(?:mp4|mov)"), decode_real),
        Layout(re.compile(rf"{SCENE}(?P<video>attack/attack_client(?P<client>\d{{3}})_(?P<device>android|laptop)_SD_"
                          r"(?P<attack>ipad_video|iphone_video|printed_photo)_scene01)\.(?:mp4|mov)"), decode_attack),
    )
    # The subject lists, and per-video face-location files beside the videos (unverified: not read).
    side_files = re.compile("|".join(map(re.escape, LISTS)) + rf"|{SCENE}(?:real|attack)/[^/]+\.face")
    published = PUBLISHED

    def build_protocols(self, ctx: Context) -> None:
        list_of: dict[int, str] = {}  # client -> the list file naming it
        for rel in sorted(LISTS):
            if rel not in ctx.side_files:
                ctx.report.add(rel, "subject list missing: its split is left empty")
                continue
            for where, line in ctx.lines(rel):
                if not line.isdigit():
                    ctx.report.add(where, f"malformed subject line {line!r}: expected a client number")
                elif int(line) in list_of:
                    ctx.report.add(where, f"client {int(line)} is already listed in {list_of[int(line)]}")
                else:
                    list_of[int(line)] = rel
        on_disk = set()
        for video_id, video in ctx.videos.items():
            client = int(video["subject"])
            on_disk.add(client)
            if client in list_of:
                ctx.add("standard", 1, LISTS[list_of[client]], video_id)
        for client in sorted(set(list_of) - on_disk):
            ctx.report.add(list_of[client], f"listed client {client:03d} has no video on disk")
