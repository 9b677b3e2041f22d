"""Subject identities built from real face photographs shipped by scikit-image.

`skimage.data.lfw_subset()` holds 100 real 25x25 grey faces and
`skimage.data.astronaut()` one real colour portrait; every synthetic subject
is one of them, warped and colourised per subject (skin tone by ethnicity,
face shape, hair), so identities differ and faces stay detectable.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

# lfw_subset faces left out of the identity pool: dlib's HOG detector missed them
# when upscaled 4x cubic on a plain canvas (4, 13, 28, 67, 82: 95/100 found), or
# missed the rendered head sprite in >= 2 of 12 renderings (80/96 px, three skin
# tones, roll +-5 degrees), or in > 10% of frames of rendered print / replay
# attacks (7, 23, 26, 29, 71, 90, 96). Measured once; tests/test_synth_layouts.py
# re-checks the detection rate on generated videos.
LFW_UNDETECTED = (4, 7, 9, 12, 13, 16, 17, 23, 26, 27, 28, 29, 30, 32, 34, 38, 43, 44, 45, 47, 54,
                  56, 59, 62, 67, 68, 71, 76, 81, 82, 83, 86, 88, 90, 91, 96, 97, 98)
# dlib's HOG box of the astronaut's face in skimage.data.astronaut() (measured),
# widened by 10% to match the lfw framing.
ASTRONAUT_BOX = (166, 66, 274, 174)

# Mean linear RGB skin reflectance per ethnicity (CeFA codes, REFERENCE section 3):
# AF darker, CA lighter and redder, EA yellower. Per-subject jitter is added.
SKIN_TONES = {
    "AF": (0.42, 0.29, 0.22),
    "CA": (0.86, 0.66, 0.55),
    "EA": (0.80, 0.64, 0.46),
}
HAIR_TONES = ((0.08, 0.06, 0.05), (0.25, 0.16, 0.09), (0.45, 0.33, 0.18), (0.15, 0.12, 0.11))

# Landmarks in the unit square of the face texture (lfw framing).
EYES = ((0.31, 0.39), (0.69, 0.39))
MOUTH = (0.5, 0.76)
NOSE = (0.5, 0.58)


def stable_seed(*parts: object) -> list[int]:
    """A numpy seed sequence from strings and ints, stable across processes."""
    return [zlib.crc32(str(part).encode()) for part in parts]


@lru_cache(maxsize=1)
def face_textures() -> tuple[np.ndarray, ...]:
    """The identity pool: real grey faces, float32 in [0, 1], 64x64."""
    from skimage import data

    lfw = data.lfw_subset()[:100]
    faces = [lfw[i] for i in range(100) if i not in LFW_UNDETECTED]
    x0, y0, x1, y1 = ASTRONAUT_BOX
    astronaut = cv2.cvtColor(data.astronaut()[y0:y1, x0:x1], cv2.COLOR_RGB2GRAY) / 255.0
    faces.append(astronaut)
    return tuple(cv2.resize(f.astype(np.float32), (64, 64), interpolation=cv2.INTER_CUBIC).clip(0, 1)
                 for f in faces)


@dataclass(frozen=True)
class Identity:
    """One subject: a grey face texture, skin and hair colour, face shape."""

    texture: np.ndarray  # float32 [S, S] in [0, 1]
    skin: np.ndarray  # float32 [3] linear RGB reflectance
    hair: np.ndarray  # float32 [3]
    width: float  # head ellipse width relative to the texture
    hair_cover: float  # fraction of the head top covered by hair


def make_identity(seed: int, dataset: str, subject: str, ethnicity: str, size: int) -> Identity:
    """The identity of `subject`, the same for every video of that subject."""
    rng = np.random.default_rng(stable_seed(seed, dataset, "identity", subject))
    pool = face_textures()
    base = pool[int(rng.integers(len(pool)))]
    # A mild per-subject affine warp (face width, jaw, tilt) adds identity variety.
    sx, sy = rng.uniform(0.92, 1.08), rng.uniform(0.95, 1.05)
    warp = np.array([[sx, rng.uniform(-0.04, 0.04), 32 * (1 - sx)],
                     [0.0, sy, 32 * (1 - sy)]], np.float32)
    texture = cv2.warpAffine(base, warp, (64, 64), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    texture = cv2.resize(texture, (size, size), interpolation=cv2.INTER_CUBIC)
    lo, hi = np.percentile(texture, (2, 98))  # the same contrast for every identity
    texture = ((texture - lo) / max(hi - lo, 1e-3)).clip(0, 1)
    skin = np.clip(np.array(SKIN_TONES[ethnicity]) * rng.uniform(0.9, 1.1, 3), 0.05, 1)
    hair = np.array(HAIR_TONES[int(rng.integers(len(HAIR_TONES)))]) * rng.uniform(0.8, 1.2)
    return Identity(texture.astype(np.float32), skin.astype(np.float32), hair.astype(np.float32),
                    float(rng.uniform(1.05, 1.2)), float(rng.uniform(0.25, 0.4)))
