"""CASIA-SURF: the authors' release (with or without their protocol lists) and the CVPR 2019 challenge release.

Layout, the train-uses-attacks-4-6 rule and the list files: REFERENCE.md section 3, "CASIA-SURF".
"""

from __future__ import annotations

import re

from fas.datasets.base import Adapter, BadName, Context, Expected, Layout, ListFamily, any_of, table

SPLITS = {"Training": "train", "Val": "dev", "Testing": "test"}
# Cut regions (e: eyes, n: nose, m: mouth) on a flat (s) or curved (b) print.
ATTACKS = {"01_e_s": (1, "cut_eyes_flat"), "02_e_b": (2, "cut_eyes_curved"),
           "03_en_s": (3, "cut_eyes_nose_flat"), "04_en_b": (4, "cut_eyes_nose_curved"),
           "05_enm_s": (5, "cut_eyes_nose_mouth_flat"), "06_enm_b": (6, "cut_eyes_nose_mouth_curved")}
TRAIN_ATTACKS = {4, 5, 6}  # the training set holds attacks 4-6; val and test hold 1-3
TEST_ATTACKS = {1, 2, 3}

FOLDERS, AUTHORS_LISTS, CHALLENGE = "video folders", "authors' lists", "challenge release"
TOP = r"(?:CASIA_SURF/)?(?:Data/)?"
VIDEO = r"(?:Training|Val|Testing)/(?:real_part|fake_part)/[^/]+/[^/]+\.rssdk"
FLAT = r"(?:Val|Testing)/\d+/\d+"  # the challenge's Val and Testing: single frames, 1,000 per folder


def decode(groups: dict) -> dict:
    live = groups["part"] == "real_part"
    if live != (groups["clip"] == "real"):
        raise BadName(f"{groups['clip']}.rssdk is filed under {groups['part']}")
    pai = "live" if live else table(ATTACKS, groups["clip"], "attack")[1]
    return {"subject": groups["subject"], "is_live": live, "pai": pai}


def decode_flat(groups: dict) -> dict:
    """A challenge Val/Testing frame: anonymised, its label in the private lists."""
    return {"subject": None, "is_live": None, "pai": None}


# The authors' lists (live = 0): `<video>/color` or `<video>/color/<frame>.jpg`.
AUTHORS = ListFamily(
    files=re.compile(rf"(?:CASIA_SURF/)?protocol/CASIA_SURF@p1_(?P<level>video|image)_(?P<split>train|dev|test)\.txt"),
    entry=re.compile(rf"{TOP}(?P<video>{VIDEO})/(?:color|depth|ir)(?:/(?P<frame>[^/]+\.jpg))?"),
    live_label="0", form="CASIA_SURF/Data/<split>/<part>/<subject>/<clip>.rssdk/color[/<frame>.jpg] <0|1>")
# The challenge lists (label 1 = real): `<color> <depth> <ir> <label>` per frame, a frame
# of a Training video folder or a flattened Val/Testing frame; the public lists lack labels.
ENTRY = re.compile(rf"{TOP}(?P<video>{VIDEO}(?=/)|{FLAT}(?=-))(?:/color/(?P<frame>[^/]+\.jpg)|-color\.jpg)")
CHALLENGE_LISTS = ListFamily(
    files=re.compile(rf"{TOP}(?P<list>train_list|val_private_list|test_private_list)\.txt"),
    entry=ENTRY, live_label="1", paths=3, form="<color path> <depth path> <ir path> <0|1>")
PUBLIC_LISTS = ListFamily(
    files=re.compile(rf"{TOP}(?P<list>val_public_list|test_public_list)\.txt"),
    entry=ENTRY, live_label=None, paths=3, form="<color path> <depth path> <ir path>")
LIST_SPLITS = {"train_list": "train", "val_private_list": "dev", "test_private_list": "test",
               "val_public_list": "dev", "test_public_list": "test"}


def _sizes(release: str, sizes: dict, source: str) -> list[Expected]:
    return [Expected(release, "main", 1, split, live, attack, source=source)
            for split, (live, attack) in sizes.items()]


