"""Drawing the birds: a small ray caster of shaded, textured ellipsoids with a depth buffer.

Every body part is an ellipsoid (body, breast, wings, tail, feathered drumsticks, neck,
head, beak, eyes, comb and wattles or snood, and chains of slim ellipsoids for the scaly
shanks and toes). For each part only the pixels of its projected bounding box are cast:
the ray of each pixel (fixed per clip) is intersected with the ellipsoid analytically,
shaded (Lambert plus ambient and a feather texture looked up by the hit point's angles)
and depth-tested against the scenery and the other parts. The silhouette is therefore the
exact projection of the 3D bird, so a keypoint is drawn exactly where its truth says:
the foot's joint sphere is centred on the foot keypoint, the hock's on the hock, the head
sphere on the head.

:func:`render_frames` also decides which keypoints a human annotator could see: a
keypoint hidden by scenery (a post) or by another bird is flagged occluded (self-occlusion,
e.g. the knee inside the body contour, is not: those keypoints are labelled).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from gaitlive.synth.kinematics import HEAD, LFOOT, LHOCK, LKNEE, NECK, RFOOT, RHOCK, RKNEE
from gaitlive.synth.scene import Scene, build_scene
from gaitlive.synth.world import Actor, SynthSequence, corridor_layout

log = logging.getLogger(__name__)

__all__ = ["BirdLook", "RenderedFrame", "render_frames", "bird_look", "scene_for"]

# materials
FEATHER, FEATHER2, LEG, SKIN, RED, BEAK, EYE, HACKLE = range(8)


@dataclass
class BirdLook:
    """Colours (BGR in [0, 1]) and feather texture of one bird."""

    colours: np.ndarray  # (8, 3) per material
    texture: np.ndarray  # float32 (128, 256) multiplicative feather texture around 1
    shine: float
    breast: float = 1.0  # shape variation (does not move any keypoint)
    tail: float = 1.0
    wing: float = 1.0


def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, *stream])


_PLUMAGE_BGR = {
    "white": ([0.93, 0.94, 0.94], [0.88, 0.9, 0.91]),
    "cream": ([0.72, 0.86, 0.93], [0.6, 0.78, 0.88]),
    "brown": ([0.2, 0.36, 0.58], [0.12, 0.22, 0.4]),
    "red": ([0.12, 0.22, 0.55], [0.08, 0.15, 0.38]),
    "bronze": ([0.16, 0.22, 0.3], [0.3, 0.36, 0.42]),
    "black": ([0.1, 0.1, 0.11], [0.16, 0.17, 0.2]),
}


def bird_look(actor: Actor, seed: int) -> BirdLook:
    """The random colours and feather texture of ``actor`` in clip ``seed``."""
    rng = _rng(seed, 91, actor.individual, actor.pass_id)
    b = actor.bird
    main, second = (np.array(c) for c in _PLUMAGE_BGR[b.plumage])
    jitter = rng.normal(1.0, 0.02, 3) * rng.uniform(0.88, 1.05)
    dirt = rng.uniform(0.8, 1.0)  # dirty, worn plumage
    main = np.clip(main * jitter * dirt, 0, 1)
    second = np.clip(second * jitter * dirt, 0, 1)
    # neck hackles: golden on coloured birds, like the body on white ones
    hackle = main if b.plumage in ("white", "cream", "black") else np.clip(
        main * np.array([0.9, 1.25, 1.35]) * rng.uniform(0.9, 1.2), 0, 1)
    if b.species == "broiler":
        leg = np.array([0.25, 0.7, 0.85]) if rng.random() < 0.8 else np.array([0.55, 0.6, 0.85])
        skin = np.array([0.35, 0.4, 0.8])
        beak = np.array([0.35, 0.7, 0.85])
    else:
        leg = np.array([0.55, 0.6, 0.75]) if rng.random() < 0.6 else np.array([0.4, 0.45, 0.55])
        skin = np.array([0.8, 0.6, 0.55]) if rng.random() < 0.5 else np.array([0.45, 0.45, 0.8])
        beak = np.array([0.55, 0.65, 0.75])
    leg = np.clip(leg * rng.normal(1.0, 0.08, 3), 0, 1)
    red = np.clip(np.array([0.15, 0.15, 0.75]) * rng.normal(1.0, 0.08, 3), 0, 1)
    cols = np.stack([main, second, leg, skin, red, beak, np.array([0.05, 0.05, 0.05]),
                     hackle])
    # feathers: streaks along the body (longitude) and speckles
    streak = rng.random((16, 256)).astype(np.float32)
    streak = cv2.resize(streak, (256, 128), interpolation=cv2.INTER_CUBIC)
    speck = cv2.GaussianBlur(rng.random((128, 256)).astype(np.float32), (0, 0), 0.8)
    amp = 0.12 if b.plumage in ("white", "cream") else 0.25
    tex = 1.0 + amp * (streak - 0.5) + 0.8 * amp * (speck - 0.5)
    if b.plumage == "bronze":  # barred turkey feathers
        bars = 0.5 + 0.5 * np.sin(np.linspace(0, 40 * np.pi, 128))[:, None]
        tex = tex * (0.75 + 0.5 * bars.astype(np.float32))
    # dirt and wet patches (litter on the belly and flanks)
    patches = cv2.resize(rng.random((4, 8)).astype(np.float32), (256, 128),
                         interpolation=cv2.INTER_CUBIC)
    tex = tex * (1.0 - rng.uniform(0.0, 0.3) * np.clip(patches - 0.55, 0, 1) * 2.2)
    return BirdLook(colours=cols.astype(np.float32), texture=tex.astype(np.float32),
                    shine=float(rng.uniform(0.0, 0.25)), breast=float(rng.uniform(0.9, 1.15)),
                    tail=float(rng.uniform(0.7, 1.4)), wing=float(rng.uniform(0.85, 1.15)))


# ---------------------------------------------------------------------------------------


def _frame_from_axis(axis: np.ndarray, up_hint: np.ndarray) -> np.ndarray:
    a = axis / max(np.linalg.norm(axis), 1e-12)
    s = np.cross(up_hint, a)
    if np.linalg.norm(s) < 1e-6:
        s = np.cross([1.0, 0.0, 0.0], a)
    s /= np.linalg.norm(s)
    t = np.cross(a, s)
    return np.stack([a, s, t], axis=1)


def _segment(p: np.ndarray, q: np.ndarray, r0: float, r1: float, mat: int, n: int,
             out: list) -> None:
    """A slim limb from ``p`` to ``q`` as ``n`` overlapping ellipsoids (radius r0 -> r1)."""
    d = q - p
    ln = float(np.linalg.norm(d))
    if ln < 1e-9:
        return
    M = _frame_from_axis(d, np.array([0.0, 0.0, 1.0]))
    for i in range(n):
        f = (i + 0.5) / n
        r = r0 + (r1 - r0) * f
        out.append((p + d * f, M, np.array([ln / n * 0.75 + r, r, r]), mat))


def _primitives(actor: Actor, f: int, look: BirdLook | None = None
                ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, int]]:
    """Ellipsoids ``(centre, axes (3, 3) columns, radii (3,), material)`` of ``actor`` at
    its frame ``f``."""
    br, tf, wf = (look.breast, look.tail, look.wing) if look is not None else (1.0, 1.0, 1.0)
    b, w = actor.bird, actor.walk
    kp = w.keypoints[f]
    c = w.body_centre[f]
    Fm = w.body_frame[f]
    fwd, up = Fm[:, 0], Fm[:, 2]
    ax, ay, az = b.body_axes
    s = b.size
    turkey = b.species == "turkey"
    prims: list = []
    prims.append((c, Fm, np.array([ax, ay, az]), FEATHER))
    prims.append((c + Fm @ np.array([0.42 * ax, 0.0, -0.22 * az]), Fm,
                  np.array([0.62 * ax, 0.9 * ay, 0.78 * az]) * br, FEATHER))
    for side in (1.0, -1.0):
        prims.append((c + Fm @ np.array([-0.05 * ax, side * 0.62 * ay, 0.2 * az]), Fm,
                      np.array([0.78 * ax, 0.36 * ay, 0.6 * az]) * wf, FEATHER2))
    # tail: pitched up at the back
    pt = np.deg2rad(40.0 if not turkey else 20.0)
    tail_ax = np.cos(pt) * -fwd + np.sin(pt) * up
    Mt = _frame_from_axis(tail_ax, up)
    tl = (0.3 if not turkey else 0.5) * ax * tf
    tail_r = np.array([tl, 0.75 * ay, 0.12 * az]) if turkey else np.array([tl, 0.45 * ay,
                                                                              0.2 * az])
    prims.append((c + Fm @ np.array([-0.85 * ax, 0.0, 0.3 * az]) + tail_ax * tl * 0.6, Mt,
                  tail_r, FEATHER2))
    # legs: feathered drumstick knee -> hock, bare scaly shank hock -> foot, toes
    for knee, hock, foot, j in ((LKNEE, LHOCK, LFOOT, 0), (RKNEE, RHOCK, RFOOT, 1)):
        K, H, Ft = kp[knee], kp[hock], kp[foot]
        if not (np.all(np.isfinite(K)) and np.all(np.isfinite(H)) and np.all(np.isfinite(Ft))):
            continue
        d = H - K
        Md = _frame_from_axis(d, up)
        ln = float(np.linalg.norm(d))
        prims.append((K + 0.3 * d, Md, np.array([0.38 * ln, 0.027 * s, 0.025 * s]), FEATHER))
        prims.append((K + 0.66 * d, Md, np.array([0.3 * ln, 0.016 * s, 0.015 * s]), FEATHER))
        prims.append((H, np.eye(3), np.full(3, 0.0115 * s), LEG))
        _segment(H, Ft, 0.0085 * s, 0.0075 * s, LEG, 2, prims)
        prims.append((Ft, np.eye(3), np.full(3, 0.0095 * s), LEG))
        for t in range(4):
            _segment(Ft, w.toes[f, j, t], 0.0042 * s, 0.0042 * s, LEG, 1, prims)
    # neck and head
    head, neck = kp[HEAD], kp[NECK]
    dn = head - neck
    Mn = _frame_from_axis(dn, fwd)
    ln = float(np.linalg.norm(dn))
    prims.append((neck + 0.12 * dn, Mn, np.array([0.3 * ln + 0.01 * s, 0.048 * s,
                                                   0.042 * s]), HACKLE))
    prims.append((neck + 0.55 * dn, Mn, np.array([0.45 * ln, 0.03 * s, 0.027 * s]), HACKLE))
    if turkey:
        prims.append((neck + 0.75 * dn, Mn, np.array([0.3 * ln, 0.02 * s, 0.02 * s]), SKIN))
    hr = b.head_radius
    hd = w.head_dir[f]
    Mh = _frame_from_axis(hd, np.array([0.0, 0.0, 1.0]))
    hl = Mh[:, 1]  # head's left
    hu = Mh[:, 2]
    prims.append((head, Mh, np.array([1.1 * hr, 0.85 * hr, 0.95 * hr]),
                  SKIN if turkey else FEATHER))
    prims.append((head + hd * (hr * 1.15), Mh, np.array([0.6 * hr, 0.28 * hr, 0.28 * hr]), BEAK))
    for side in (1.0, -1.0):
        prims.append((head + side * hl * 0.78 * hr + hd * 0.35 * hr + hu * 0.15 * hr, np.eye(3),
                      np.full(3, 0.17 * hr), EYE))
    if not turkey:
        for i in range(3):  # comb
            prims.append((head + hu * 0.95 * hr + hd * (0.45 - 0.4 * i) * hr, Mh,
                          np.array([0.3 * hr, 0.12 * hr, 0.35 * hr]) * (1.0 - 0.15 * i), RED))
        for side in (1.0, -1.0):  # wattles
            prims.append((head + hd * 0.6 * hr - hu * 1.0 * hr + side * hl * 0.18 * hr, Mh,
                          np.array([0.25 * hr, 0.12 * hr, 0.4 * hr]), RED))
    else:
        prims.append((head + hd * 1.0 * hr + hu * 0.2 * hr - hu * 0.9 * hr, Mh,
                      np.array([0.18 * hr, 0.12 * hr, 0.9 * hr]), RED))  # snood
        prims.append((head - hu * 1.3 * hr + hd * 0.1 * hr, Mh,
                      np.array([0.45 * hr, 0.35 * hr, 0.7 * hr]), RED))  # wattle
    return prims


class _Canvas:
    """Frame colour (float32 [0, 1]) with a depth buffer and the owner of each pixel."""

    def __init__(self, scene: Scene) -> None:
        self.scene = scene
        self.img = scene.background.astype(np.float32) * (1.0 / 255.0)
        self.depth = scene.depth.copy()
        self.owner = np.full(self.depth.shape, -1, np.int16)

    def cast(self, centre: np.ndarray, M: np.ndarray, radii: np.ndarray, colour: np.ndarray,
             texture: np.ndarray | None, owner: int, light: np.ndarray, shine: float,
             ambient: float = 0.38, diffuse: float = 0.72) -> None:
        cam = self.scene.camera
        R = float(radii.max())
        pc = cam.to_camera(centre)
        if pc[2] <= R * 1.05:
            return
        (u, v), _ = cam.project(centre)
        # bounding radius of the undistorted projection: barrel distortion only shrinks it
        # (off-axis, a sphere's image stretches radially by up to 1 / cos(angle))
        off = float(np.sqrt(1.0 + (pc[0] ** 2 + pc[1] ** 2) / pc[2] ** 2))
        rp = cam.f * R / np.sqrt(max(pc[2] ** 2 - R ** 2, 1e-12)) * 1.05 * off + 2.0
        x0, x1 = max(int(u - rp), 0), min(int(u + rp) + 2, cam.width)
        y0, y1 = max(int(v - rp), 0), min(int(v + rp) + 2, cam.height)
        if x0 >= x1 or y0 >= y1:
            return
        D = self.scene.rays[y0:y1, x0:x1]
        o = ((cam.C - centre) @ M / radii).astype(np.float32)
        Mr = (M / radii[None, :]).astype(np.float32)
        d = D @ Mr
        a = np.einsum("ijk,ijk->ij", d, d)
        bq = d @ o
        cq = float(o @ o) - 1.0
        disc = bq * bq - a * cq
        hit = disc > 0
        if not hit.any():
            return
        t = np.where(hit, (-bq - np.sqrt(np.maximum(disc, 0.0))) / a, np.inf)
        zb = self.depth[y0:y1, x0:x1]
        m = hit & (t > 0) & (t < zb)
        if not m.any():
            return
        tm = t[m]
        pl = o[None] + tm[:, None] * d[m]  # local unit-sphere hit points
        n = (pl / radii[None, :].astype(np.float32)) @ M.T.astype(np.float32)
        n /= np.linalg.norm(n, axis=1, keepdims=True)
        lam = np.maximum(n @ light, 0.0)
        view = -D[m]
        rim = 1.0 - np.maximum(np.einsum("ij,ij->i", n, view), 0.0)
        shade = ambient + diffuse * lam - 0.25 * rim ** 2
        col = colour[None, :] * shade[:, None]
        if texture is not None:
            th, tw = texture.shape
            lon = np.arctan2(pl[:, 1], pl[:, 0])
            lat = np.arcsin(np.clip(pl[:, 2], -1.0, 1.0))
            ti = ((lat / np.pi + 0.5) * (th - 1)).astype(np.int32)
            tj = ((lon / (2 * np.pi) + 0.5) * (tw - 1)).astype(np.int32)
            col = col * texture[ti, tj][:, None]
        if shine > 0:
            h = light + view
            h /= np.linalg.norm(h, axis=1, keepdims=True)
            col = col + shine * np.maximum(np.einsum("ij,ij->i", n, h), 0.0)[:, None] ** 20
        sub = self.img[y0:y1, x0:x1]
        sub[m] = col
        zb[m] = tm
        self.owner[y0:y1, x0:x1][m] = owner


def scene_for(seq: SynthSequence, *, debug: bool = False) -> Scene:
    """The static scene of ``seq``'s clip (depends only on its seed, view and camera)."""
    corridor = seq.corridor or corridor_layout(seq.view, seq.seed)
    return build_scene(seq.view, seq.camera, corridor, seq.seed, flat=debug)


