"""CASIA-SURF CeFA: the authors' release and the CVPR 2020 challenge release.

Layout, codes and protocol files: REFERENCE.md section 3, "CASIA-SURF CeFA".
"""

from __future__ import annotations

import re

from fas.datasets.base import IGNORED, RELEASE, Adapter, BadName, Context, Expected, Layout, ListFamily, any_of, table

RACES = {"1": "AF", "2": "CA", "3": "EA"}
DEVICES = {"1": "rssdk", "2": "mp4", "3": "bag", "4": "MOV"}
SESSIONS = {"1": "indoor", "2": "outdoor", "3": "random"}
PAIS = {"1": "live", "2": "cloth", "3": "photo", "4": "replay"}  # 2 cloth print, 4 screen
MASKS = {"1": ("3D-Mask", "mask_3d"), "2": ("Silicone-Mask", "mask_silicone")}
# Mask folders have their own acquisition device code (the authors' readme).
MASK_DEVICES = {"1": "camera", "2": "D435i"}

# Protocol list `p<N.M>` -> (protocol, fold): p1.1/p1.3/p1.5 are the paper's
# 1_1/1_2/1_3, p4.1/p4.3/p4.5 its 4_1/4_2/4_3 (REFERENCE section 3). The
# authors publish P3 as one list family without suffix (`p3`), read for the
# three folds; `p3.1`/`p3.2`/`p3.3` lists, where present, are taken as 3_1/3_2/3_3.
SUBPROTOCOLS = {"1.1": ("p1", 1), "1.3": ("p1", 2), "1.5": ("p1", 3),
                "2.1": ("p2", 1), "2.2": ("p2", 2),
                "3.1": ("p3", 1), "3.2": ("p3", 2), "3.3": ("p3", 3),
                "4.1": ("p4", 1), "4.3": ("p4", 2), "4.5": ("p4", 3)}
P3_FOLDS = (1, 2, 3)
# P3 cross-modality: fold -> (train and dev modality, test modalities).
P3_MODALITIES = {1: ("color", ("depth", "ir")), 2: ("depth", ("color", "ir")),
                 3: ("ir", ("color", "depth"))}

FRAME = r"/(?P<modality>color|depth|ir)/[^/]+\.jpg"
VIDEO_NAME = r"(?P<race>\d)_(?P<id>\d{3})_(?P<device>\d)_(?P<session>\d)_(?P<pai>\d)"
NAME_FIELDS = re.compile(VIDEO_NAME)

AUTHORS, CHALLENGE = RELEASE, "challenge release"


def decode_name(groups: dict) -> dict:
    """Fields of a `Race_ID_AcqDevice_Session_PAI` video name."""
    pai = table(PAIS, groups["pai"], "PAI")
    ethnicity = table(RACES, groups["race"], "race")
    return {"subject": f"{ethnicity}-{groups['id']}", "is_live": pai == "live", "pai": pai,
            "ethnicity": ethnicity, "device": table(DEVICES, groups["device"], "acquisition device"),
            "session": table(SESSIONS, groups["session"], "session")}


def decode_ethnicity(groups: dict) -> dict:
    fields = decode_name(groups)
    if groups["race_dir"] != fields["ethnicity"] or groups["subject_dir"] != fields["subject"]:
        raise BadName(f"video {groups['name']} is filed under {groups['race_dir']}/{groups['subject_dir']}")
    return fields


def decode_mask(groups: dict) -> dict:
    folder, pai = table(MASKS, groups["mask"], "mask type")
    if groups["mask_dir"] != folder or groups["id_dir"] != groups["id"]:
        raise BadName(f"video {groups['name']} is filed under {groups['mask_dir']}/{groups['id_dir']}")
    return {"subject": f"{folder}-{groups['id']}", "is_live": False, "pai": pai,
            "device": table(MASK_DEVICES, groups["device"], "mask acquisition device"),
            "session": table(SESSIONS, groups["session"], "session"), "lighting": groups["lighting"]}


def decode_challenge(groups: dict) -> dict:
    """Challenge train videos keep their field names; dev/test are numbered, labels in lists."""
    if match := NAME_FIELDS.fullmatch(groups["name"]):
        return decode_name(match.groupdict())
    return {"subject": groups["name"], "is_live": None, "pai": None}


