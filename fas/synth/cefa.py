"""CASIA-SURF CeFA layout facts (REFERENCE section 3, CeFA).

Main release under the dataset root:
`CASIA_CeFA/Ethnicity/{AF,CA,EA}/<AF-120>/<1_120_1_1_1>/{color,depth,ir}/0001.jpg`
(folder fields Race_ID_AcqDevice_Session_PAI), masks under
`CASIA_CeFA/Mask/{3D-Mask,Silicone-Mask}/<id>/<type_id_dresses_glasses_device_session_lighting>/`,
protocol lists `CASIA_CeFA/protocol/CASIA_CeFA@p<N.M>_{video,image}_{train,dev,test}.txt`
with `<video dir>/<modality> <label>`, live = 0, fake = 1.

The CVPR 2020 challenge release (protocol 4 only) is written beside it, under
`<root>/challenge/` (where a user unpacks it next to the main release):
`challenge/{train/<1_031_1_1_1>,dev/<003000>,test/<000001>}/{profile,depth,ir}/0001.jpg`
and `challenge/4@k_{train,dev_ref,dev_res,test_res}.txt`, label 1 = real.
"""

from __future__ import annotations

from itertools import product

from fas.synth.render import Attack
from fas.synth.spec import Item, Layout, per_scale

RACES = {"AF": 1, "CA": 2, "EA": 3}
SPLITS = {"train": range(0, 200), "dev": range(200, 300), "test": range(300, 500)}
# Subjects per race and split (train, dev, test). Demo: protocols 1 and 4 test two
# races, so 10 test subjects per race give 20 live test videos; 5 dev subjects give
# every dev list 5 live and at least 5 attack videos; 7 train subjects, since protocols
# 1 and 4 train on one race and 4 identities were too few to carry over to the others
# (docs/synthetic.md, "Demo scale").
REDUCED = {"tiny": (2, 1, 1), "demo": (7, 5, 10)}
# The only video kinds the protocol lists use: (AcqDevice, Session, PAI).
KINDS = {"real": (1, 1, 1), "cloth_in": (3, 1, 2), "cloth_out": (3, 2, 2), "screen": (3, 1, 4)}
ATTACKS = {1: Attack(), 2: Attack("cloth", bend=0.35, medium="cloth", quality=0.6),
           3: Attack("photo", medium="photo", quality=0.8),
           4: Attack("replay", medium="screen", quality=0.8, handheld=False)}
MODALITIES = ("color", "depth", "ir")
# Masks: 1,123 videos in every test list (REFERENCE). Their split between 3D and
# silicone masks and the folder fields are unverified: (type code, ids, videos per id).
MASKS = {"3D-Mask": (1, 99, 10), "Silicone-Mask": (2, 7, 19)}
MASK_COMBOS = list(product((1, 2, 3), (0, 1), (1, 2), (1, 2)))  # dresses, glasses, session, lighting
MASK_DEVICE = 2
MASK_ATTACKS = {"3D-Mask": Attack("mask_3d"), "Silicone-Mask": Attack("mask_silicone")}
DEMO_MASKS = (2, 5)  # (ids, videos per id) of each mask type: 10 videos per mask species
# Sub-protocol file names per (protocol, fold) (REFERENCE: p1.1/p1.3/p1.5 are 1_1/1_2/1_3,
# p4.1/p4.3/p4.5 are 4_1/4_2/4_3; the p3 names are unverified).
SUBPROTOCOLS = {("p1", 1): "p1.1", ("p1", 2): "p1.3", ("p1", 3): "p1.5",
                ("p2", 1): "p2.1", ("p2", 2): "p2.2",
                ("p3", 1): "p3.1", ("p3", 2): "p3.2", ("p3", 3): "p3.3",
                ("p4", 1): "p4.1", ("p4", 2): "p4.3", ("p4", 3): "p4.5"}
FOLD_RACE = {1: "AF", 2: "CA", 3: "EA"}
P3_TRAIN_MODALITY = {1: "color", 2: "depth", 3: "ir"}
CHALLENGE = "challenge"
CHALLENGE_MODALITIES = {"color": "profile", "depth": "depth", "ir": "ir"}
CHALLENGE_DEV_FIRST = 3000  # anonymised ids
# The official test lists number 2,800 videos: 600 per ethnicity (CA from 000001, EA,
# then AF) and 1,000 shared by the three folds (kind unverified; written as 3D masks).
CHALLENGE_TEST_RACES = ("CA", "EA", "AF")
CHALLENGE_SHARED = {"tiny": 1, "demo": 2, "full": 1000}
CHALLENGE_SCALE = {"tiny": "tiny", "demo": "tiny", "full": "full"}


