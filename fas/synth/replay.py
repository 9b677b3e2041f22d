"""Idiap Replay-Attack layout facts (REFERENCE section 3, Replay-Attack).

Real `{train,devel,test}/real/clientNNN_session01_webcam_authenticate_{adverse,controlled}_{1,2}.mov`;
attacks `{train,devel,test}/attack/{fixed,hand}/attack_{print,mobile,highdef}_clientNNN_session01_{highdef,mobile}_{photo,video}_{adverse,controlled}.mov`;
enrolment videos under `enroll/`; face annotations `face-locations/<same path>.face`,
one `frame x y w h` line per frame (frame from 0, top-left corner).
"""

from __future__ import annotations

from fas.synth.render import Attack
from fas.synth.spec import Item, Layout, ethnicity_of

# 15 / 15 / 20 clients. The real ids are not contiguous; contiguous ids are used
# here (unverified which ids go where).
CLIENTS = {"train": range(1, 16), "devel": range(16, 31), "test": range(31, 51)}
LIGHTS = ("adverse", "controlled")
# (attack type, recorded with, medium): print of a high-definition photo, a
# photo or video shown on an iPhone (mobile) or an iPad (highdef).
KINDS = (("print", "highdef", "photo"), ("mobile", "mobile", "photo"), ("mobile", "mobile", "video"),
         ("highdef", "highdef", "photo"), ("highdef", "highdef", "video"))
# Enrolment file names (unverified): one video per lighting and client.
ENROLL = "enroll/{split}/real/client{client:03d}_session01_enroll_{light}_1.mov"
POPULATION = {"CA": 0.7, "EA": 0.15, "AF": 0.15}


def _attack(kind: str, medium: str, support: str) -> Attack:
    handheld = support == "hand"
    if kind == "print":
        return Attack("print", medium="highdef-print", quality=0.8, handheld=handheld)
    return Attack("replay", medium=kind, quality=0.9 if kind == "highdef" else 0.5,
                  handheld=handheld, still=medium == "photo")


def _item(path: str, client: int, attack: Attack, light: str, annotate: bool = True) -> Item:
    sid = f"{client:03d}"
    return Item((("color", path),), sid, attack, "webcam", light, ethnicity_of(sid, POPULATION, "replay"),
                annotation=f"face-locations/{path[:-4]}.face" if annotate else None)


# Reduced scales per split: (clients, attack videos per client); each client keeps one
# lighting (in turn) and both real takes. None = all ten attacks. A client's attacks
# start with one of each species (print, mobile, highdef), in turn over the clients'
# supports and contents, so the demo's 10 test clients give 20 live test videos and 10
# of each species. The demo trains on all 15 train clients (90 videos): with 8 (48
# videos, 0.4x the demo CASIA-FASD train split, where the real one is 1.5x) MEVR's test
# AUC fell to 0.86 on one of five seeds (docs/synthetic.md).
REDUCED = {"tiny": {"train": (1, None), "devel": (1, None), "test": (1, None)},
           "demo": {"train": (15, 4), "devel": (5, 3), "test": (10, 3)}}


def _attacks(position: int, count: int | None) -> list[tuple[str, str, str, str]]:
    """(support, kind, device, medium) of a client's attack videos."""
    combos = [(support, *kind) for support in ("fixed", "hand") for kind in KINDS]
    if count is None:
        return combos
    by_species = [[c for c in combos if c[1] == kind] for kind in ("print", "mobile", "highdef")]
    first = [group[position % len(group)] for group in by_species]
    rest = [c for c in combos if c not in first]
    return first + [rest[(position + j) % len(rest)] for j in range(count - len(first))]


def items(scale: str) -> list[Item]:
    out = []
    for split, clients in CLIENTS.items():
        clients = list(clients)
        n_clients, n_attacks = (len(clients), len(KINDS) * 2) if scale == "full" else REDUCED[scale][split]
        for position, client in enumerate(clients[:n_clients]):
            # Reduced scales keep one lighting per client (alternating) to stay small.
            for light in LIGHTS if scale == "full" else LIGHTS[client % 2: client % 2 + 1]:
                out.append(_item(ENROLL.format(split=split, client=client, light=light), client, Attack(), light))
                for take_no in (1, 2):
                    name = f"client{client:03d}_session01_webcam_authenticate_{light}_{take_no}.mov"
                    out.append(_item(f"{split}/real/{name}", client, Attack(), light))
                for support, kind, device, medium in sorted(_attacks(position, n_attacks)):
                    name = f"attack_{kind}_client{client:03d}_session01_{device}_{medium}_{light}.mov"
                    out.append(_item(f"{split}/attack/{support}/{name}", client,
                                     _attack(kind, medium, support), light))
    return out


def protocol_files(items_: list[Item], n_frames: int) -> dict[str, str]:
    return {}  # grandtest is the folder split (train / devel / test), enrolment excluded


LAYOUT = Layout("replay", "video", 25.0, items, protocol_files,
                style={"tint": (1.0, 0.97, 0.9), "blur": 0.7, "noise": 0.018})