# The authors' lists: `<video dir>/<modality>` (video lists) or `.../<modality>/<frame>`
# (image lists), live = 0.
AUTHORS_LISTS = ListFamily(
    files=re.compile(r"(?:CASIA_CeFA/)?protocol/CASIA_CeFA@p(?P<sub>\d+(?:\.\d+)?)"
                     r"_(?P<level>video|image)_(?P<split>train|dev|test)\.txt"),
    entry=re.compile(r"(?:CASIA_CeFA/)?(?P<video>(?:Ethnicity|Mask)/[^/]+/[^/]+/[^/]+)"
                     r"(?:/(?:color|depth|ir)(?:/(?P<frame>[^/]+\.jpg))?)?"),
    live_label="0", form="CASIA_CeFA/<Ethnicity|Mask>/<a>/<b>/<video>/<modality>[/<frame>.jpg] <0|1>")
# The challenge lists (label 1 = real): frame lines `train/<video>/profile/0001.jpg 1`,
# video lines `dev/003000 1` in `_ref` lists, ids only in `_res` lists.
CHALLENGE_ENTRY = re.compile(r"(?P<video>(?:train|dev|test)/[^/]+)(?:/(?:profile|depth|ir)/(?P<frame>[^/]+\.jpg))?")
CHALLENGE_LABELLED = ListFamily(
    files=re.compile(r"(?:[^/]+/)?4@(?P<fold>\d+)_(?P<split>train|dev_ref|test_ref)\.txt"),
    entry=CHALLENGE_ENTRY, live_label="1", in_folder=True,
    form="<train|dev|test>/<video>[/<stream>/<frame>.jpg] <0|1>")
CHALLENGE_IDS = ListFamily(
    files=re.compile(r"(?:[^/]+/)?4@(?P<fold>\d+)_(?P<split>dev_res|test_res)\.txt"),
    entry=CHALLENGE_ENTRY, live_label=None, in_folder=True, form="<dev|test>/<video>")
CHALLENGE_SPLITS = {"train": "train", "dev_ref": "dev", "test_ref": "test", "dev_res": "dev", "test_res": "test"}


def _sizes(release: str, protocol: str, folds, sizes: dict, **extra) -> list[Expected]:
    return [Expected(release, protocol, fold, split, *counts, **extra)
            for fold in folds for split, counts in sizes.items()]


# Published videos per split as (live, attack), the same for every fold of a protocol
# unless keyed per fold: totals from REFERENCE section 3 and the authors' readme
# (P1 800/400/2723, P2.1 1800/900/2323, P2.2 1200/600/2923, P4 400/200/2323), the
# split by class from the authors' lists. P3 is published as image counts only; its
# video counts follow the WACV 2021 paper's Table 4 (per modality: train 600/1800,
# dev 300/900, test 600 live); whether its test lists hold the 1,123 masks is
# unverified, so the test attacks are a lower bound. The challenge (protocol 4
# only): 400 / 200 videos per fold in the official lists, 2,200 test ids per fold
# (2,800 in all, 1,600 shared by any two folds), labels never published.
PUBLISHED = (
    *_sizes(AUTHORS, "p1", (1, 2, 3), {"train": (200, 600), "dev": (100, 300), "test": (400, 2323)}),
    *_sizes(AUTHORS, "p2", (1,), {"train": (600, 1200), "dev": (300, 600), "test": (600, 1723)}),
    *_sizes(AUTHORS, "p2", (2,), {"train": (600, 600), "dev": (300, 300), "test": (600, 2323)}),
    *_sizes(AUTHORS, "p3", P3_FOLDS, {"train": (600, 1800), "dev": (300, 900)}, source="WACV 2021 Table 4"),
    *_sizes(AUTHORS, "p3", P3_FOLDS, {"test": (600, 1800)}, attack_at_least=True, source="WACV 2021 Table 4"),
    *_sizes(AUTHORS, "p4", (1, 2, 3), {"train": (200, 200), "dev": (100, 100), "test": (400, 1923)}),
    *_sizes(CHALLENGE, "challenge4", (1, 2, 3), {"train": (200, 200), "dev": (100, 100)},
            source="the challenge lists"),
    *_sizes(CHALLENGE, "challenge4", (1, 2, 3), {"test": (None, None)}, unlabelled=2200,
            source="the challenge lists"),
)