def subjects(split: str, scale: str) -> list[int]:
    ids = list(SPLITS[split])
    return ids if scale == "full" else ids[: REDUCED[scale][list(SPLITS).index(split)]]


def video_dir(race: str, subject: int, kind: str) -> str:
    device, session, pai = KINDS[kind]
    return (f"CASIA_CeFA/Ethnicity/{race}/{race}-{subject:03d}/"
            f"{RACES[race]}_{subject:03d}_{device}_{session}_{pai}")


def _item(base: str, names: dict[str, str], race: str, subject: str, kind: str) -> Item:
    device, session, pai = KINDS[kind]
    return Item(tuple((m, f"{base}/{names[m]}") for m in MODALITIES), subject, ATTACKS[pai],
                f"device{device}", f"session{session}", race, source=f"{subject}-source")


def main_items(scale: str) -> list[Item]:
    out = []
    for race, split, kind in product(RACES, SPLITS, KINDS):
        for subject in subjects(split, scale):
            out.append(_item(video_dir(race, subject, kind), {m: m for m in MODALITIES},
                             race, f"{race}-{subject:03d}", kind))
    for folder, (code, n_ids, per_id) in MASKS.items():
        n_ids, per_id = per_scale(scale, (1, 1), DEMO_MASKS, (n_ids, per_id))
        for mask_id, (dresses, glasses, session, light) in product(range(n_ids), MASK_COMBOS[:per_id]):
            name = f"{code}_{mask_id:03d}_{dresses}_{glasses}_{MASK_DEVICE}_{session}_{light}"
            base = f"CASIA_CeFA/Mask/{folder}/{mask_id:03d}/{name}"
            out.append(Item(tuple((m, f"{base}/{m}") for m in MODALITIES), f"{folder}-{mask_id:03d}",
                            MASK_ATTACKS[folder], f"device{MASK_DEVICE}", f"mask-session{session}-light{light}",
                            list(RACES)[mask_id % 3]))
    return out


def challenge_items(scale: str) -> list[Item]:
    """The challenge copy of protocol 4: train named, dev and test anonymised.

    The grid never trains on it (its test labels were never published), so the
    demo keeps the tiny counts of it.
    """
    names = CHALLENGE_MODALITIES
    scale = CHALLENGE_SCALE[scale]
    out = []
    for race in RACES:
        for subject in subjects("train", scale):
            for kind in ("real", "screen"):
                folder = video_dir(race, subject, kind).rsplit("/", 1)[1]
                out.append(_item(f"{CHALLENGE}/train/{folder}", names, race, f"{race}-{subject:03d}", kind))
    number = CHALLENGE_DEV_FIRST
    for race in RACES:
        for subject in subjects("dev", scale):
            for kind in ("real", "screen"):
                out.append(_item(f"{CHALLENGE}/dev/{number:06d}", names, race, f"{race}-{subject:03d}", kind))
                number += 1
    number = 1
    for race in CHALLENGE_TEST_RACES:
        for subject in subjects("test", scale):
            for kind in ("real", "cloth_in", "cloth_out"):
                out.append(_item(f"{CHALLENGE}/test/{number:06d}", names, race, f"{race}-{subject:03d}", kind))
                number += 1
    for shared in range(CHALLENGE_SHARED[scale]):
        out.append(Item(tuple((m, f"{CHALLENGE}/test/{number:06d}/{names[m]}") for m in MODALITIES),
                        f"3D-Mask-{shared % 99:03d}", MASK_ATTACKS["3D-Mask"], f"device{MASK_DEVICE}",
                        "mask-session1-light1", list(RACES)[shared % 3]))
        number += 1
    return out


def items(scale: str) -> list[Item]:
    return main_items(scale) + challenge_items(scale)


def describe(item: Item) -> dict:
    """Split, kind and race of a main-release item, from its folder names."""
    parts = item.path("color").split("/")
    if parts[1] == "Mask":
        return {"split": "test", "kind": "mask", "race": None}
    race, subject = parts[2], int(parts[3].split("-")[1])
    _, _, device, session, pai = (int(x) for x in parts[4].split("_"))
    kind = next(k for k, v in KINDS.items() if v == (device, session, pai))
    split = next(s for s, ids in SPLITS.items() if subject in ids)
    return {"split": split, "kind": kind, "race": race}


