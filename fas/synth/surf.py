"""CASIA-SURF layout facts (REFERENCE section 3, CASIA-SURF).

`Data/{Training,Val,Testing}/{real_part,fake_part}/CLKJ_<AS|BS|CS>NNNN/<video>.rssdk/{color,depth,ir}/NNNN.jpg`.
Real video `real.rssdk`; fakes `01_e_s .. 06_enm_b`: cut regions eyes / eyes+nose /
eyes+nose+mouth, flat (s) or bent (b) print. Training uses real + attacks 4-6,
Val and Testing real + attacks 1-3; 300 / 100 / 600 subjects.

List files (names, place and the label polarity are unverified, modelled on the
challenge release): `Data/{train,val_private,test_private}_list.txt`, one line per
frame `<color> <depth> <ir> <label>` relative to `Data/`, label 1 = real.
"""

from __future__ import annotations

from fas.synth.render import Attack
from fas.synth.spec import Item, Layout, take

SPLITS = {"Training": 300, "Val": 100, "Testing": 600}
LISTS = {"Training": "train_list.txt", "Val": "val_private_list.txt", "Testing": "test_private_list.txt"}
FAKES = {"01_e_s": (("eyes",), 0.0), "02_e_b": (("eyes",), 0.6),
         "03_en_s": (("eyes", "nose"), 0.0), "04_en_b": (("eyes", "nose"), 0.6),
         "05_enm_s": (("eyes", "nose", "mouth"), 0.0), "06_enm_b": (("eyes", "nose", "mouth"), 0.6)}
SPLIT_FAKES = {"Training": ("04_en_b", "05_enm_s", "06_enm_b"),
               "Val": ("01_e_s", "02_e_b", "03_en_s"), "Testing": ("01_e_s", "02_e_b", "03_en_s")}
# Subject id prefixes AS/BS/CS are acquisition batches (unverified): assigned in turn.
PREFIXES = ("AS", "BS", "CS")
MODALITIES = ("color", "depth", "ir")
# Subjects per split at (tiny, demo): one real and three fakes each, so the demo's
# Testing split holds 20 live and 60 attack videos, Val 5 and 15.
REDUCED = {"Training": (2, 10), "Val": (1, 5), "Testing": (1, 20)}


def subject_ids(scale: str) -> dict[str, list[str]]:
    """CLKJ_ ids per split, numbered across the whole dataset."""
    out, number = {}, 0
    for split, count in SPLITS.items():
        ids = []
        for _ in range(count):
            number += 1
            ids.append(f"CLKJ_{PREFIXES[number % 3]}{number:04d}")
        out[split] = take(ids, scale, *REDUCED[split])
    return out


def items(scale: str) -> list[Item]:
    out = []
    for split, ids in subject_ids(scale).items():
        for sid in ids:
            videos = [("real_part", "real", Attack())]
            videos += [("fake_part", name, Attack("print", cut=FAKES[name][0], bend=FAKES[name][1],
                                                  medium="a4-print", quality=0.7))
                       for name in SPLIT_FAKES[split]]
            for part, name, attack in videos:
                base = f"Data/{split}/{part}/{sid}/{name}.rssdk"
                out.append(Item(tuple((m, f"{base}/{m}") for m in MODALITIES), sid, attack,
                                "realsense", f"{split}-{sid}", "EA", source=f"{sid}-photo", attacker=sid))
    return out


def protocol_files(items_: list[Item], n_frames: int) -> dict[str, str]:
    files = {}
    for split, name in LISTS.items():
        lines = []
        for item in items_:
            if item.path().split("/")[1] != split:
                continue
            for f in range(1, n_frames + 1):
                paths = [f"{item.path(m)[len('Data/'):]}/{item.frame_name.format(f)}" for m in MODALITIES]
                lines.append(" ".join(paths) + f" {1 if item.is_live else 0}")
        files[f"Data/{name}"] = "".join(f"{line}\n" for line in lines)
    return files


LAYOUT = Layout("surf", "frames", 10.0, items, protocol_files,
                style={"tint": (0.98, 1.0, 1.02), "blur": 0.5, "noise": 0.012}, modalities=MODALITIES)