@dataclass
class RenderedFrame:
    """One rendered frame: the BGR image and which keypoints an annotator could see."""

    index: int
    image: np.ndarray
    visible: np.ndarray  # bool (n_individuals, 8): in the image, not hidden by scenery/others
    unoccluded: np.ndarray  # bool (n_individuals, 8): in the image and nothing in front


def _shadow(canvas: _Canvas, actor: Actor, f: int, strength: float) -> None:
    cam = canvas.scene.camera
    w, b = actor.walk, actor.bird
    c = w.body_centre[f].copy()
    c[2] = 0.0
    fwd = w.body_frame[f][:, 0].copy()
    fwd[2] = 0.0
    fwd /= max(np.linalg.norm(fwd), 1e-9)
    lat = np.cross([0.0, 0.0, 1.0], fwd)
    ang = np.linspace(0, 2 * np.pi, 20, endpoint=False)
    pts = (c + np.outer(np.cos(ang) * b.body_axes[0] * 1.1, fwd)
           + np.outer(np.sin(ang) * b.body_axes[1] * 1.4, lat))
    uv, z = cam.project(pts)
    if not np.all(np.isfinite(uv)) or np.any(z <= 0):
        return
    x0, y0 = np.floor(uv.min(axis=0)).astype(int) - 8
    x1, y1 = np.ceil(uv.max(axis=0)).astype(int) + 8
    x0, y0 = max(x0, 0), max(y0, 0)
    x1, y1 = min(x1, cam.width), min(y1, cam.height)
    if x0 >= x1 or y0 >= y1:
        return
    mask = np.zeros((y1 - y0, x1 - x0), np.float32)
    cv2.fillPoly(mask, [np.round(uv - [x0, y0]).astype(np.int32)], 1.0, cv2.LINE_AA)
    mask = cv2.GaussianBlur(mask, (0, 0), max(1.0, (x1 - x0) / 12))
    canvas.img[y0:y1, x0:x1] *= (1.0 - strength * mask)[..., None]


