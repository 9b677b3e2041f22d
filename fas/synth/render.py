"""Shared renderers: a face scene, presentation attacks, the colour/depth/IR cameras.

Everything is float32 numpy on small frames. A video is a stream: `render_video`
yields one frame (per modality) at a time, so nothing holds a whole video.

Physical model, per frame:
- the scene (background, a head or an attack medium) has a reflectance, a depth
  and an IR reflectance; the session's light illuminates what reflects light, a
  replay screen emits its own;
- the device's camera applies its colour matrix, gamma, blur and noise; the depth
  camera sees geometry (a head is curved, a sheet or a screen is flat); the IR
  camera sees active-IR reflectance (skin bright, paper grey, screens dark).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import cv2
import numpy as np

from fas.synth.faces import EYES, MOUTH, NOSE, Identity, stable_seed

LIVE = "live"
SHEETS = ("print", "cloth", "photo", "warped_photo", "cut_photo")
SCREENS = ("replay",)
MASKS = ("mask_3d", "mask_silicone")


@dataclass(frozen=True)
class Attack:
    """How a presentation is made: the species and its physical parameters."""

    pai: str = LIVE  # live, a sheet species, replay or a mask species
    bend: float = 0.0  # sheet curvature (0 flat, 1 strongly curved)
    cut: tuple[str, ...] = ()  # sheet regions cut out: eyes, nose, mouth
    handheld: bool = True  # the medium moves with the hand, else on a fixed support
    quality: float = 0.5  # 0 low .. 1 high (print resolution, screen resolution)
    medium: str = ""  # printer / screen model: seeds its own colour cast and pitch
    still: bool = False  # a screen showing a photograph instead of a video


@dataclass(frozen=True)
class Capture:
    """Frame geometry of one video and the modalities written."""

    size: tuple[int, int]  # (width, height)
    n_frames: int
    fps: float
    precropped: bool = False  # face crop with the background removed (CeFA, CASIA-SURF)
    modalities: tuple[str, ...] = ("color",)


@dataclass(frozen=True)
class Conditions:
    """Light of a session and response of a device (domain of one video)."""

    light: np.ndarray  # [3] illuminant RGB gain
    shading: np.ndarray  # [2] left-right / top-bottom light gradient
    color_matrix: np.ndarray  # [3, 3] camera colour response
    gamma: float
    blur: float  # Gaussian sigma in pixels (optics, resolution)
    noise: float  # sensor noise std in [0, 1] units
    background: tuple  # (rgb_a, rgb_b, seed) of the room


def conditions(seed: int, dataset: str, device: str, session: str, difficulty: float,
               style: dict) -> Conditions:
    """Capture conditions from the device and the session names: the domain of a video.

    The spread between devices and sessions grows with `difficulty`, so cross-device
    and cross-session protocols see a real shift.
    """
    spread = 0.4 + 0.8 * difficulty
    dev = np.random.default_rng(stable_seed(seed, dataset, "device", device))
    ses = np.random.default_rng(stable_seed(seed, dataset, "session", session))
    tint = np.asarray(style.get("tint", (1.0, 1.0, 1.0)), np.float32)
    light = tint * (1 + spread * ses.uniform(-0.18, 0.18, 3)) * ses.uniform(1 - 0.3 * spread, 1 + 0.1 * spread)
    shading = ses.uniform(-0.35, 0.35, 2) * spread
    mix = np.eye(3) + spread * dev.uniform(-0.08, 0.08, (3, 3))
    mix /= mix.sum(1, keepdims=True)
    base_blur = float(style.get("blur", 0.6))
    base_noise = float(style.get("noise", 0.012))
    palette = np.random.default_rng(stable_seed(seed, dataset, "room", session))
    background = (tuple(palette.uniform(0.15, 0.8, 3)), tuple(palette.uniform(0.1, 0.7, 3)),
                  int(palette.integers(2**31)))
    return Conditions(light.astype(np.float32), shading.astype(np.float32), mix.astype(np.float32),
                      float(dev.uniform(0.9, 1.1)), base_blur * float(dev.uniform(0.6, 1.6)),
                      base_noise * float(dev.uniform(0.5, 1.5)) * (0.6 + difficulty), background)


# ----------------------------------------------------------------------------- head


class Head:
    """A head sprite of one identity: colour, alpha, depth and IR, with expressions.

    `material` is `skin` for a live face, or a mask species: a mask keeps the face
    shape (depth) but not the skin texture, and never blinks or speaks.
    """

    def __init__(self, identity: Identity, size: int, material: str = "skin"):
        self.size = s = size
        self.identity = identity
        self.material = material
        self.height, self.width = int(round(1.5 * s)), int(round(identity.width * s)) + 4
        self.ox, self.oy = (self.width - s) // 2, int(0.32 * s)
        yy, xx = np.mgrid[: self.height, : self.width].astype(np.float32)
        cx, cy = self.width / 2, self.oy + 0.47 * s
        ax, ay = identity.width * s / 2, 0.74 * s
        r2 = ((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2
        self.alpha = np.clip((1 - r2) * ax / 2.5, 0, 1).astype(np.float32)
        hairline = self.oy + s * (0.05 + identity.hair_cover * 0.25 * np.sqrt(np.clip(1 - ((xx - cx) / ax) ** 2, 0, 1)))
        self.hair = ((yy < hairline) | (np.abs(xx - cx) > 0.93 * ax)) & (self.alpha > 0)
        # Face depth: an ellipsoid with a nose bump (REFERENCE: live depth is face shaped).
        nx, ny = self.ox + NOSE[0] * s, self.oy + NOSE[1] * s
        nose = np.exp(-(((xx - nx) / (0.08 * s)) ** 2 + ((yy - ny) / (0.14 * s)) ** 2))
        self.depth = (np.sqrt(np.clip(1 - r2, 0, 1)) * 0.8 + 0.2 * nose * (r2 < 1)).astype(np.float32)
        tex = identity.texture
        if material != "skin":  # a mask is cast or painted: smoothed detail, no pores
            tex = cv2.GaussianBlur(tex, (0, 0), 0.5)
            tex = 0.85 * tex + 0.15 * float(tex.mean())
        self.texture = tex
        self.mean = float(tex[s // 4: 3 * s // 4, s // 4: 3 * s // 4].mean())
        u = np.linspace(-1, 1, s, dtype=np.float32)
        edge = np.clip((1 - np.abs(u)) * 12, 0, 1)
        self.feather = np.outer(edge, edge).astype(np.float32)
        uy, ux = np.mgrid[:s, :s].astype(np.float32) / s
        self.eye_masks = [np.exp(-(((ux - ex) / 0.09) ** 2 + ((uy - ey) / 0.05) ** 2)) for ex, ey in EYES]
        self.mouth_mask = np.exp(-(((ux - MOUTH[0]) / 0.13) ** 2 + ((uy - MOUTH[1]) / 0.035) ** 2))
        skin = identity.skin
        if material == "mask_3d":  # painted resin: a paler, uniform, slightly glossy tone
            skin = np.clip(0.6 * skin + 0.4 * np.array([0.85, 0.75, 0.65], np.float32), 0, 1)
        elif material == "mask_silicone":  # pinkish silicone
            skin = np.clip(0.5 * skin + 0.5 * np.array([0.9, 0.62, 0.58], np.float32), 0, 1)
        self.skin = skin.astype(np.float32)
        self.ir_skin = {"skin": 0.82, "mask_3d": 0.55, "mask_silicone": 0.68}[material]

    def face_box(self) -> np.ndarray:
        """Corners of the face texture in sprite coordinates (4 x 2)."""
        x0, y0, s = self.ox, self.oy, self.size
        return np.array([[x0, y0], [x0 + s, y0], [x0 + s, y0 + s], [x0, y0 + s]], np.float32)

    def layers(self, blink: float, mouth: float, yaw: float) -> tuple[np.ndarray, np.ndarray]:
        """Sprite layers for one expression, premultiplied by alpha: colour+alpha [H, W, 4],
        depth+IR+alpha [H, W, 3]."""
        s = self.size
        tex = self.texture
        if self.material == "skin":  # eyelids close, the mouth opens: non-rigid motion
            lid = self.mean * 0.92
            tex = tex.copy()
            for mask in self.eye_masks:
                tex += blink * mask * (lid - tex)
            tex *= 1 - 0.7 * mouth * self.mouth_mask
        shade = np.full((self.height, self.width), self.mean, np.float32)
        # Yaw: inner features shift against the head outline (parallax inside the face).
        dx = int(np.clip(round(yaw * 0.1 * s), -self.ox, self.ox))
        x0 = self.ox + dx
        region = shade[self.oy: self.oy + s, x0: x0 + s]
        region += self.feather * (tex - region)
        rgb = self.skin * (0.08 + 1.2 * shade)[..., None]
        rgb[self.hair] = self.identity.hair
        ir = self.ir_skin * (0.8 + 0.3 * cv2.GaussianBlur(shade, (0, 0), 2.0))
        ir[self.hair] = 0.35
        colour = np.dstack([rgb * self.alpha[..., None], self.alpha])  # premultiplied by alpha
        aux = np.dstack([self.depth, ir * self.alpha, self.alpha])
        return colour.astype(np.float32), aux.astype(np.float32)


@dataclass
class Motion:
    """Pose and expression over time; amplitudes are in sprite/frame units."""

    roll: np.ndarray
    yaw: np.ndarray
    tx: np.ndarray
    ty: np.ndarray
    scale: np.ndarray
    blink: np.ndarray
    mouth: np.ndarray


def head_motion(rng: np.random.Generator, n: int, fps: float, amount: float = 1.0,
                expressive: bool = True) -> Motion:
    """A natural head trajectory with blinks and speech (none when not expressive)."""
    t = np.arange(n, dtype=np.float32) / fps

    def wave(amp: float, lo: float, hi: float) -> np.ndarray:
        f, phase = rng.uniform(lo, hi), rng.uniform(0, 2 * np.pi)
        return (amp * np.sin(2 * np.pi * f * t + phase)).astype(np.float32)

    blink = np.zeros(n, np.float32)
    mouth = np.zeros(n, np.float32)
    if expressive:
        start = rng.uniform(0, 0.5)
        while start < t[-1] + 0.2 if n else False:
            blink = np.maximum(blink, np.clip(1 - np.abs(t - start - 0.1) / 0.1, 0, 1))
            start += rng.uniform(0.9, 2.5)
        mouth = np.clip(wave(1.0, 1.5, 3.0) + wave(0.6, 0.3, 0.8), 0, 1) * rng.uniform(0.4, 1.0)
    return Motion(wave(5 * amount, 0.1, 0.5), wave(0.5 * amount, 0.1, 0.4),
                  wave(0.04 * amount, 0.05, 0.3), wave(0.025 * amount, 0.05, 0.3),
                  1 + wave(0.03 * amount, 0.1, 0.4), blink, mouth)


def head_matrix(head: Head, motion: Motion, i: int, size: tuple[int, int], face_px: float,
                centre: tuple[float, float]) -> np.ndarray:
    """Affine sprite -> frame transform at frame i: roll, yaw squash, scale, translation."""
    w, h = size
    k = face_px / head.size * float(motion.scale[i])
    a = math.radians(float(motion.roll[i]))
    squash = math.sqrt(max(1 - float(motion.yaw[i]) ** 2 * 0.4, 0.5))
    cx, cy = head.width / 2, head.oy + 0.5 * head.size
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]], np.float32)
    lin = rot @ np.diag([k * squash, k]).astype(np.float32)
    px = centre[0] * w + float(motion.tx[i]) * w
    py = centre[1] * h + float(motion.ty[i]) * h
    offset = np.array([px, py], np.float32) - lin @ np.array([cx, cy], np.float32)
    return np.hstack([lin, offset[:, None]]).astype(np.float32)


@dataclass
class Layer:
    """A rendered scene: reflectance or radiance RGB, depth, IR, coverage, face box."""

    rgb: np.ndarray  # [H, W, 3]
    depth: np.ndarray  # [H, W] nearness in [0, 1], 0 = far background
    ir: np.ndarray  # [H, W] active-IR reflectance
    box: np.ndarray  # face corners [4, 2] in frame coordinates
    face_alpha: np.ndarray  # [H, W] where the (depicted) head is


def background(size: tuple[int, int], cond: Conditions, precropped: bool) -> np.ndarray:
    """The room behind the subject: a gradient with a few objects (black when cropped)."""
    w, h = size
    if precropped:
        return np.zeros((h, w, 3), np.float32)
    rgb_a, rgb_b, room_seed = cond.background
    rng = np.random.default_rng(room_seed)
    ramp = np.linspace(0, 1, w, dtype=np.float32)[None, :, None]
    img = np.asarray(rgb_a, np.float32) * (1 - ramp) + np.asarray(rgb_b, np.float32) * ramp
    img = np.broadcast_to(img, (h, w, 3)).copy()
    for _ in range(4):
        x0, y0 = rng.integers(0, w), rng.integers(0, h)
        x1, y1 = x0 + rng.integers(w // 8, w // 2), y0 + rng.integers(h // 8, h // 2)
        img[y0:y1, x0:x1] = rng.uniform(0.05, 0.95, 3)
    return cv2.GaussianBlur(img, (0, 0), 0.8)


def render_head(head: Head, motion: Motion, i: int, size: tuple[int, int], face_px: float,
                centre: tuple[float, float], room: np.ndarray) -> Layer:
    """One frame of a head (live person, or a mask wearer) in front of `room`."""
    w, h = size
    expressive = head.material == "skin"
    colour, aux = head.layers(float(motion.blink[i]) if expressive else 0.0,
                              float(motion.mouth[i]) if expressive else 0.0, float(motion.yaw[i]))
    m = head_matrix(head, motion, i, size, face_px, centre)
    c = cv2.warpAffine(colour, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
    x = cv2.warpAffine(aux, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
    alpha = c[..., 3]
    rgb = room * (1 - alpha[..., None]) + c[..., :3]  # sprite colour is premultiplied
    box = head.face_box() @ m[:, :2].T + m[:, 2]
    return Layer(rgb, 0.55 + 0.45 * x[..., 0] * (alpha > 0.01), x[..., 1], box, alpha)


# ----------------------------------------------------------------------------- attacks


def _medium_rng(seed: int, dataset: str, attack: Attack) -> np.random.Generator:
    return np.random.default_rng(stable_seed(seed, dataset, "medium", attack.pai, attack.medium))


def severity(attack: Attack) -> float:
    """How plainly a medium shows its low-frequency cues: a better printer or screen hides them.

    1.06 at quality 0.4 down to 0.76 at 0.9, so an unseen better medium (OULU-NPU
    Protocol 2's printer 2 and display 2) is a real shift.
    """
    return 1.3 - 0.6 * attack.quality


def print_sheet(photo: np.ndarray, attack: Attack, cue: float, rng: np.random.Generator) -> np.ndarray:
    """Ink on paper: reduced gamut, lifted blacks and compressed range, halftone dots, paper grain.

    The gamut and range cues are strong enough to survive the demo's 32 px inputs;
    halftone and grain need full resolution.
    """
    h, w, _ = photo.shape
    grey = photo.mean(2, keepdims=True)
    gamut = cue * severity(attack)
    img = grey + (1 - 0.8 * gamut) * (photo - grey)
    img = 0.25 * gamut + (1 - 0.45 * gamut) * img  # paper white point and ink density
    pitch = 2.2 + 2.5 * (1 - attack.quality)
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    angle = rng.uniform(0, np.pi / 4)
    u = xx * math.cos(angle) + yy * math.sin(angle)
    v = -xx * math.sin(angle) + yy * math.cos(angle)
    dots = np.cos(2 * np.pi * u / pitch) * np.cos(2 * np.pi * v / pitch)
    img = img * (1 + 0.22 * cue * dots[..., None])
    grain = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), 1.5)
    img = img * (1 + 0.08 * cue * grain[..., None])
    if attack.pai == "cloth":  # woven fabric: a fine crossed thread texture
        weave = np.sin(np.pi * xx / 1.5) * np.sin(np.pi * yy / 1.5)
        img = img * (1 + 0.08 * cue * weave[..., None])
    return np.clip(img, 0, 1).astype(np.float32)


def screen_emission(content: np.ndarray, attack: Attack, cue: float, i: int, fps: float,
                    rng_state: dict) -> np.ndarray:
    """A display showing `content`: colour cast, gamma, pixel grid, moire and flicker."""
    h, w, _ = content.shape
    cast = rng_state["cast"]
    low = cue * severity(attack)  # gamma, colour temperature and backlight survive low resolution
    img = content ** (1 + 0.4 * low) * (1 - 0.8 * low + 0.8 * low * cast)
    img = 0.12 * low + (1 - 0.24 * low) * img
    grid, moire = rng_state["grid"], rng_state["moire"]
    phase = 2 * np.pi * rng_state["drift"] * i / fps
    img = img * (1 + 0.1 * cue * grid[..., None]) * (1 + 0.03 * cue * np.cos(moire + phase)[..., None])
    # Refresh flicker beating with the camera's frame rate, with a rolling band.
    flicker = 1 + 0.08 * cue * math.sin(2 * np.pi * rng_state["beat"] * i / fps)
    band = 1 - 0.1 * cue * np.exp(-((np.arange(h, dtype=np.float32) - (i * 7.0) % h) / (0.08 * h)) ** 2)
    return np.clip(img * flicker * band[:, None, None], 0, 1).astype(np.float32)


def screen_state(size: tuple[int, int], attack: Attack, rng: np.random.Generator) -> dict:
    """Fixed properties of one display: colour cast, pixel pitch, moire frequencies."""
    w, h = size
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    pitch = 2.0 + 1.5 * (1 - attack.quality)
    grid = np.cos(2 * np.pi * xx / pitch) * np.cos(2 * np.pi * yy / pitch)
    f = rng.uniform(0.02, 0.06, 2) * rng.choice([-1, 1], 2)
    moire = 2 * np.pi * (f[0] * xx + f[1] * yy)
    cast = np.array([0.9, 0.97, 1.12], np.float32) * rng.uniform(0.93, 1.07, 3).astype(np.float32)
    return {"grid": grid, "moire": moire, "cast": cast, "drift": rng.uniform(0.2, 1.0),
            "beat": rng.uniform(2.0, 9.0)}


def bend_maps(size: tuple[int, int], bend: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Remap tables of a sheet bent around a vertical axis (seen from the front), and its relief."""
    w, h = size
    k = 1.2 * bend
    x = np.linspace(-1, 1, w, dtype=np.float32)
    u = np.arcsin(np.clip(x * math.sin(k), -1, 1)) / k  # arc position seen at x
    map_x = np.broadcast_to(((u + 1) / 2 * (w - 1))[None, :], (h, w)).astype(np.float32)
    map_y = np.broadcast_to(np.arange(h, dtype=np.float32)[:, None], (h, w)).astype(np.float32)
    relief = np.broadcast_to(((np.cos(k * u) - math.cos(k)) * 0.3)[None, :], (h, w)).astype(np.float32)
    return map_x, map_y, relief


def medium_homography(rng_wave: dict, i: int, size: tuple[int, int], handheld: bool) -> np.ndarray:
    """Rigid motion of a planar medium: in-plane rotation, tilt and translation."""
    w, h = size
    amp = (1.0 if handheld else 0.15)
    t = i / rng_wave["fps"]
    def osc(name: str) -> float:
        f, p = rng_wave[name]
        return math.sin(2 * np.pi * f * t + p)
    a = math.radians(3.0 * amp * osc("roll"))
    s = rng_wave["scale"] * (1 + 0.02 * amp * osc("zoom"))
    tx = w * (rng_wave["dx"] + 0.03 * amp * osc("tx"))
    ty = h * (rng_wave["dy"] + 0.02 * amp * osc("ty"))
    tilt = 0.0006 * amp * osc("tilt") * (320 / w)
    c = np.array([[1, 0, -w / 2], [0, 1, -h / 2], [0, 0, 1]], np.float64)
    r = np.array([[s * math.cos(a), -s * math.sin(a), 0], [s * math.sin(a), s * math.cos(a), 0],
                  [tilt, 0, 1]], np.float64)
    back = np.array([[1, 0, w / 2 + tx], [0, 1, h / 2 + ty], [0, 0, 1]], np.float64)
    return back @ r @ c


def _waves(rng: np.random.Generator, fps: float, precropped: bool) -> dict:
    waves = {k: (rng.uniform(0.1, 0.6), rng.uniform(0, 2 * np.pi)) for k in ("roll", "zoom", "tx", "ty", "tilt")}
    waves.update(fps=fps, scale=rng.uniform(1.05, 1.2) if precropped else rng.uniform(0.97, 1.08),
                 dx=rng.uniform(-0.04, 0.04), dy=rng.uniform(-0.03, 0.03))
    return waves


# ----------------------------------------------------------------------------- video


@dataclass(frozen=True)
class Presentation:
    """Everything needed to render one video: who, what attack, where, how captured."""

    identity: Identity
    attack: Attack
    capture: Capture
    scene: Conditions  # the camera and room of the video
    source: Conditions  # where the photo / replayed video was taken
    attacker: Identity | None = None  # who holds a cut photo (eyes show through)


def _camera_rgb(radiance: np.ndarray, cond: Conditions, noise: np.ndarray) -> np.ndarray:
    img = cv2.transform(radiance, cond.color_matrix)
    if cond.blur > 0.3:
        img = cv2.GaussianBlur(img, (0, 0), cond.blur)
    img = cv2.pow(np.clip(img, 1e-6, 1), cond.gamma / 2.2)
    cv2.randn(noise, 0.0, cond.noise)
    img += noise
    return cv2.convertScaleAbs(np.clip(img, 0, 1), alpha=255.0)


def _expose(image: np.ndarray, target: float = 0.45) -> np.ndarray:
    """Auto-exposure of the camera that took the photo or video shown by an attack."""
    return np.clip(image * (target / max(float(image.mean()), 1e-3)), 0, 1)


def _light_map(size: tuple[int, int], cond: Conditions) -> np.ndarray:
    w, h = size
    gx = np.linspace(-1, 1, w, dtype=np.float32)[None, :]
    gy = np.linspace(-1, 1, h, dtype=np.float32)[:, None]
    shade = np.clip(1 + cond.shading[0] * gx + cond.shading[1] * gy, 0.3, 1.8)
    return shade[..., None] * cond.light


def render_video(p: Presentation, rng: np.random.Generator, difficulty: float,
                 face_px: float, seed: int, dataset: str) -> Iterator[dict]:
    """Yield per frame {modality: uint8 image, "box": face corners} for one presentation."""
    cap = p.capture
    w, h = cap.size
    cue = 1.0 - 0.8 * difficulty
    pai = p.attack.pai
    sprite_px = p.identity.texture.shape[0]
    room = background(cap.size, p.scene, cap.precropped)
    light = _light_map(cap.size, p.scene)
    centre = (0.5, 0.47 if not cap.precropped else 0.5)
    motion = head_motion(rng, cap.n_frames, cap.fps, 1.0, expressive=pai == LIVE)
    motion_live = head_motion(rng, cap.n_frames, cap.fps, 1.0, expressive=True) if pai != LIVE else motion
    material = pai if pai in MASKS else "skin"
    head = Head(p.identity, sprite_px, material)
    medium_rng = _medium_rng(seed, dataset, p.attack)
    if pai in SHEETS or pai in SCREENS:
        source_room = background(cap.size, p.source, cap.precropped)
        source_motion = head_motion(rng, cap.n_frames, cap.fps, 0.6, expressive=True)
        src_head = Head(p.identity, sprite_px, "skin")
        waves = _waves(rng, cap.fps, cap.precropped)
        src_light = _light_map(cap.size, p.source)
    if pai in SHEETS:
        photo = render_head(src_head, source_motion, 0, cap.size, face_px, centre, source_room)
        sheet = print_sheet(_expose(photo.rgb * src_light), p.attack, cue, medium_rng)
        photo_box = photo.box
        photo_alpha = photo.face_alpha
        maps = bend_maps(cap.size, p.attack.bend) if p.attack.bend > 0 else None
        bent_relief = maps[2] if maps is not None else np.zeros((h, w), np.float32)
        # Paper reflects active IR almost evenly; ink darkens it only faintly.
        sheet_ir = (0.62 * (1 - 0.2 * cue * (1 - sheet.mean(2)))).astype(np.float32)
        sheet_surface = _sheet_surface(sheet, photo_alpha, sheet_ir, bent_relief, maps)  # rigid: fixed
        cut_mask = _cut_mask(photo_box, cap.size, p.attack.cut) if p.attack.cut else None
        if cut_mask is not None:
            wearer = Head(p.attacker or p.identity, sprite_px, "skin")
            still = {k: np.full(cap.n_frames, getattr(source_motion, k)[0], np.float32)
                     for k in ("roll", "yaw", "tx", "ty", "scale")}
            aligned = Motion(**still, blink=motion_live.blink, mouth=motion_live.mouth)
    if pai in SCREENS:
        screen = screen_state(cap.size, p.attack, medium_rng)
        bezel = _bezel(cap.size, cap.precropped)
        # Coverage, IR (screens emit no IR) and relief (flat) of the screen surface.
        screen_aux = [np.ones((h, w), np.float32), np.full((h, w), 0.04, np.float32), np.zeros((h, w), np.float32)]
    cv2.setRNGSeed(int(rng.integers(2**31)))  # sensor noise through OpenCV's fast generator
    noise = np.empty((h, w, 3), np.float32)
    for i in range(cap.n_frames):
        if pai == LIVE or pai in MASKS:
            layer = render_head(head, motion, i, cap.size, face_px, centre, room)
            radiance = layer.rgb * light
            depth, ir, box = layer.depth, layer.ir, layer.box
            head_alpha = layer.face_alpha
        else:
            hom = medium_homography(waves, i, cap.size, p.attack.handheld)
            if pai in SHEETS:
                surface = sheet_surface
                if cut_mask is not None:  # the attacker's own face behind the holes: skin, curved
                    behind = render_head(wearer, aligned, i, cap.size, face_px, centre, source_room)
                    hole = cut_mask[..., None]
                    face = sheet * (1 - hole) + behind.rgb * hole
                    ir_sheet = sheet_ir * (1 - cut_mask) + behind.ir * cut_mask
                    relief = bent_relief + cut_mask * (0.25 * behind.depth - 0.3)  # farther than the sheet
                    surface = _sheet_surface(face, photo_alpha, ir_sheet, relief, maps)
            else:
                shown = 0 if p.attack.still else i
                content = render_head(src_head, source_motion, shown, cap.size, face_px, centre, source_room)
                emission = screen_emission(_expose(content.rgb * src_light), p.attack, cue, i, cap.fps, screen)
                surface = cv2.merge([*cv2.split(emission * bezel[..., None]), content.face_alpha, *screen_aux])
                photo_box = content.box
            warped = cv2.warpPerspective(surface, hom, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
            cover = warped[..., 4:5]
            box = cv2.perspectiveTransform(photo_box[None].astype(np.float64), hom)[0].astype(np.float32)
            head_alpha = warped[..., 3]
            if pai in SHEETS:
                radiance = (room * (1 - cover) + warped[..., :3] * cover) * light
            else:  # a screen emits its light: the room light does not shade it; the glass
                # reflects the lit room as a veil over the whole screen, and a lamp as glare
                radiance = room * light * (1 - cover) + warped[..., :3] * cover * 0.9
                veil = 0.22 * cue * severity(p.attack)
                radiance += cover * (veil + _glare(cap.size, i, cap.fps, screen, cue)[..., None]) * p.scene.light
            ir = 0.1 * (1 - cover[..., 0]) + warped[..., 5]
            depth = (0.65 * cover[..., 0] + warped[..., 6])
        frame = {}
        if cap.precropped:  # background removal of the released crops (CeFA, CASIA-SURF)
            keep = (head_alpha > 0.05).astype(np.float32)
            radiance = radiance * keep[..., None]
            depth, ir = depth * keep, ir * keep
        if "color" in cap.modalities:
            frame["color"] = _camera_rgb(radiance.astype(np.float32), p.scene, noise)
        if "depth" in cap.modalities:
            d = depth + rng.standard_normal(depth.shape, dtype=np.float32) * (0.01 + 0.03 * difficulty)
            frame["depth"] = (np.clip(d * (depth > 0), 0, 1) * 255 + 0.5).astype(np.uint8)
        if "ir" in cap.modalities:
            near = np.clip(ir * (0.6 + 0.5 * depth), 0, 1)  # active IR falls off with distance
            near = near + rng.standard_normal(near.shape, dtype=np.float32) * (0.015 + 0.03 * difficulty)
            frame["ir"] = (np.clip(near, 0, 1) * 255 + 0.5).astype(np.uint8)
        frame["box"] = box
        yield frame


def _sheet_surface(face: np.ndarray, alpha: np.ndarray, ir: np.ndarray, relief: np.ndarray,
                   maps: tuple | None) -> np.ndarray:
    """Channels of a sheet in its own coordinates: RGB, face alpha, coverage, IR, relief; bent if maps."""
    ones = np.ones(alpha.shape, np.float32)
    surface = cv2.merge([*cv2.split(face.astype(np.float32)), alpha, ones, ir, relief.astype(np.float32)])
    return cv2.remap(surface, maps[0], maps[1], cv2.INTER_LINEAR) if maps is not None else surface


def _cut_mask(box: np.ndarray, size: tuple[int, int], regions: tuple[str, ...]) -> np.ndarray:
    """Holes cut in a printed face (CASIA-SURF: eyes, nose, mouth; CASIA-FASD cut photo)."""
    w, h = size
    mask = np.zeros((h, w), np.float32)
    x0, y0 = box[0]
    s = float(np.linalg.norm(box[1] - box[0]))
    spots = {"eyes": [EYES[0], EYES[1]], "nose": [NOSE], "mouth": [MOUTH]}
    for region in regions:
        for ex, ey in spots[region]:
            centre = (int(x0 + ex * s), int(y0 + ey * s))
            axes = (max(2, int(0.12 * s)), max(2, int(0.07 * s)))
            cv2.ellipse(mask, centre, axes, 0, 0, 360, 1.0, -1)
    return mask


def _bezel(size: tuple[int, int], precropped: bool) -> np.ndarray:
    """The display's dark frame around its active area."""
    w, h = size
    mask = np.ones((h, w), np.float32)
    if not precropped:
        bx, by = max(2, w // 22), max(2, h // 18)
        mask[:by], mask[-by:], mask[:, :bx], mask[:, -bx:] = 0.03, 0.03, 0.03, 0.03
    return mask


def _glare(size: tuple[int, int], i: int, fps: float, state: dict, cue: float) -> np.ndarray:
    """A specular reflection of a room light on the glass, drifting as the screen moves."""
    w, h = size
    gx = (0.05 + 0.25 * abs(math.sin(state["drift"] * i / fps))) * w  # off the face
    gy = 0.2 * h
    yy, xx = np.ogrid[:h, :w]
    return (0.3 * cue * np.exp(-(((xx - gx) / (0.12 * w)) ** 2 + ((yy - gy) / (0.1 * h)) ** 2))).astype(np.float32)
