"""SiW layout facts (REFERENCE section 3, SiW).

`{Train,Test}/{live,spoof}/<SSS>/<SSS-Sensor-Type-Medium-Session>.mov`, Type 1 live,
2 print, 3 replay; replay Medium 1-4 (iPad Pro, iPhone 7 Plus, Asus MB168B,
Galaxy S8). Protocols are rules, not files (P1 first 60 frames of train, P2
leave-one-replay-medium-out, P3 print <-> replay).
"""

from __future__ import annotations

from fas.synth.render import Attack
from fas.synth.spec import Item, Layout, ethnicity_of, per_scale, take

# 165 subjects: 90 train, 75 test (which ids go where is unverified: the first 90).
SUBJECTS = {"Train": range(1, 91), "Test": range(91, 166)}
SENSOR = 1
# Live Medium = capture condition (distance / pose / illumination / expression),
# print Medium 1-2 = print quality; sessions 1-2 (unverified: documented choice).
LIVE_MEDIA = (1, 2, 3, 4)
PRINT_MEDIA = {1: 0.9, 2: 0.4}
REPLAY_MEDIA = {1: ("ipad-pro", 0.95), 2: ("iphone7plus", 0.8), 3: ("asus-mb168b", 0.5), 4: ("galaxy-s8", 0.85)}
# Some real live files end in `.m.mov`; here the last live video of every fifth subject.
M_MOV_EVERY = 5
POPULATION = {"CA": 0.35, "EA": 0.35, "AF": 0.3}


def items(scale: str) -> list[Item]:
    out = []
    sessions = per_scale(scale, (1,), (1,), (1, 2))
    for split, subjects in SUBJECTS.items():
        for subject in take(subjects, scale, 1, 3):
            sid = f"{subject:03d}"
            eth = ethnicity_of(sid, POPULATION, "siw")
            for session in sessions:
                for medium in LIVE_MEDIA:
                    last = medium == LIVE_MEDIA[-1] and session == sessions[-1]
                    ext = ".m.mov" if last and subject % M_MOV_EVERY == 0 else ".mov"
                    name = f"{sid}-{SENSOR}-1-{medium}-{session}{ext}"
                    out.append(Item((("color", f"{split}/live/{sid}/{name}"),), sid, Attack(),
                                    f"sensor{SENSOR}", f"condition{medium}-{session}", eth))
                for medium, quality in PRINT_MEDIA.items():
                    name = f"{sid}-{SENSOR}-2-{medium}-{session}.mov"
                    out.append(Item((("color", f"{split}/spoof/{sid}/{name}"),), sid,
                                    Attack("print", medium=f"print{medium}", quality=quality),
                                    f"sensor{SENSOR}", f"spoof-{session}", eth, source=f"{sid}-photo"))
                for medium, (screen, quality) in REPLAY_MEDIA.items():
                    name = f"{sid}-{SENSOR}-3-{medium}-{session}.mov"
                    out.append(Item((("color", f"{split}/spoof/{sid}/{name}"),), sid,
                                    Attack("replay", medium=screen, quality=quality, handheld=False),
                                    f"sensor{SENSOR}", f"spoof-{session}", eth, source=f"{sid}-video"))
    return out


def protocol_files(items_: list[Item], n_frames: int) -> dict[str, str]:
    return {}


LAYOUT = Layout("siw", "video", 30.0, items, protocol_files,
                style={"tint": (1.02, 1.0, 0.97), "blur": 0.5, "noise": 0.01})
