"""OULU-NPU layout facts (REFERENCE section 3, OULU-NPU).

`{Train,Dev,Test}_files/Phone_Session_User_File.avi`; protocol lists
`Protocols/Protocol_{1,2}/{Train,Dev,Test}.txt` and
`Protocols/Protocol_{3,4}/{Train,Dev,Test}_{1..6}.txt`, lines `+1,1_1_01_1`
(+1 real, -1 print, -2 display replay).
"""

from __future__ import annotations

from fas.synth.render import Attack
from fas.synth.spec import Item, Layout, ethnicity_of

PHONES = (1, 2, 3, 4, 5, 6)
SESSIONS = (1, 2, 3)
USERS = {"Train": range(1, 21), "Dev": range(21, 36), "Test": range(36, 56)}
# File: 1 real, 2-3 print (printers 1, 2), 4-5 replay (displays 1, 2).
FILES = {1: Attack(), 2: Attack("print", medium="printer1", quality=0.4),
         3: Attack("print", medium="printer2", quality=0.8),
         4: Attack("replay", medium="display1", quality=0.5, handheld=False),
         5: Attack("replay", medium="display2", quality=0.9, handheld=False)}
LABELS = {1: "+1", 2: "-1", 3: "-1", 4: "-2", 5: "-2"}
POPULATION = {"CA": 0.6, "EA": 0.25, "AF": 0.15}

# Reduced scales give each user a few (phone, session) pairs: Train/Dev users cycle
# through sessions 1-2 over all phones, Test users through session 3, so every
# protocol and fold keeps members of both classes. Per split: (users, pairs per
# user, files per pair); None = all five files.
REDUCED = {"tiny": {"Train": (1, 2, None), "Dev": (1, 2, None), "Test": (1, 6, None)},
           "demo": {"Train": (6, 2, None), "Dev": (3, 2, (1, 2, 4)), "Test": (20, 6, "one_attack")}}
# Demo sizing (docs/synthetic.md): Protocol 4 tests one phone in session 3 with files
# 1, 3, 5, so each of 20 test users films every phone in session 3, the real file and
# one attack file, print (3) or replay (5) in turn: every P3/P4 fold tests 20 live,
# 10 print and 10 replay videos. Dev lists of Protocols 2 and 4 use files 1, 2, 4 only,
# which is all a dev user films; 6 dev pairs leave 5 live dev videos in every P3/P4 fold.


def _pairs(split: str, position: int, scale: str) -> list[tuple[int, int]]:
    if scale == "full":
        return [(p, s) for p in PHONES for s in SESSIONS]
    sessions = (3,) if split == "Test" else (1, 2)
    cycle = [(p, sessions[(p + k) % len(sessions)]) for k in range(len(sessions)) for p in PHONES]
    n = REDUCED[scale][split][1]
    return [cycle[(position * n + j) % len(cycle)] for j in range(n)]


def _files(split: str, user: int, phone: int, scale: str) -> tuple[int, ...]:
    chosen = None if scale == "full" else REDUCED[scale][split][2]
    if chosen is None:
        return tuple(FILES)
    if chosen == "one_attack":
        return (1, 3 if (user + phone) % 2 == 0 else 5)
    return chosen


def video_id(phone: int, session: int, user: int, file: int) -> str:
    return f"{phone}_{session}_{user:02d}_{file}"


def items(scale: str) -> list[Item]:
    out = []
    for split, users in USERS.items():
        users = list(users) if scale == "full" else list(users)[: REDUCED[scale][split][0]]
        for position, user in enumerate(users):
            for phone, session in sorted(_pairs(split, position, scale)):
                for file in _files(split, user, phone, scale):
                    attack = FILES[file]
                    vid = video_id(phone, session, user, file)
                    out.append(Item((("color", f"{split}_files/{vid}.avi"),), f"{user:02d}", attack,
                                    device=f"phone{phone}", session=f"session{session}",
                                    ethnicity=_ethnicity(user)))
    return out


def _ethnicity(user: int) -> str:
    return ethnicity_of(str(user), POPULATION, "oulu")


def parse(item: Item) -> tuple[str, int, int, int, int]:
    """(split folder, phone, session, user, file) of an item."""
    folder, name = item.path().split("/")
    phone, session, user, file = (int(x) for x in name[:-4].split("_"))
    return folder.removesuffix("_files"), phone, session, user, file


def protocol_members(items_: list[Item]) -> dict[str, list[Item]]:
    """Protocol file path -> its videos, by the published rules (REFERENCE section 3)."""
    parsed = [(parse(i), i) for i in items_]
    lists: dict[str, list[Item]] = {}
    for split in ("Train", "Dev", "Test"):
        sessions = (3,) if split == "Test" else (1, 2)
        files = (1, 3, 5) if split == "Test" else (1, 2, 4)
        mine = [(f, i) for f, i in parsed if f[0] == split]
        lists[f"Protocols/Protocol_1/{split}.txt"] = [i for f, i in mine if f[2] in sessions]
        lists[f"Protocols/Protocol_2/{split}.txt"] = [i for f, i in mine if f[4] in files]
        for fold in PHONES:
            phones = (fold,) if split == "Test" else tuple(p for p in PHONES if p != fold)
            lists[f"Protocols/Protocol_3/{split}_{fold}.txt"] = [i for f, i in mine if f[1] in phones]
            lists[f"Protocols/Protocol_4/{split}_{fold}.txt"] = [
                i for f, i in mine if f[1] in phones and f[2] in sessions and f[4] in files]
    return lists


def protocol_files(items_: list[Item], n_frames: int) -> dict[str, str]:
    text = {}
    for path, members in protocol_members(items_).items():
        lines = [f"{LABELS[parse(i)[4]]},{i.path().split('/')[1][:-4]}" for i in members]
        text[path] = "\n".join(lines) + "\n"
    return text


LAYOUT = Layout("oulu", "video", 30.0, items, protocol_files,
                style={"tint": (1.0, 0.98, 0.94), "blur": 0.5, "noise": 0.01})
