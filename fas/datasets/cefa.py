"""CASIA-SURF CeFA: the authors' release and the CVPR 2020 challenge release.

Layout, codes and protocol files: REFERENCE.md section 3, "CASIA-SURF CeFA".
"""

from __future__ import annotations

import re

from fas.datasets.base import IGNORED, Adapter, BadName, Context, Layout, table

RACES = {"1": "AF", "2": "CA", "3": "EA"}
DEVICES = {"1": "rssdk", "2": "mp4", "3": "bag", "4": "MOV"}
SESSIONS = {"1": "indoor", "2": "outdoor", "3": "random"}
PAIS = {"1": "live", "2": "cloth", "3": "photo", "4": "replay"}  # 2 cloth print, 4 screen
MASKS = {"1": ("3D-Mask", "mask_3d"), "2": ("Silicone-Mask", "mask_silicone")}

# Protocol list `p<N.M>` -> (protocol, fold): p1.1/p1.3/p1.5 are the paper's
# 1_1/1_2/1_3, p4.1/p4.3/p4.5 its 4_1/4_2/4_3 (REFERENCE section 3). The p3
# file names are unverified: p3.1/p3.2/p3.3 are taken as 3_1/3_2/3_3.
SUBPROTOCOLS = {"1.1": ("p1", 1), "1.3": ("p1", 2), "1.5": ("p1", 3),
                "2.1": ("p2", 1), "2.2": ("p2", 2),
                "3.1": ("p3", 1), "3.2": ("p3", 2), "3.3": ("p3", 3),
                "4.1": ("p4", 1), "4.3": ("p4", 2), "4.5": ("p4", 3)}
# P3 cross-modality: fold -> (train and dev modality, test modalities).
P3_MODALITIES = {1: ("color", ("depth", "ir")), 2: ("depth", ("color", "ir")),
                 3: ("ir", ("color", "depth"))}

FRAME = r"/(?P<modality>color|depth|ir)/[^/]+\.jpg"
VIDEO_NAME = r"(?P<race>\d)_(?P<id>\d{3})_(?P<device>\d)_(?P<session>\d)_(?P<pai>\d)"
NAME_FIELDS = re.compile(VIDEO_NAME)


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
            "device": table(DEVICES, groups["device"], "acquisition device"),
            "session": table(SESSIONS, groups["session"], "session"), "lighting": groups["lighting"]}


def decode_challenge(groups: dict) -> dict:
    """Challenge train videos keep their field names; dev/test are numbered, labels in lists."""
    if match := NAME_FIELDS.fullmatch(groups["name"]):
        return decode_name(match.groupdict())
    return {"subject": groups["name"], "is_live": None, "pai": None}


LIST_LINE = re.compile(r"(?P<path>\S+)\s+(?P<label>[01])")
LIST_PATH = re.compile(r"(?:CASIA_CeFA/)?(?P<video>(?:Ethnicity|Mask)/[^/]+/[^/]+/[^/]+)"
                       r"(?:/(?:color|depth|ir)(?:/[^/]+\.jpg)?)?")
CHALLENGE_PATH = re.compile(r"(?P<video>(?:train|dev|test)/[^/]+)(?:/(?:profile|depth|ir)/[^/]+\.jpg)?")
PROTOCOL_LIST = re.compile(r"(?:CASIA_CeFA/)?protocol/CASIA_CeFA@p(?P<sub>\d+\.\d+)_video_(?P<split>train|dev|test)\.txt")
CHALLENGE_LIST = re.compile(r"(?:(?P<prefix>[^/]+)/)?4@(?P<fold>\d+)_(?P<split>train|dev_ref|test_ref)\.txt")
CHALLENGE_SPLITS = {"train": "train", "dev_ref": "dev", "test_ref": "test"}