def _motion_blur(canvas: _Canvas, actor: Actor, f: int, owner: int, amount: float) -> None:
    if amount <= 0 or f == 0:
        return
    cam = canvas.scene.camera
    uv, _ = cam.project(actor.walk.body_centre[f - 1:f + 1])
    if not np.all(np.isfinite(uv)):
        return
    v = uv[1] - uv[0]
    ln = float(np.hypot(*v)) * amount
    if ln < 1.5:
        return
    ys, xs = np.nonzero(canvas.owner == owner)
    if len(xs) == 0:
        return
    pad = int(ln) + 3
    x0, x1 = max(xs.min() - pad, 0), min(xs.max() + pad + 1, cam.width)
    y0, y1 = max(ys.min() - pad, 0), min(ys.max() + pad + 1, cam.height)
    k = int(np.ceil(ln)) | 1
    kern = np.zeros((k, k), np.float32)
    c = k // 2
    d = v / max(np.hypot(*v), 1e-9)
    for i in np.linspace(-ln / 2, ln / 2, 2 * k):
        kern[int(round(c + i * d[1])), int(round(c + i * d[0]))] = 1.0
    kern /= kern.sum()
    sub = canvas.img[y0:y1, x0:x1]
    blurred = cv2.filter2D(sub, -1, kern)
    m = (canvas.owner[y0:y1, x0:x1] == owner).astype(np.float32)
    m = cv2.filter2D(m, -1, kern)[..., None]
    sub[:] = sub * (1.0 - m) + blurred * m


