"""CASIA-SURF: split folders, real/fake parts, cut-print attacks 1-6.

Layout and the train-uses-attacks-4-6 rule: REFERENCE.md section 3, "CASIA-SURF".
"""

from __future__ import annotations

import re

from fas.datasets.base import Adapter, BadName, Context, Layout, table

SPLITS = {"Training": "train", "Val": "dev", "Testing": "test"}
# Cut regions (e: eyes, n: nose, m: mouth) on a flat (s) or curved (b) print.
ATTACKS = {"01_e_s": (1, "cut_eyes_flat"), "02_e_b": (2, "cut_eyes_curved"),
           "03_en_s": (3, "cut_eyes_nose_flat"), "04_en_b": (4, "cut_eyes_nose_curved"),
           "05_enm_s": (5, "cut_eyes_nose_mouth_flat"), "06_enm_b": (6, "cut_eyes_nose_mouth_curved")}
TRAIN_ATTACKS = {4, 5, 6}  # the training set holds attacks 4-6; val and test hold 1-3
TEST_ATTACKS = {1, 2, 3}


def decode(groups: dict) -> dict:
    live = groups["part"] == "real_part"
    if live != (groups["clip"] == "real"):
        raise BadName(f"{groups['clip']}.rssdk is filed under {groups['part']}")
    pai = "live" if live else table(ATTACKS, groups["clip"], "attack")[1]
    return {"subject": groups["subject"], "is_live": live, "pai": pai}


class Surf(Adapter):
    name = "surf"
    media = "frames"
    modalities = ("color", "depth", "ir")
    # The challenge release's frame lists (label 1 = real); membership follows the folders.
    side_files = re.compile(r"(?:Data/)?(?:train_list|val_private_list|test_private_list)\.txt")
    layouts = (Layout(re.compile(
        r"(?:Data/)?(?P<video>(?P<folder>Training|Val|Testing)/(?P<part>real_part|fake_part)/"
        r"(?P<subject>CLKJ_[ABC]S\d{4})/(?P<clip>real|\d\d_[a-z]+_[sb])\.rssdk)"
        r"/(?P<modality>color|depth|ir)/[^/]+\.jpg"), decode),)

    def build_protocols(self, ctx: Context) -> None:
        for video_id, video in ctx.videos.items():
            folder, _, _, clip = video_id.split("/")
            split = SPLITS[folder]
            clip = clip.removesuffix(".rssdk")
            attack = None if video["is_live"] else ATTACKS[clip][0]
            allowed = TRAIN_ATTACKS if split == "train" else TEST_ATTACKS
            if attack is None or attack in allowed:
                ctx.add("main", 1, split, video_id)