class CeFA(Adapter):
    name = "cefa"
    media = "frames"
    modalities = ("color", "depth", "ir")
    layouts = (
        Layout(re.compile(r"(?:CASIA_CeFA/)?(?P<video>Ethnicity/(?P<race_dir>[^/]+)/(?P<subject_dir>[^/]+)/"
                          rf"(?P<name>{VIDEO_NAME})){FRAME}"), decode_ethnicity),
        Layout(re.compile(r"(?:CASIA_CeFA/)?(?P<video>Mask/(?P<mask_dir>[^/]+)/(?P<id_dir>[^/]+)/"
                          r"(?P<name>(?P<mask>\d)_(?P<id>\d{3})_\d+_\d+_(?P<device>\d)_(?P<session>\d)_"
                          rf"(?P<lighting>\d+))){FRAME}"), decode_mask),
        Layout(re.compile(r"(?P<video>(?:[^/]+/)?(?:train|dev|test)/(?P<name>[^/]+))"
                          r"/(?P<modality>profile|depth|ir)/[^/]+\.jpg"), decode_challenge),
    )
    side_files = re.compile(r"(?:CASIA_CeFA/)?protocol/CASIA_CeFA@p\d+\.\d+_(?:video|image)_(?:train|dev|test)\.txt"
                            r"|(?:[^/]+/)?4@\d+_(?:train|dev_ref|dev_res|test_ref|test_res)\.txt")

    def external_labels(self, ctx: Context) -> dict[str, tuple[bool, str]]:
        """Challenge dev/test videos: labels from `4@k_{dev,test}_ref.txt` (1 = real)."""
        labels = {}
        for rel, match in ctx.side(CHALLENGE_LIST):
            if match["split"] == "train":
                continue
            for _, video_id, label in self._challenge_entries(ctx, rel, match, report=False):
                labels[video_id] = (label, "live" if label else "attack")
        return labels

    def build_protocols(self, ctx: Context) -> None:
        if not ctx.side(PROTOCOL_LIST) and not ctx.side(CHALLENGE_LIST):
            ctx.report.add("CASIA_CeFA/protocol", "no protocol lists found "
                           "(CASIA_CeFA@p<N.M>_video_<split>.txt or 4@<k>_<split>.txt)")
        for rel, match in ctx.side(PROTOCOL_LIST):
            if match["sub"] not in SUBPROTOCOLS:
                ctx.report.add(rel, f"sub-protocol p{match['sub']} is not one the paper uses", action=IGNORED)
                continue
            protocol, fold = SUBPROTOCOLS[match["sub"]]
            split = match["split"]
            extra = {}
            if protocol == "p3":
                trained, tested = P3_MODALITIES[fold]
                extra["modalities"] = tested if split == "test" else (trained,)
            for where, line in ctx.lines(rel):
                parsed = LIST_LINE.fullmatch(line)
                path = parsed and LIST_PATH.fullmatch(parsed["path"])
                if not path:
                    ctx.report.add(where, f"malformed protocol line {line!r}: expected "
                                          "'CASIA_CeFA/<Ethnicity|Mask>/<a>/<b>/<video>/<modality> <0|1>'")
                    continue
                # Protocol lists: live = 0, fake = 1 (REFERENCE section 3).
                ctx.add_listed(where, protocol, fold, split, path["video"], parsed["label"] == "0", **extra)
        for rel, match in ctx.side(CHALLENGE_LIST):
            fold = int(match["fold"])
            if not 1 <= fold <= 3:
                ctx.report.add(rel, f"challenge fold {fold} is not 1-3", action=IGNORED)
                continue
            split = CHALLENGE_SPLITS[match["split"]]
            for where, video_id, label in self._challenge_entries(ctx, rel, match, report=True):
                ctx.add_listed(where, "challenge4", fold, split, video_id, label)

    @staticmethod
    def _challenge_entries(ctx: Context, rel: str, match: re.Match, report: bool):
        """(`file:line`, video id, is_live) per video of a challenge list (label 1 = real)."""
        prefix = f"{match['prefix']}/" if match["prefix"] else ""
        seen = set()
        for where, line in ctx.lines(rel, report=report):
            parsed = LIST_LINE.fullmatch(line)
            path = parsed and CHALLENGE_PATH.fullmatch(parsed["path"])
            if not path:
                if report:
                    ctx.report.add(where, f"malformed challenge line {line!r}: expected "
                                          "'<train|dev|test>/<video>[/<stream>/<frame>.jpg] <0|1>'")
                continue
            video_id = prefix + path["video"]
            if video_id not in seen:  # train lists name every frame: one entry per video
                seen.add(video_id)
                yield where, video_id, parsed["label"] == "1"