def _defocus_owned(canvas: _Canvas, sigma: float) -> None:
    """Blur what the birds drawn so far (the background birds) cover: out of focus."""
    ys, xs = np.nonzero(canvas.owner >= 0)
    if len(xs) == 0 or sigma <= 0:
        return
    pad = int(3 * sigma) + 2
    h, w = canvas.owner.shape
    x0, x1 = max(xs.min() - pad, 0), min(xs.max() + pad + 1, w)
    y0, y1 = max(ys.min() - pad, 0), min(ys.max() + pad + 1, h)
    sub = canvas.img[y0:y1, x0:x1]
    m = (canvas.owner[y0:y1, x0:x1] >= 0).astype(np.float32)
    m = cv2.GaussianBlur(m, (0, 0), sigma)[..., None]
    sub[:] = sub * (1.0 - m) + cv2.GaussianBlur(sub, (0, 0), sigma) * m


def _finish(canvas: _Canvas, t: float, rng: np.random.Generator) -> np.ndarray:
    """Lighting, colour cast, defocus, sensor noise, gamma: float canvas -> uint8 BGR."""
    sc = canvas.scene
    lk = sc.look
    gain = 255.0 * (1.0 + lk.flicker_amp * np.sin(2 * np.pi * lk.flicker_hz * t))
    img = cv2.multiply(canvas.img, sc.light, scale=gain)
    if lk.defocus_sigma > 0:
        img = cv2.GaussianBlur(img, (0, 0), lk.defocus_sigma)
    if lk.noise_sigma > 0 and sc.noise:
        nz = sc.noise[int(rng.integers(len(sc.noise)))]
        flip = int(rng.integers(4))
        nz = nz[::-1] if flip & 1 else nz
        nz = nz[:, ::-1] if flip & 2 else nz
        img = cv2.add(img, nz)
    out = cv2.convertScaleAbs(img)
    if sc.lut is not None:
        out = cv2.LUT(out, sc.lut)
    if lk.grayscale:
        out = cv2.cvtColor(cv2.cvtColor(out, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    if lk.jpeg_quality:
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, lk.jpeg_quality])
        if ok:
            out = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return out