# Videos per split as (live, attack). Folders: 300 / 100 / 600 subjects, each with
# one real video and three attacks in its split (REFERENCE section 3). The authors'
# lists hold 1,200 / 400 / 2,391 videos (their readme; class split from the lists).
# The challenge: Training as folders, Val 9,608 single frames (2,994 live; the
# private list), Testing 57,710 frames (the authors' readme: image counts of p1).
PUBLISHED = (
    *_sizes(FOLDERS, {"train": (300, 900), "dev": (100, 300), "test": (600, 1800)}, "REFERENCE.md section 3"),
    *_sizes(AUTHORS_LISTS, {"train": (300, 900), "dev": (100, 300), "test": (600, 1791)}, "the authors' lists"),
    *_sizes(CHALLENGE, {"train": (300, 900), "dev": (2994, 6614)}, "the challenge lists"),
    Expected(CHALLENGE, "main", 1, "test", None, None, total=57710, source="the authors' readme"),
)


class Surf(Adapter):
    name = "surf"
    media = "frames"
    modalities = ("color", "depth", "ir")
    published = PUBLISHED
    release = FOLDERS
    side_files = any_of(AUTHORS.files, CHALLENGE_LISTS.files, PUBLIC_LISTS.files)
    layouts = (
        Layout(re.compile(rf"{TOP}(?P<video>(?P<folder>Training|Val|Testing)/(?P<part>real_part|fake_part)/"
                          r"(?P<subject>CLKJ_[ABC]S\d{4})/(?P<clip>real|\d\d_[a-z]+_[sb])\.rssdk)"
                          r"/(?P<modality>color|depth|ir)/[^/]+\.jpg"), decode),
        Layout(re.compile(rf"{TOP}(?P<video>{FLAT})-(?P<modality>color|depth|ir)\.jpg"), decode_flat, media="image"),
    )

    def external_labels(self, ctx: Context) -> dict[str, tuple[bool, str]]:
        """Challenge Val/Testing frames: labels from the private lists (1 = real)."""
        labels = {}
        for rel, _ in ctx.side(CHALLENGE_LISTS.files):
            for video_id, entry in ctx.read_list(rel, CHALLENGE_LISTS).items():
                labels[video_id] = (entry.is_live, "live" if entry.is_live else "attack")
        return labels

    def build_protocols(self, ctx: Context) -> None:
        """`main` from the authors' lists, else the challenge lists, else the folders."""
        authors, challenge = ctx.side(AUTHORS.files), ctx.side(CHALLENGE_LISTS.files)
        flat = any(v["media"] == "image" for v in ctx.videos.values()) or bool(ctx.unlabelled)
        ctx.releases.add(AUTHORS_LISTS if authors else CHALLENGE if flat else FOLDERS)
        if authors or challenge:
            family = AUTHORS if authors else CHALLENGE_LISTS
            for rel, match in authors or challenge:
                split = match["split"] if authors else LIST_SPLITS[match["list"]]
                for video_id, entry in ctx.read_list(rel, family).items():
                    ctx.add_listed(entry.where, "main", 1, split, video_id, entry.is_live, frames=entry.frames)
        else:
            self._from_folders(ctx)
        for rel, match in ctx.side(PUBLIC_LISTS.files):
            split = LIST_SPLITS[match["list"]]
            for video_id in ctx.read_list(rel, PUBLIC_LISTS):
                if video_id in ctx.unlabelled:
                    ctx.listed_unlabelled["main", 1, split] += 1

    @staticmethod
    def _from_folders(ctx: Context) -> None:
        for video_id, video in ctx.videos.items():
            folder, _, _, clip = video_id.split("/")
            split = SPLITS[folder]
            clip = clip.removesuffix(".rssdk")
            attack = None if video["is_live"] else ATTACKS[clip][0]
            allowed = TRAIN_ATTACKS if split == "train" else TEST_ATTACKS
            if attack is None or attack in allowed:
                ctx.add("main", 1, split, video_id)
