"""CASIA-FASD layout facts (REFERENCE section 3, CASIA-FASD).

`{train_release/1..20, test_release/1..30}/{1..8,HR_1..HR_4}.avi`: 1, 2, HR_1 real;
3, 4, HR_2 warped photo; 5, 6, HR_3 cut photo; 7, 8, HR_4 video replay, at low
(odd numbers), normal (even) and high (HR_) quality. No protocol files, no dev set.
"""

from __future__ import annotations

from fas.synth.render import Attack
from fas.synth.spec import Item, Layout, ethnicity_of, take

SUBJECTS = {"train_release": range(1, 21), "test_release": range(1, 31)}
QUALITY = {"low": 0.2, "normal": 0.6, "high": 1.0}
# File name -> (species, quality). The quality is also the capturing camera.
FILES = {"1": ("live", "low"), "2": ("live", "normal"), "HR_1": ("live", "high"),
         "3": ("warped_photo", "low"), "4": ("warped_photo", "normal"), "HR_2": ("warped_photo", "high"),
         "5": ("cut_photo", "low"), "6": ("cut_photo", "normal"), "HR_3": ("cut_photo", "high"),
         "7": ("replay", "low"), "8": ("replay", "normal"), "HR_4": ("replay", "high")}
RESOLUTION = {"low": 1.0, "normal": 1.0, "high": 1.4}  # HR videos are larger
# Demo subjects per folder: 3 real and 3 of each attack species each, so 7 test
# subjects give 21 live test videos and 21 per species. 10 train subjects, as MSU-MFSD's
# demo: with 6, MotionEnhancement learned those faces (train AUC 1.000, test 0.67-0.82
# on 3 of 5 seeds; docs/synthetic.md, "Demo scale").
DEMO_SUBJECTS = {"train_release": 10, "test_release": 7}


def attack(pai: str, quality: str) -> Attack:
    q = QUALITY[quality]
    if pai == "warped_photo":  # a printed photo bent by hand
        return Attack("warped_photo", bend=0.7, quality=q, medium=f"print-{quality}")
    if pai == "cut_photo":  # eyes cut out, the attacker's eyes blink behind
        return Attack("cut_photo", cut=("eyes",), quality=q, medium=f"print-{quality}")
    if pai == "replay":
        return Attack("replay", quality=q, medium="ipad", handheld=True)
    return Attack()


def items(scale: str) -> list[Item]:
    out = []
    for split, subjects in SUBJECTS.items():
        for subject in take(subjects, scale, 1, DEMO_SUBJECTS[split]):
            sid = f"{split.split('_')[0]}{subject}"
            for name, (pai, quality) in FILES.items():
                out.append(Item((("color", f"{split}/{subject}/{name}.avi"),), sid, attack(pai, quality),
                                device=quality, session=sid, ethnicity=ethnicity_of(sid, {"EA": 1.0}, "casia"),
                                resolution=RESOLUTION[quality]))
    return out


def protocol_files(items_: list[Item], n_frames: int) -> dict[str, str]:
    return {}  # the split is the folder (train_release / test_release)


LAYOUT = Layout("casia_fasd", "video", 25.0, items, protocol_files,
                style={"tint": (1.0, 0.95, 0.88), "blur": 0.8, "noise": 0.02})
