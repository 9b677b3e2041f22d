"""MSU-MFSD layout facts (REFERENCE section 3, MSU-MFSD).

`real/real_clientNNN_{android,laptop}_SD_scene01.{mp4,mov}` and
`attack/attack_clientNNN_{android,laptop}_SD_{ipad_video,iphone_video,printed_photo}_scene01.{mp4,mov}`;
the Android phone records .mp4 and the laptop .mov. Subject lists
`train_sub_list.txt` / `test_sub_list.txt`, one two-digit id per line. No dev set.
"""

from __future__ import annotations

from fas.synth.render import Attack
from fas.synth.spec import Item, Layout, ethnicity_of, take

TRAIN = (2, 3, 5, 6, 7, 8, 9, 11, 12, 21, 22, 34, 53, 54, 55)
TEST = (1, 13, 14, 23, 24, 26, 28, 29, 30, 32, 33, 35, 36, 37, 39, 42, 48, 49, 50, 51)
DEVICES = {"android": ".mp4", "laptop": ".mov"}
ATTACKS = {"ipad_video": Attack("replay", medium="ipad", quality=0.9, handheld=False),
           "iphone_video": Attack("replay", medium="iphone", quality=0.6, handheld=True),
           "printed_photo": Attack("print", medium="a3-print", quality=0.7, handheld=True)}
POPULATION = {"CA": 0.5, "EA": 0.3, "AF": 0.2}
# Demo (train, test) clients: 2 real and 6 attack videos each, so 10 test clients
# give 20 live test videos and 20 of each attack species; 10 of the real release's 15
# training clients (with 6, MotionEnhancement reached test AUC 0.89, with 10 0.99).
DEMO_CLIENTS = (10, 10)


def items(scale: str) -> list[Item]:
    out = []
    for client in sorted(take(TRAIN, scale, 1, DEMO_CLIENTS[0]) + take(TEST, scale, 1, DEMO_CLIENTS[1])):
        eth = ethnicity_of(str(client), POPULATION, "msu")
        for device, ext in DEVICES.items():
            name = f"real_client{client:03d}_{device}_SD_scene01{ext}"
            out.append(Item((("color", f"real/{name}"),), f"{client:03d}", Attack(), device, "scene01", eth))
            for kind, attack in ATTACKS.items():
                name = f"attack_client{client:03d}_{device}_SD_{kind}_scene01{ext}"
                out.append(Item((("color", f"attack/{name}"),), f"{client:03d}", attack, device, "scene01", eth))
    return out


def protocol_files(items_: list[Item], n_frames: int) -> dict[str, str]:
    present = {int(i.subject) for i in items_}
    return {f"{name}_sub_list.txt": "".join(f"{c:02d}\n" for c in ids if c in present)
            for name, ids in (("train", TRAIN), ("test", TEST))}


LAYOUT = Layout("msu", "video", 30.0, items, protocol_files,
                style={"tint": (0.95, 1.0, 1.05), "blur": 0.6, "noise": 0.015})
