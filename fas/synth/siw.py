"""SiW layout facts (REFERENCE section 3, SiW).

`{Train,Test}/{live,spoof}/<SSS>/<SSS-Sensor-Type-Medium-Session>.mov`, Type 1 live,
2 print, 3 replay; replay Medium 1-4 (iPad Pro, iPhone 7 Plus, Asus MB168B,
Galaxy S8). Protocols are rules, not files (P1 first 60 frames of train, P2
leave-one-replay-medium-out, P3 print <-> replay).
"""

from __future__ import annotations

from fas.synth.render import Attack
from fas.synth.spec import Item, Layout, ethnicity_of, per_scale

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


# Reduced scales per split: (subjects, live media per subject, print media per subject);
# every subject keeps all four replay media. Demo sizing (docs/synthetic.md): Protocol 2
# tests one replay medium, so 20 test subjects give 20 videos of each medium; one live
# and one print video per test subject (media in turn) give 20 live and 20 print.
REDUCED = {"tiny": {"Train": (1, 4, 2), "Test": (1, 4, 2)},
           "demo": {"Train": (8, 2, 2), "Test": (20, 1, 1)}}


def _spoof_session(position: int, medium: int, session: int) -> str:
    """Spoof videos are filmed in the live videos' capture conditions, in turn (unverified)."""
    return f"condition{LIVE_MEDIA[(position + medium) % len(LIVE_MEDIA)]}-{session}"


def _media(options, count: int, position: int) -> list:
    """`count` of `options`, starting at `position` in turn (all of them at full scale)."""
    options = list(options)
    return [options[(position + j) % len(options)] for j in range(count)]


def items(scale: str) -> list[Item]:
    out = []
    sessions = per_scale(scale, (1,), (1,), (1, 2))
    for split, subjects in SUBJECTS.items():
        subjects = list(subjects)
        n_subjects, n_live, n_print = ((len(subjects), len(LIVE_MEDIA), len(PRINT_MEDIA))
                                       if scale == "full" else REDUCED[scale][split])
        for position, subject in enumerate(subjects[:n_subjects]):
            sid = f"{subject:03d}"
            eth = ethnicity_of(sid, POPULATION, "siw")
            live_media = sorted(_media(LIVE_MEDIA, n_live, position))
            for session in sessions:
                for medium in live_media:
                    last = medium == live_media[-1] and session == sessions[-1]
                    ext = ".m.mov" if last and subject % M_MOV_EVERY == 0 else ".mov"
                    name = f"{sid}-{SENSOR}-1-{medium}-{session}{ext}"
                    out.append(Item((("color", f"{split}/live/{sid}/{name}"),), sid, Attack(),
                                    f"sensor{SENSOR}", f"condition{medium}-{session}", eth))
                for medium in sorted(_media(PRINT_MEDIA, n_print, position)):
                    name = f"{sid}-{SENSOR}-2-{medium}-{session}.mov"
                    out.append(Item((("color", f"{split}/spoof/{sid}/{name}"),), sid,
                                    Attack("print", medium=f"print{medium}", quality=PRINT_MEDIA[medium]),
                                    f"sensor{SENSOR}", _spoof_session(position, medium, session), eth))
                for medium, (screen, quality) in REPLAY_MEDIA.items():
                    name = f"{sid}-{SENSOR}-3-{medium}-{session}.mov"
                    out.append(Item((("color", f"{split}/spoof/{sid}/{name}"),), sid,
                                    Attack("replay", medium=screen, quality=quality, handheld=False),
                                    f"sensor{SENSOR}", _spoof_session(position, medium, session), eth))
    return out


def protocol_files(items_: list[Item], n_frames: int) -> dict[str, str]:
    return {}


LAYOUT = Layout("siw", "video", 30.0, items, protocol_files,
                style={"tint": (1.02, 1.0, 0.97), "blur": 0.5, "noise": 0.01})
