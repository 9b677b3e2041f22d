"""OULU-NPU: `{Train,Dev,Test}_files/Phone_Session_User_File.avi` and its protocol lists.

Layout, codes and protocol files: REFERENCE.md section 3, "OULU-NPU".
"""

from __future__ import annotations

import re

from fas.datasets.base import RELEASE, Adapter, BadName, Context, Expected, Layout

# File 1 real, 2-3 print, 4-5 replay (two printers, two displays).
FILES = {"1": ("live", None), "2": ("print", "printer_1"), "3": ("print", "printer_2"),
         "4": ("replay", "display_1"), "5": ("replay", "display_2")}
USERS = {"Train_files": range(1, 21), "Dev_files": range(21, 36), "Test_files": range(36, 56)}

# Videos per split as (live, attack), every fold alike: the OULU-NPU protocol sizes
# (P1 1200 / 900 / 600, REFERENCE section 3; the others follow its rules: 20 / 15 / 20
# users, 6 phones, 3 sessions, files 1-5).
SIZES = {"p1": ((240, 960), (180, 720), (120, 480)), "p2": ((360, 720), (270, 540), (360, 720)),
         "p3": ((300, 1200), (225, 900), (60, 240)), "p4": ((200, 400), (150, 300), (20, 40))}
FOLDS = {"p1": (1,), "p2": (1,), "p3": range(1, 7), "p4": range(1, 7)}
PUBLISHED = tuple(Expected(RELEASE, protocol, fold, split, live, attack)
                  for protocol, sizes in SIZES.items() for fold in FOLDS[protocol]
                  for split, (live, attack) in zip(("train", "dev", "test"), sizes))

LIST_FILE = re.compile(r"Protocols/Protocol_(?P<protocol>[1-4])/(?P<split>Train|Dev|Test)(?:_(?P<fold>[1-6]))?\.txt")
LIST_LINE = re.compile(r"(?P<sign>[+-][12]),(?P<name>\d_\d_\d\d_\d)")


def decode(groups: dict) -> dict:
    if groups["file"] not in FILES:
        raise BadName(f"unknown File code {groups['file']!r} (known: 1-5)")
    if int(groups["user"]) not in USERS[groups["folder"]]:
        raise BadName(f"user {groups['user']} does not belong in {groups['folder']}")
    pai, medium = FILES[groups["file"]]
    return {"subject": groups["user"], "is_live": pai == "live", "pai": pai, "medium": medium,
            "device": f"phone_{groups['phone']}", "session": groups["session"]}


class Oulu(Adapter):
    name = "oulu"
    media = "video"
    published = PUBLISHED
    layouts = (Layout(re.compile(
        r"(?P<video>(?P<folder>Train_files|Dev_files|Test_files)/"
        r"(?P<name>(?P<phone>[1-6])_(?P<session>[1-3])_(?P<user>\d\d)_(?P<file>\d)))\.avi"), decode),)
    # Protocol lists, and the per-video eye-position text files of the release.
    side_files = re.compile(r"Protocols/.*\.txt|(?:Train|Dev|Test)_files/\d_\d_\d\d_\d\.txt")

    def build_protocols(self, ctx: Context) -> None:
        by_name = {video_id.split("/")[1]: video_id for video_id in ctx.videos}
        found = False
        for rel, match in ctx.side(LIST_FILE):
            protocol = int(match["protocol"])
            if (match["fold"] is None) != (protocol in (1, 2)):
                ctx.report.add(rel, "Protocol_1/2 lists have no fold suffix, Protocol_3/4 lists need _1.._6")
                continue
            found = True
            fold, split = int(match["fold"] or 1), match["split"].lower()
            for where, line in ctx.lines(rel):
                parsed = LIST_LINE.fullmatch(line)
                if not parsed:
                    ctx.report.add(where, f"malformed protocol line {line!r}: expected '+1,1_1_01_1'")
                    continue
                video_id = by_name.get(parsed["name"], f"{match['split']}_files/{parsed['name']}")
                # The sign only says live (+1) or attack (-1/-2); the PAI comes from the File field.
                ctx.add_listed(where, f"p{protocol}", fold, split, video_id, parsed["sign"] == "+1")
        if not found:
            ctx.report.add("Protocols", "no protocol lists found (Protocols/Protocol_N/*.txt)")
