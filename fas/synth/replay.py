"""Idiap Replay-Attack layout facts (REFERENCE section 3, Replay-Attack).

Real `{train,devel,test}/real/clientNNN_session01_webcam_authenticate_{adverse,controlled}_{1,2}.mov`;
attacks `{train,devel,test}/attack/{fixed,hand}/attack_{print,mobile,highdef}_clientNNN_session01_{highdef,mobile}_{photo,video}_{adverse,controlled}.mov`;
enrolment videos under `enroll/`; face annotations `face-locations/<same path>.face`,
one `frame x y w h` line per frame (frame from 0, top-left corner).
"""

from __future__ import annotations

from fas.synth.render import Attack
from fas.synth.spec import Item, Layout, ethnicity_of, take

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
                source=f"client{client}-{attack.medium}",
                annotation=f"face-locations/{path[:-4]}.face" if annotate else None)


def items(scale: str) -> list[Item]:
    out = []
    for split, clients in CLIENTS.items():
        for client in take(clients, scale, 1, 2):
            # Reduced scales keep one lighting per client (alternating) to stay small.
            for light in LIGHTS if scale == "full" else LIGHTS[client % 2: client % 2 + 1]:
                out.append(_item(ENROLL.format(split=split, client=client, light=light), client, Attack(), light))
                for take_no in (1, 2):
                    name = f"client{client:03d}_session01_webcam_authenticate_{light}_{take_no}.mov"
                    out.append(_item(f"{split}/real/{name}", client, Attack(), light))
                for support in ("fixed", "hand"):
                    for kind, device, medium in KINDS:
                        name = f"attack_{kind}_client{client:03d}_session01_{device}_{medium}_{light}.mov"
                        out.append(_item(f"{split}/attack/{support}/{name}", client,
                                         _attack(kind, medium, support), light))
    return out


def protocol_files(items_: list[Item], n_frames: int) -> dict[str, str]:
    return {}  # grandtest is the folder split (train / devel / test), enrolment excluded


LAYOUT = Layout("replay", "video", 25.0, items, protocol_files,
                style={"tint": (1.0, 0.97, 0.9), "blur": 0.7, "noise": 0.018})