def protocol_members(items_: list[Item]) -> dict[tuple[str, str], list[tuple[Item, str]]]:
    """(sub-protocol file stem, split) -> [(item, modality listed)], by the published rules."""
    main = [(describe(i), i) for i in items_ if i.key.startswith("CASIA_CeFA/")]
    masks = [i for d, i in main if d["kind"] == "mask"]
    lists: dict[tuple[str, str], list[tuple[Item, str]]] = {}

    def pick(split, races, kinds, modality="color", with_masks=False):
        chosen = [(i, modality) for d, i in main
                  if d["split"] == split and d["race"] in races and d["kind"] in kinds]
        return chosen + ([(i, modality) for i in masks] if with_masks else [])

    all_kinds, all_races = tuple(KINDS), tuple(RACES)
    for (protocol, fold), stem in SUBPROTOCOLS.items():
        if protocol in ("p1", "p4"):
            race = FOLD_RACE[fold]
            others = tuple(r for r in RACES if r != race)
            train_kinds = all_kinds if protocol == "p1" else ("real", "screen")
            test_kinds = all_kinds if protocol == "p1" else ("real", "cloth_in", "cloth_out")
            lists[stem, "train"] = pick("train", (race,), train_kinds)
            lists[stem, "dev"] = pick("dev", (race,), train_kinds)
            lists[stem, "test"] = pick("test", others, test_kinds, with_masks=True)
        elif protocol == "p2":
            cloth, screen = ("real", "cloth_in", "cloth_out"), ("real", "screen")
            train_kinds, test_kinds = (cloth, screen) if fold == 1 else (screen, cloth)
            lists[stem, "train"] = pick("train", all_races, train_kinds)
            lists[stem, "dev"] = pick("dev", all_races, train_kinds)
            lists[stem, "test"] = pick("test", all_races, test_kinds, with_masks=True)
        else:
            seen = P3_TRAIN_MODALITY[fold]
            lists[stem, "train"] = pick("train", all_races, all_kinds, seen)
            lists[stem, "dev"] = pick("dev", all_races, all_kinds, seen)
            lists[stem, "test"] = [pair for m in MODALITIES if m != seen
                                   for pair in pick("test", all_races, all_kinds, m, with_masks=True)]
    return lists


def protocol_files(items_: list[Item], n_frames: int) -> dict[str, str]:
    """Video lists name `<video>/<modality>`, image lists every frame of it (as the authors' do)."""
    files = {}
    frames = [f"/{i:04d}.jpg" for i in range(1, n_frames + 1)]
    for (stem, split), members in protocol_members(items_).items():
        for level, suffixes in (("video", [""]), ("image", frames)):
            lines = [f"{item.path(m)}{suffix} {0 if item.is_live else 1}" for item, m in members for suffix in suffixes]
            files[f"CASIA_CeFA/protocol/CASIA_CeFA@{stem}_{level}_{split}.txt"] = "\n".join(lines) + "\n"
    files.update(challenge_files(items_, n_frames))
    return files


def challenge_files(items_: list[Item], n_frames: int) -> dict[str, str]:
    """`4@k_*.txt` of the challenge release; label 1 = real (REFERENCE section 3)."""
    files = {}
    for fold, race in FOLD_RACE.items():
        train, dev, test = [], [], []
        for item in items_:
            parts = item.path("color").split("/")
            if parts[0] != CHALLENGE:
                continue
            rel = "/".join(parts[1:3])
            label = 1 if item.is_live else 0
            if parts[1] == "train" and item.ethnicity == race:
                train += [f"{rel}/profile/{f:04d}.jpg {label}" for f in range(1, n_frames + 1)]
            elif parts[1] == "dev" and item.ethnicity == race:
                dev.append((rel, label))
            elif parts[1] == "test" and (item.ethnicity != race or item.attack.pai == "mask_3d"):
                test.append(rel)
        files[f"{CHALLENGE}/4@{fold}_train.txt"] = "".join(f"{line}\n" for line in train)
        files[f"{CHALLENGE}/4@{fold}_dev_ref.txt"] = "".join(f"{rel} {label}\n" for rel, label in dev)
        files[f"{CHALLENGE}/4@{fold}_dev_res.txt"] = "".join(f"{rel}\n" for rel, _ in dev)
        files[f"{CHALLENGE}/4@{fold}_test_res.txt"] = "".join(f"{rel}\n" for rel in test)
    return files


LAYOUT = Layout("cefa", "frames", 10.0, items, protocol_files,
                style={"tint": (1.0, 1.0, 1.0), "blur": 0.4, "noise": 0.01}, modalities=MODALITIES)
