"""The corridor: textured floor and walls, posts, barn background, lighting and camera effects.

A clip's camera is fixed, so its static background (colour and depth per pixel) is built
once by casting every pixel's ray against the corridor's planes (floor, walls, posts) and
looking the hit points up in procedural textures (litter and wood shavings, wooden boards,
concrete, plastic panels, wire mesh). The per-frame effects (lighting gradient and
flicker, colour cast, defocus, sensor noise, JPEG compression) are drawn from the clip's
seed too (:class:`Look`). Everything is domain randomisation for the pose model.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import cv2
import numpy as np

from gaitlive.synth.camera import Camera

log = logging.getLogger(__name__)

__all__ = ["Look", "Scene", "build_scene", "value_noise", "pixel_rays"]


def value_noise(rng: np.random.Generator, h: int, w: int, cells: float,
                octaves: int = 3) -> np.ndarray:
    """Smooth fractal noise in [0, 1], ``float32 (h, w)``; ``cells``: features across."""
    out = np.zeros((h, w), np.float32)
    amp, total = 1.0, 0.0
    for o in range(octaves):
        c = max(2, int(cells * 2 ** o))
        small = rng.random((max(2, int(c * h / max(h, w))) + 1, c + 1)).astype(np.float32)
        out += amp * cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
        total += amp
        amp *= 0.5
    out /= total
    lo, hi = float(out.min()), float(out.max())
    return (out - lo) / max(hi - lo, 1e-6)


def pixel_rays(cam: Camera) -> np.ndarray:
    """Unit world ray of every pixel, ``float64 (H, W, 3)`` (lens distortion included)."""
    return cam.pixel_rays()


# ---------------------------------------------------------------------------------------
# textures (BGR float32 in [0, 1]); each is (texture, metres per texture pixel)
# ---------------------------------------------------------------------------------------


def _tint(gray: np.ndarray, colour: np.ndarray) -> np.ndarray:
    return gray[..., None] * colour[None, None, :].astype(np.float32)


def _litter(rng: np.random.Generator, size: int = 1024) -> np.ndarray:
    """Litter floor: wood shavings / straw / chopped straw, droppings, damp patches."""
    base = np.array(rng.choice([[0.55, 0.68, 0.78], [0.45, 0.55, 0.62], [0.42, 0.58, 0.72],
                                [0.5, 0.5, 0.5], [0.35, 0.45, 0.55]]))
    base = base * rng.uniform(0.75, 1.2)
    g = 0.55 + 0.45 * value_noise(rng, size, size, 6, 4)
    tex = _tint(g, base)
    damp = value_noise(rng, size, size, 3, 2)
    tex *= (1.0 - 0.35 * np.clip((damp - 0.6) * 3, 0, 1))[..., None]
    # shavings and straw bits
    n = int(rng.integers(1500, 4000))
    xs, ys = rng.integers(0, size, n), rng.integers(0, size, n)
    for x, y in zip(xs, ys, strict=True):
        c = base * rng.uniform(0.6, 1.45)
        ax = (int(rng.integers(2, 9)), int(rng.integers(1, 3)))
        cv2.ellipse(tex, (int(x), int(y)), ax, float(rng.uniform(0, 180)), 0, 360,
                    tuple(float(v) for v in np.clip(c, 0, 1)), -1, cv2.LINE_AA)
    for _ in range(int(rng.integers(20, 120))):  # droppings
        c = (0.12, 0.16, 0.18) if rng.random() < 0.7 else (0.75, 0.78, 0.8)
        cv2.circle(tex, (int(rng.integers(0, size)), int(rng.integers(0, size))),
                   int(rng.integers(2, 6)), c, -1, cv2.LINE_AA)
    return cv2.GaussianBlur(tex, (0, 0), 0.7)


def _boards(rng: np.random.Generator, size: int = 1024, vertical: bool = False) -> np.ndarray:
    """Wooden boards with grain and dark seams."""
    base = np.array(rng.choice([[0.45, 0.62, 0.75], [0.3, 0.45, 0.6], [0.55, 0.6, 0.62],
                                [0.25, 0.32, 0.4], [0.6, 0.7, 0.78]]))
    grain = rng.random((size, 24)).astype(np.float32)
    grain = cv2.resize(grain, (size, size), interpolation=cv2.INTER_CUBIC)
    tex = _tint(0.75 + 0.25 * grain, base)
    tex *= (0.8 + 0.3 * value_noise(rng, size, size, 4, 3))[..., None]
    board = int(rng.integers(60, 160))
    for y in range(int(rng.integers(0, board)), size, board):
        tex[y:y + 3] *= 0.45
        tex[y + 3:min(y + board, size)] *= rng.uniform(0.85, 1.15)
    for _ in range(int(rng.integers(5, 30))):  # knots
        cv2.ellipse(tex, (int(rng.integers(0, size)), int(rng.integers(0, size))),
                    (int(rng.integers(5, 14)), int(rng.integers(3, 7))), 0, 0, 360,
                    tuple(float(v) for v in base * 0.5), -1, cv2.LINE_AA)
    if vertical:
        tex = np.ascontiguousarray(np.transpose(tex, (1, 0, 2)))
    return np.clip(tex, 0, 1)


def _concrete(rng: np.random.Generator, size: int = 1024) -> np.ndarray:
    base = np.array(rng.choice([[0.62, 0.63, 0.62], [0.7, 0.72, 0.74], [0.5, 0.52, 0.5],
                                [0.8, 0.82, 0.82]]))
    g = 0.7 + 0.3 * value_noise(rng, size, size, 10, 4)
    tex = _tint(g, base)
    stain = value_noise(rng, size, size, 3, 2)
    tex *= (1.0 - 0.3 * np.clip(stain - 0.5, 0, 1))[..., None]
    return np.clip(tex, 0, 1)


def _panel(rng: np.random.Generator, size: int = 1024) -> np.ndarray:
    """Plastic or metal panels with ribs."""
    base = np.array(rng.choice([[0.85, 0.87, 0.88], [0.7, 0.75, 0.75], [0.55, 0.6, 0.55],
                                [0.6, 0.5, 0.4]]))
    tex = _tint(0.85 + 0.15 * value_noise(rng, size, size, 5, 2), base)
    step = int(rng.integers(30, 90))
    for x in range(0, size, step):
        tex[:, x:x + 4] *= 0.75
        tex[:, x + 4:x + 7] *= 1.1
    return np.clip(tex, 0, 1)


def _mesh(rng: np.random.Generator, size: int = 1024) -> np.ndarray:
    """Wire mesh in front of a dim barn."""
    back = _tint(0.15 + 0.35 * value_noise(rng, size, size, 4, 3),
                 np.array(rng.choice([[0.5, 0.55, 0.6], [0.4, 0.45, 0.5]])))
    step = int(rng.integers(18, 40))
    wire = tuple(float(v) for v in rng.uniform(0.55, 0.85) * np.ones(3))
    for i in range(-size, 2 * size, step):
        cv2.line(back, (i, 0), (i + size, size), wire, 2, cv2.LINE_AA)
        cv2.line(back, (i, 0), (i - size, size), wire, 2, cv2.LINE_AA)
    return back


def _barn(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """What lies beyond the walls: dim barn with bright windows and clutter."""
    base = np.array(rng.choice([[0.25, 0.28, 0.3], [0.35, 0.38, 0.4], [0.15, 0.17, 0.2],
                                [0.45, 0.5, 0.55]]))
    img = _tint(0.5 + 0.5 * value_noise(rng, h, w, 3, 3), base)
    for _ in range(int(rng.integers(0, 4))):
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h // 2))
        cv2.rectangle(img, (x, y), (x + int(rng.integers(20, 120)), y + int(rng.integers(10, 60))),
                      tuple(float(v) for v in rng.uniform(0.8, 1.0, 3)), -1)
    for _ in range(int(rng.integers(2, 8))):  # beams, pipes, feeder lines
        y = int(rng.integers(0, h))
        cv2.line(img, (0, y), (w, y + int(rng.integers(-40, 40))),
                 tuple(float(v) for v in base * rng.uniform(0.3, 1.6)),
                 int(rng.integers(2, 10)), cv2.LINE_AA)
    return cv2.GaussianBlur(img, (0, 0), 2.0)


def _mirror(x: np.ndarray, n: int) -> np.ndarray:
    """Texture coordinate ``x`` tiled by mirroring (no seams), as float32 in [0, n-1]."""
    x = np.mod(np.nan_to_num(x), 2 * (n - 1))
    return np.where(x > n - 1, 2 * (n - 1) - x, x).astype(np.float32)


_WALLS = ("boards", "boards_v", "concrete", "panel", "mesh")


def _wall_texture(rng: np.random.Generator, kind: str, size: int = 1024) -> np.ndarray:
    if kind == "boards":
        return _boards(rng, size)
    if kind == "boards_v":
        return _boards(rng, size, vertical=True)
    if kind == "concrete":
        return _concrete(rng, size)
    if kind == "panel":
        return _panel(rng, size)
    return _mesh(rng, size)


# ---------------------------------------------------------------------------------------


@dataclass
class Look:
    """Per-clip camera and lighting effects (all drawn from the clip's seed)."""

    light_dir: np.ndarray  # unit vector towards the light (world)
    colour_gain: np.ndarray  # BGR white balance / colour cast
    exposure: float
    flicker_amp: float
    flicker_hz: float
    noise_sigma: float
    defocus_sigma: float
    motion_blur: float  # exposure time as a fraction of the frame interval
    jpeg_quality: int  # 0 = no extra JPEG round trip
    gamma: float
    background_defocus: float  # extra blur of background birds (pixels)
    ambient: float = 0.38  # bird shading: ambient term
    diffuse: float = 0.72  # bird shading: Lambert term
    grayscale: bool = False  # infrared night mode / monochrome camera


@dataclass
class Scene:
    """A clip's static corridor and its effects."""

    camera: Camera
    background: np.ndarray  # uint8 (H, W, 3)
    depth: np.ndarray  # float32 (H, W): distance along each pixel's ray to the scenery
    light: np.ndarray  # float32 (H, W, 3): lighting gain (gradient, vignette, exposure, cast)
    look: Look
    rays: np.ndarray  # float32 (H, W, 3) normalised world ray of every pixel
    noise: list[np.ndarray] = field(default_factory=list)  # float32 (H, W, 3) noise bank
    lut: np.ndarray | None = None  # uint8 (256,) gamma curve
    overlay: np.ndarray | None = None  # float32 (H, W, 4): BGR + alpha in front of the birds


def _look(rng: np.random.Generator, flat: bool) -> Look:
    if flat:
        return Look(light_dir=np.array([0.3, -0.5, 0.8]) / np.linalg.norm([0.3, -0.5, 0.8]),
                    colour_gain=np.ones(3), exposure=1.0, flicker_amp=0.0, flicker_hz=0.0,
                    noise_sigma=0.0, defocus_sigma=0.0, motion_blur=0.0, jpeg_quality=0,
                    gamma=1.0, background_defocus=0.0)
    az = rng.uniform(0, 2 * np.pi)
    el = rng.uniform(np.deg2rad(35), np.deg2rad(85))
    ld = np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
    cast = rng.normal(1.0, 0.07, 3)
    if rng.random() < 0.25:  # strong warm (sodium/LED) or cold cast
        cast *= np.array([0.8, 0.95, 1.2]) if rng.random() < 0.6 else np.array([1.15, 1.0, 0.85])
    return Look(
        light_dir=ld, colour_gain=cast, exposure=float(rng.uniform(0.6, 1.3)),
        flicker_amp=float(rng.choice([0.0, rng.uniform(0.01, 0.08)])),
        flicker_hz=float(rng.uniform(2.0, 12.0)),
        noise_sigma=float(rng.choice([rng.uniform(0.5, 3.0), rng.uniform(3.0, 9.0)])),
        defocus_sigma=float(rng.choice([0.0, rng.uniform(0.3, 1.6)])),
        motion_blur=float(rng.uniform(0.0, 0.7)),
        jpeg_quality=int(rng.choice([0, int(rng.integers(35, 95))])),
        gamma=float(rng.uniform(0.8, 1.25)),
        background_defocus=float(rng.uniform(1.0, 3.5)),
        ambient=float(rng.uniform(0.25, 0.6)), diffuse=float(rng.uniform(0.45, 0.9)),
        grayscale=bool(rng.random() < 0.1))


def _planes(view: str, corridor: dict[str, float], cam: Camera, rng: np.random.Generator
            ) -> list[tuple[int, float, tuple[float, float, float, float], str, float]]:
    """Corridor planes: (axis, value, (lo_a, hi_a, lo_b, hi_b), texture, metres per tex px).

    The plane is ``world[axis] == value``; ``a`` and ``b`` are the other two coordinates in
    increasing axis order.
    """
    big = 50.0
    planes = []
    m_floor = float(rng.uniform(0.0015, 0.003))
    if view == "side":
        planes.append((2, 0.0, (-big, big, -big, corridor["far_wall"]), "floor", m_floor))
        planes.append((1, corridor["far_wall"], (-big, big, 0.0, corridor["wall_height"]),
                       "wall", float(rng.uniform(0.001, 0.002))))
        # posts between the camera and the walking line
        y = corridor["near_posts"]
        if rng.random() < 0.75:
            x0 = cam.C[0] + rng.uniform(-1.0, 1.0)
            xs = x0 + corridor["post_spacing"] * np.arange(-4, 5)
            w = float(rng.uniform(0.04, 0.09))
            for x in xs:
                planes.append((1, y, (x - w / 2, x + w / 2, 0.0, 3.0), "post", 0.0008))
        # the far end beyond the wall: a second, distant wall
        planes.append((1, corridor["far_wall"] + 4.0, (-big, big, 0.0, 3.0), "barn", 0.004))
    else:
        hw, end = corridor["half_width"], corridor["end"]
        planes.append((2, 0.0, (-big, big, -big, big), "floor", m_floor))
        planes.append((1, hw, (-big, end, 0.0, corridor["wall_height"]), "wall", 0.0015))
        planes.append((1, -hw, (-big, end, 0.0, corridor["wall_height"]), "wall2", 0.0015))
        door = float(rng.uniform(0.2, 0.35))
        planes.append((0, end, (-big, -door, 0.0, corridor["wall_height"]), "wall", 0.0015))
        planes.append((0, end, (door, big, 0.0, corridor["wall_height"]), "wall", 0.0015))
        planes.append((0, end, (-door, door, 0.3, corridor["wall_height"]), "wall", 0.0015))
        planes.append((0, end + 0.6, (-big, big, 0.0, 3.0), "door", 0.003))
        for x in np.arange(0.5, end, corridor["post_spacing"]):
            for s in (1.0, -1.0):
                planes.append((1, s * (hw - 0.005), (x - 0.03, x + 0.03, 0.0,
                                                     corridor["wall_height"] + 0.1),
                               "post", 0.0008))
        planes.append((2, 2.5, (-big, big, -big, big), "barn", 0.004))  # ceiling
    return planes


def _paint(bg: np.ndarray, depth: np.ndarray, cam: Camera, pts: np.ndarray,
           colour: np.ndarray, rng: np.random.Generator) -> None:
    """Paint the convex hull of world points ``pts`` where it is nearer than the scenery."""
    uv, z = cam.project(pts)
    if not np.all(np.isfinite(uv)) or np.any(z <= 0.05):
        return
    H, W = depth.shape
    if uv[:, 0].max() < 0 or uv[:, 0].min() > W or uv[:, 1].max() < 0 or uv[:, 1].min() > H:
        return
    x0, y0 = max(int(np.floor(uv[:, 0].min())) - 1, 0), max(int(np.floor(uv[:, 1].min())) - 1, 0)
    x1, y1 = min(int(np.ceil(uv[:, 0].max())) + 2, W), min(int(np.ceil(uv[:, 1].max())) + 2, H)
    if x0 >= x1 or y0 >= y1:
        return
    hull = cv2.convexHull(np.round((uv - [x0, y0]) * 4).astype(np.int32))
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillConvexPoly(mask, hull, 1, cv2.LINE_AA, shift=2)
    dist = float(np.linalg.norm(pts.mean(axis=0) - cam.C))
    dsub = depth[y0:y1, x0:x1]
    m = (mask > 0) & (dsub > dist)
    if not m.any():
        return
    ys = np.nonzero(m)[0]
    grad = 1.0 - 0.35 * (ys - ys.min()) / max(ys.max() - ys.min(), 1)  # lit from above
    bg[y0:y1, x0:x1][m] = colour[None, :] * grad[:, None] * rng.uniform(0.9, 1.1)
    dsub[m] = dist


def _cylinder(c: np.ndarray, r: float, h: float, n: int = 24) -> np.ndarray:
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    ring = np.stack([np.cos(a) * r, np.sin(a) * r, np.zeros(n)], axis=1)
    return np.concatenate([c + ring, c + ring + [0.0, 0.0, h]])


def _clutter(bg: np.ndarray, depth: np.ndarray, view: str, corridor: dict[str, float],
             cam: Camera, rng: np.random.Generator) -> None:
    """Barn furniture beyond the walking line: feeder pans, drinker lines, cables."""
    x0 = float(cam.C[0])
    colours = [np.array(c) for c in ([0.2, 0.25, 0.75], [0.6, 0.6, 0.6], [0.15, 0.45, 0.85],
                                     [0.3, 0.3, 0.3], [0.7, 0.55, 0.2])]
    if view == "side":
        far = corridor["far_wall"]
        for _ in range(int(rng.integers(0, 4))):  # feeder pans with their hanging tube
            c = np.array([x0 + rng.uniform(-2.0, 2.0), rng.uniform(0.55, max(far - 0.2, 0.6)),
                          0.0])
            r, h = rng.uniform(0.12, 0.2), rng.uniform(0.04, 0.08)
            col = colours[int(rng.integers(len(colours)))]
            _paint(bg, depth, cam, _cylinder(c + [0, 0, h], 0.035, 1.5), col * 0.8, rng)
            _paint(bg, depth, cam, _cylinder(c, r, h), col, rng)
        if rng.random() < 0.6:  # a drinker line with nipple cups
            y = rng.uniform(0.4, max(far - 0.1, 0.45))
            z = rng.uniform(0.25, 0.5)
            col = colours[int(rng.integers(len(colours)))]
            for x in np.arange(x0 - 3.0, x0 + 3.0, 0.1):
                seg = np.array([[x, y - 0.012, z - 0.012], [x + 0.1, y + 0.012, z + 0.012],
                                [x, y + 0.012, z - 0.012], [x + 0.1, y - 0.012, z + 0.012]])
                _paint(bg, depth, cam, seg, np.array([0.7, 0.7, 0.72]), rng)
            for x in np.arange(x0 - 3.0, x0 + 3.0, rng.uniform(0.2, 0.35)):
                _paint(bg, depth, cam, _cylinder(np.array([x, y, z - 0.05]), 0.02, 0.04, 12),
                       col, rng)
    else:
        hw, end = corridor["half_width"], corridor["end"]
        if rng.random() < 0.5:  # a drinker line along one wall
            side = float(rng.choice([-1.0, 1.0]))
            y, z = side * (hw - rng.uniform(0.04, 0.1)), rng.uniform(0.35, 0.5)
            for x in np.arange(0.2, end, 0.1)[::-1]:
                seg = np.array([[x, y - 0.012, z - 0.012], [x + 0.1, y + 0.012, z + 0.012],
                                [x, y + 0.012, z - 0.012], [x + 0.1, y - 0.012, z + 0.012]])
                _paint(bg, depth, cam, seg, np.array([0.7, 0.7, 0.72]), rng)
    for _ in range(int(rng.integers(0, 4))):  # cables hanging from the roof
        x = x0 + rng.uniform(-2.0, 2.0) if view == "side" else rng.uniform(0.5, 4.0)
        y = rng.uniform(0.3, 1.5) if view == "side" else rng.uniform(-0.5, 0.5)
        zb = rng.uniform(0.6, 1.2)
        seg = np.array([[x - 0.005, y, zb], [x + 0.005, y, zb], [x - 0.005, y, 3.0],
                        [x + 0.005, y, 3.0]])
        _paint(bg, depth, cam, seg, np.array([0.15, 0.15, 0.15]), rng)


def _fence(cam: Camera, rays: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A wire mesh between the camera and the corridor (side view): BGR + alpha layer."""
    y = float(cam.C[1] + rng.uniform(0.15, 0.5) * abs(cam.C[1]))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (y - cam.C[1]) / rays[..., 1]
    px = cam.C[0] + t * rays[..., 0]
    pz = cam.C[2] + t * rays[..., 2]
    step = rng.uniform(0.025, 0.06)
    wire = rng.uniform(0.0008, 0.0018)
    if rng.random() < 0.5:  # square weld mesh
        a, b = px / step, pz / step
    else:  # diamond (chain-link) mesh
        a, b = (px + pz) / step, (px - pz) / step
    da = np.abs(a - np.round(a)) * step
    db = np.abs(b - np.round(b)) * step
    # soft wire edges: the mesh is close to the camera and out of focus
    blur = wire * rng.uniform(0.8, 2.5)
    alpha = np.clip(1.0 - (np.minimum(da, db) - wire) / blur, 0.0, 1.0)
    alpha *= (t > 0) & (pz < rng.uniform(0.5, 1.5))  # the fence has a top
    grey = rng.uniform(0.35, 0.8)
    out = np.zeros(alpha.shape + (4,), np.float32)
    out[..., :3] = grey * np.array([1.0, 1.0, 0.97], np.float32)
    out[..., 3] = alpha * rng.uniform(0.35, 0.75)
    return out


def build_scene(view: str, cam: Camera, corridor: dict[str, float], seed: int, *,
                flat: bool = False) -> Scene:
    """Build clip ``seed``'s static background, depth, lighting and look.

    ``flat`` gives a plain grey world with no effects (debugging and pixel tests).
    """
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 77])
    H, W = cam.height, cam.width
    rays = pixel_rays(cam)
    look = _look(rng, flat)
    if flat:
        bg = np.full((H, W, 3), 128, np.uint8)
        depth = np.full((H, W), np.inf, np.float32)
        return Scene(camera=cam, background=bg, depth=depth,
                     light=np.ones((H, W, 3), np.float32), look=look,
                     rays=rays.astype(np.float32))

    tex_rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 78])
    wall_kind = str(tex_rng.choice(_WALLS))
    textures = {
        "floor": _litter(tex_rng),
        "wall": _wall_texture(tex_rng, wall_kind),
        "post": _boards(tex_rng, 256, vertical=True),
        "barn": _barn(tex_rng, 512, 1024),
        "door": _barn(tex_rng, 512, 512) * 0.5,
    }
    textures["wall2"] = textures["wall"] if tex_rng.random() < 0.7 else \
        _wall_texture(tex_rng, str(tex_rng.choice(_WALLS)))

    planes = _planes(view, corridor, cam, rng)
    best_t = np.full((H, W), np.inf)
    best_p = np.full((H, W), -1, np.int32)
    hits = []
    C = cam.C
    for i, (axis, value, (la, ha, lb, hb), _name, _mpp) in enumerate(planes):
        d = rays[..., axis]
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (value - C[axis]) / d
        others = [k for k in range(3) if k != axis]
        pa = C[others[0]] + t * rays[..., others[0]]
        pb = C[others[1]] + t * rays[..., others[1]]
        ok = (t > 1e-6) & (pa >= la) & (pa <= ha) & (pb >= lb) & (pb <= hb) & (t < best_t)
        best_t[ok] = t[ok]
        best_p[ok] = i
        hits.append((pa, pb))
    bg = np.zeros((H, W, 3), np.float32)
    barn = cv2.resize(textures["barn"], (W, H))
    bg[:] = barn
    for i, (axis, _value, _b, name, mpp) in enumerate(planes):
        sel = best_p == i
        if not sel.any():
            continue
        tex = textures[name]
        th, tw = tex.shape[:2]
        pa, pb = hits[i]
        # texture coordinates: wrap around (textures tile); z grows upwards -> rows flip
        ta = _mirror(pa / mpp, tw)
        tb = _mirror((-pb if axis != 2 else pb) / mpp, th)
        sampled = cv2.remap(tex, ta, tb, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        # distance fog/darkening and a softer texture far away
        shade = 1.0
        if name in ("wall", "wall2", "post"):
            shade = float(rng.uniform(0.65, 1.0))
        bg[sel] = sampled[sel] * shade
        # ambient occlusion where walls meet the floor
        if name == "floor":
            near_wall = np.zeros((H, W), np.float32)
            if view == "side":
                near_wall[sel] = np.clip(1.0 - (corridor["far_wall"] - pb[sel]) / 0.15, 0, 1)
            else:
                near_wall[sel] = np.clip(1.0 - (corridor["half_width"] - np.abs(pb[sel])) / 0.1,
                                         0, 1)
            bg *= (1.0 - 0.35 * near_wall)[..., None]
    crng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 80])
    _clutter(bg, best_t, view, corridor, cam, crng)
    frng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 81])  # own stream: stable choice
    overlay = _fence(cam, rays, frng) if view == "side" and frng.random() < 0.12 else None
    # lighting field: a smooth gradient, a light pool and vignetting
    g = value_noise(rng, H, W, 2, 2)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    cxp, cyp = rng.uniform(0, W), rng.uniform(0, H)
    pool = np.exp(-(((xx - cxp) / (W * rng.uniform(0.3, 0.9))) ** 2
                    + ((yy - cyp) / (H * rng.uniform(0.3, 0.9))) ** 2))
    r2 = ((xx - W / 2) / (W / 2)) ** 2 + ((yy - H / 2) / (H / 2)) ** 2
    vign = 1.0 - rng.uniform(0.0, 0.35) * r2 / 2
    light = (0.6 + 0.4 * g) * (0.7 + rng.uniform(0.2, 0.6) * pool) * vign
    light = light / float(np.mean(light))
    # the lighting field carries exposure and colour cast too: one multiply per frame
    light3 = (light[..., None] * (look.exposure * look.colour_gain)[None, None, :])
    bgu = np.clip(bg * 255.0, 0, 255).astype(np.uint8)
    noise_rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 79])
    noise = [noise_rng.standard_normal((H, W, 3), dtype=np.float32) * look.noise_sigma
             for _ in range(2)]
    lut = np.clip(255.0 * (np.arange(256) / 255.0) ** look.gamma + 0.5, 0, 255).astype(np.uint8)
    return Scene(camera=cam, background=bgu, depth=best_t.astype(np.float32),
                 light=light3.astype(np.float32), look=look,
                 rays=rays.astype(np.float32), noise=noise, lut=lut, overlay=overlay)