class CeFA(Adapter):
    name = "cefa"
    media = "frames"
    modalities = ("color", "depth", "ir")
    published = PUBLISHED
    release = AUTHORS
    layouts = (
        Layout(re.compile(r"(?:CASIA_CeFA/)?(?P<video>Ethnicity/(?P<race_dir>[^/]+)/(?P<subject_dir>[^/]+)/"
                          rf"(?P<name>{VIDEO_NAME})){FRAME}"), decode_ethnicity),
        Layout(re.compile(r"(?:CASIA_CeFA/)?(?P<video>Mask/(?P<mask_dir>[^/]+)/(?P<id_dir>[^/]+)/"
                          r"(?P<name>(?P<mask>\d)_(?P<id>\d{3})_\d+_\d+_(?P<device>\d)_(?P<session>\d)_"
                          rf"(?P<lighting>\d+))){FRAME}"), decode_mask),
        Layout(re.compile(r"(?P<video>(?:[^/]+/)?(?:train|dev|test)/(?P<name>[^/]+))"
                          r"/(?P<modality>profile|depth|ir)/[^/]+\.jpg"), decode_challenge),
    )
    side_files = any_of(AUTHORS_LISTS.files, CHALLENGE_LABELLED.files, CHALLENGE_IDS.files)

    def external_labels(self, ctx: Context) -> dict[str, tuple[bool, str]]:
        """Challenge dev/test videos: labels from `4@k_{dev,test}_ref.txt` (1 = real)."""
        labels = {}
        for rel, match in ctx.side(CHALLENGE_LABELLED.files):
            if match["split"] != "train":
                for video_id, entry in ctx.read_list(rel, CHALLENGE_LABELLED).items():
                    labels[video_id] = (entry.is_live, "live" if entry.is_live else "attack")
        return labels

    def build_protocols(self, ctx: Context) -> None:
        authors = ctx.side(AUTHORS_LISTS.files)
        challenge = [(rel, m, CHALLENGE_LABELLED) for rel, m in ctx.side(CHALLENGE_LABELLED.files)]
        challenge += [(rel, m, CHALLENGE_IDS) for rel, m in ctx.side(CHALLENGE_IDS.files)]
        if not authors and not challenge:
            ctx.report.add("CASIA_CeFA/protocol", "no protocol lists found "
                           "(CASIA_CeFA@p<N.M>_<video|image>_<split>.txt or 4@<k>_<split>.txt)")
        if authors:
            ctx.releases.add(AUTHORS)
        if challenge:
            ctx.releases.add(CHALLENGE)
        for rel, match in authors:
            self._authors_list(ctx, rel, match)
        for rel, match, family in sorted(challenge, key=lambda c: c[0]):
            self._challenge_list(ctx, rel, match, family)

    @staticmethod
    def _authors_list(ctx: Context, rel: str, match: re.Match) -> None:
        """One list of the authors' release; a P3 list without suffix feeds its three folds."""
        sub = match["sub"]
        targets = [("p3", fold) for fold in P3_FOLDS] if sub == "3" else [SUBPROTOCOLS.get(sub)]
        if targets == [None]:
            ctx.report.add(rel, f"sub-protocol p{sub} is not one the paper uses", action=IGNORED)
            return
        split = match["split"]
        for video_id, entry in ctx.read_list(rel, AUTHORS_LISTS).items():
            if not ctx.check_listed(entry.where, video_id, entry.is_live):
                continue
            for protocol, fold in targets:
                modalities = None
                if protocol == "p3":  # dev uses the training modality: it sets the trained model's threshold
                    trained, tested = P3_MODALITIES[fold]
                    modalities = tested if split == "test" else (trained,)
                ctx.add(protocol, fold, split, video_id, modalities=modalities, frames=entry.frames)

    @staticmethod
    def _challenge_list(ctx: Context, rel: str, match: re.Match, family: ListFamily) -> None:
        """A `4@k_*` list: labelled entries become rows, id-only entries are counted."""
        fold = int(match["fold"])
        if not 1 <= fold <= 3:
            ctx.report.add(rel, f"challenge fold {fold} is not 1-3", action=IGNORED)
            return
        split = CHALLENGE_SPLITS[match["split"]]
        for video_id, entry in ctx.read_list(rel, family).items():
            if family is CHALLENGE_LABELLED:
                ctx.add_listed(entry.where, "challenge4", fold, split, video_id, entry.is_live,
                               frames=entry.frames)
            elif video_id in ctx.unlabelled:  # on disk; its label was never published
                ctx.listed_unlabelled["challenge4", fold, split] += 1
            elif video_id not in ctx.videos:
                ctx.report.add(entry.where, f"protocol entry names a video absent from the index: {video_id}")