def render_frames(seq: SynthSequence, frames: Iterable[int] | None = None, *,
                  debug: bool = False, markers: bool = False, scene: Scene | None = None
                  ) -> Iterator[RenderedFrame]:
    """Render frames of a simulated sequence (or pass).

    Parameters
    ----------
    seq
        From :func:`~gaitlive.synth.simulate_sequence` or
        :func:`~gaitlive.synth.simulate_pass`.
    frames
        Frame numbers to render (default: all, in order). Any subset renders the same
        pixels as the full sequence: per-frame randomness is seeded by the frame number.
    debug
        A plain grey world (BGR 128, 128, 128) with no lighting, shadows, specular
        highlights, noise, blur or compression: every part's pixels have exactly its
        material's chromaticity.
    markers
        Paint a small marker at every visible truth keypoint (for checking by eye).
    scene
        A scene from :func:`scene_for` to reuse (built when omitted).

    Yields
    ------
    RenderedFrame
    """
    sc = scene if scene is not None else scene_for(seq, debug=debug)
    cam = sc.camera
    looks = [bird_look(a, seq.seed) for a in seq.actors]
    light = sc.look.light_dir.astype(np.float32)
    n_ind = seq.poses.shape[1]
    frame_list = range(seq.n_frames) if frames is None else frames
    # background birds first (they are blurred as out of focus), then the others
    order = sorted(range(len(seq.actors)), key=lambda i: not seq.actors[i].background)
    for fi in frame_list:
        fi = int(fi)
        if not 0 <= fi < seq.n_frames:
            raise IndexError(f"frame {fi} outside the sequence's {seq.n_frames} frames")
        rng = np.random.default_rng([int(seq.seed) & 0xFFFFFFFF, 97, fi])
        canvas = _Canvas(sc)
        present = []
        for ai in order:
            a = seq.actors[ai]
            f = fi - a.frame0
            if 0 <= f < a.n_frames and np.all(np.isfinite(a.walk.keypoints[f])):
                present.append((ai, f))
        if not debug:
            for ai, f in present:
                _shadow(canvas, seq.actors[ai], f, 0.25 + 0.3 * (1 - sc.look.light_dir[2]))
        blurred_bg = False
        for ai, f in present:
            a, lk = seq.actors[ai], looks[ai]
            if not a.background and not blurred_bg and not debug:
                blurred_bg = True
                _defocus_owned(canvas, sc.look.background_defocus)
            for centre, M, radii, mat in _primitives(a, f, lk):
                tex = lk.texture if mat in (FEATHER, FEATHER2, HACKLE) else None
                canvas.cast(centre, M, radii, lk.colours[mat], tex, ai, light,
                            lk.shine if mat in (LEG, BEAK, EYE, RED) and not debug else 0.0,
                            sc.look.ambient, sc.look.diffuse)
            if not debug and not a.background:
                _motion_blur(canvas, a, f, ai, sc.look.motion_blur)
        if sc.overlay is not None:  # a fence in front of everything
            al = sc.overlay[..., 3:]
            canvas.img = canvas.img * (1.0 - al) + sc.overlay[..., :3] * al
        # which truth keypoints an annotator can see
        visible = np.zeros((n_ind, 8), bool)
        unoccluded = np.zeros((n_ind, 8), bool)
        for ai, f in present:
            a = seq.actors[ai]
            P = a.walk.keypoints[f]
            uv, _ = cam.project(P)
            dist = np.linalg.norm(P - cam.C, axis=1)
            inside = cam.inside(uv)
            for k in np.flatnonzero(inside):
                x = min(max(int(round(uv[k, 0])), 0), cam.width - 1)
                y = min(max(int(round(uv[k, 1])), 0), cam.height - 1)
                own = canvas.owner[y, x]
                hidden = bool(canvas.depth[y, x] < dist[k] - 0.03 * a.bird.size)
                visible[a.individual, k] = not hidden or own == ai
                unoccluded[a.individual, k] = not hidden
        img = _finish(canvas, fi / seq.fps, rng) if not debug else \
            np.clip(canvas.img * 255.0 + 0.5, 0, 255).astype(np.uint8)
        if markers:
            for i in range(n_ind):
                for k in range(8):
                    x, y, lkh = seq.poses[fi, i, k]
                    if lkh > 0:
                        cv2.drawMarker(img, (int(round(x)), int(round(y))),
                                       (0, 0, 255) if k % 2 == 0 else (255, 0, 0),
                                       cv2.MARKER_CROSS, 8, 1)
        yield RenderedFrame(index=fi, image=img, visible=visible, unoccluded=unoccluded)
