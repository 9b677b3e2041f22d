"""CASIA-FASD: `{train_release,test_release}/<subject>/{1..8,HR_1..HR_4}.avi` (no dev set).

Layout and clip codes: REFERENCE.md section 3, "CASIA-FASD".
"""

from __future__ import annotations

import re

from fas.datasets.base import RELEASE, Adapter, Context, Expected, Layout

# Clip -> (PAI, quality). REFERENCE lists the qualities as normal / low / high
# for the three clips of each kind (odd, even, HR_).
CLIPS = {"1": ("live", "normal"), "2": ("live", "low"), "HR_1": ("live", "high"),
         "3": ("warped_photo", "normal"), "4": ("warped_photo", "low"), "HR_2": ("warped_photo", "high"),
         "5": ("cut_photo", "normal"), "6": ("cut_photo", "low"), "HR_3": ("cut_photo", "high"),
         "7": ("replay", "normal"), "8": ("replay", "low"), "HR_4": ("replay", "high")}
SPLITS = {"train_release": "train", "test_release": "test"}
# 20 training and 30 test subjects, 3 real + 9 attack clips each (REFERENCE section 3).
PUBLISHED = (Expected(RELEASE, "standard", 1, "train", 60, 180), Expected(RELEASE, "standard", 1, "test", 90, 270))


def decode(groups: dict) -> dict:
    pai, quality = CLIPS[groups["clip"]]
    split = SPLITS[groups["folder"]]
    return {"subject": f"{split}_{int(groups['subject']):02d}", "is_live": pai == "live", "pai": pai,
            "quality": quality}


class CasiaFasd(Adapter):
    name = "casia_fasd"
    media = "video"
    published = PUBLISHED
    layouts = (Layout(re.compile(r"(?P<video>(?P<folder>train_release|test_release)/(?P<subject>\d+)/"
                                 r"(?P<clip>[1-8]|HR_[1-4]))\.avi"), decode),)

    def build_protocols(self, ctx: Context) -> None:
        for video_id in ctx.videos:
            ctx.add("standard", 1, SPLITS[video_id.split("/", 1)[0]], video_id)
