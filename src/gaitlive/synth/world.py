"""Passes and sequences: birds walking past a camera, with exact per-frame and per-step truth.

See :mod:`gaitlive.synth` for the public API. Random streams are derived from the seed by
purpose (``default_rng([seed, STREAM, ...])``) so that the truth never depends on
rendering options, and the same seed always gives byte-identical truth.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from gaitlive.synth.camera import Camera, rear_camera, side_camera
from gaitlive.synth.kinematics import (
    BODYPARTS,
    FEET,
    LFOOT,
    RFOOT,
    Bird,
    GaitParams,
    Walk,
    gait_params,
    make_bird,
    simulate_walk,
)

log = logging.getLogger(__name__)

__all__ = ["Actor", "PassTruth", "SynthPass", "SynthSequence", "simulate_pass",
           "simulate_sequence", "flock_size", "corridor_layout", "make_camera", "VIEWS"]

VIEWS = ("side", "rear")
_CAMERA, _BIRD, _GAIT, _WALK, _LAYOUT, _BACKGROUND = range(6)


@dataclass
class Actor:
    """One bird appearance: a walk placed at ``frame0`` of a sequence."""

    individual: int
    pass_id: int
    frame0: int
    bird: Bird
    gait: GaitParams
    walk: Walk
    background: bool = False

    @property
    def n_frames(self) -> int:
        return len(self.walk.t)


@dataclass
class PassTruth:
    """The truth of one pass (one bird crossing the view), in sequence frame numbers.

    ``strikes[foot][i]`` and ``lifts[foot][i]`` are the first and last frame of the i-th
    complete stance of ``foot`` seen in the image (the foot visible one frame before the
    strike and one after the lift). ``cadence_hz`` (steps/s, both feet) and
    ``stance_fraction`` are what these frames imply: cadence = (number of steps from the
    first listed strike to the last, counting those whose stance is not listed - 1) * fps /
    (last strike - first strike); stance fraction = (lift - strike + 1) /
    (next strike of the same foot - strike), averaged. ``step_lengths_*`` are the
    distances between consecutive footfalls (alternating feet) along the path: metres,
    image pixels and relative to the leg length (knee-hock + hock-foot).
    """

    individual: int
    pass_id: int
    severity: float
    view: str
    species: str
    plumage: str
    size: float
    start_frame: int
    end_frame: int
    direction: str  # "left_to_right", "right_to_left", "away", "across"
    strikes: dict[str, list[int]]
    lifts: dict[str, list[int]]
    cadence_hz: float
    stance_fraction: dict[str, float]
    step_lengths_m: list[float]
    step_lengths_px: list[float]
    step_lengths_rel: list[float]
    leg_length_m: float
    speed_m_s: float
    speed_leg_lengths_s: float
    painful_leg: str
    background: bool = False
    nominal: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["stance_fraction_left"] = self.stance_fraction.get("left", float("nan"))
        d["stance_fraction_right"] = self.stance_fraction.get("right", float("nan"))
        return d


@dataclass
class SynthSequence:
    """A clip's worth of truth: one camera, birds walking past it.

    Attributes
    ----------
    poses
        ``float32 (n_frames, n_individuals, 8, 3)`` image keypoints of :data:`BODYPARTS`
        (x, y, likelihood 1; NaN and 0 when the keypoint is outside the image or the bird
        is absent). Individual 0 is the bird walking the corridor; individual 1, when
        present, the background birds.
    passes
        One :class:`PassTruth` per appearance, in order of ``start_frame``.
    """

    poses: np.ndarray
    passes: list[PassTruth]
    camera: Camera
    actors: list[Actor]
    view: str
    fps: float
    seed: int
    bodyparts: tuple[str, ...] = BODYPARTS
    corridor: dict[str, float] = field(default_factory=dict)  # see corridor_layout

    @property
    def n_frames(self) -> int:
        return int(self.poses.shape[0])

    @property
    def individuals(self) -> tuple[str, ...]:
        return tuple(f"bird{i + 1}" for i in range(self.poses.shape[1]))


@dataclass
class SynthPass(SynthSequence):
    """One bird's pass: a :class:`SynthSequence` with one individual and one pass, plus
    shortcuts to that pass's truth (``strikes``, ``lifts``, ``cadence_hz``, ...)."""

    @property
    def truth(self) -> PassTruth:
        return self.passes[0]

    @property
    def strikes(self) -> dict[str, list[int]]:
        return self.truth.strikes

    @property
    def lifts(self) -> dict[str, list[int]]:
        return self.truth.lifts

    @property
    def cadence_hz(self) -> float:
        return self.truth.cadence_hz

    @property
    def stance_fraction(self) -> dict[str, float]:
        return self.truth.stance_fraction

    @property
    def step_lengths(self) -> list[float]:
        """Step lengths relative to the leg length."""
        return self.truth.step_lengths_rel

    @property
    def severity(self) -> float:
        return self.truth.severity

    @property
    def start_frame(self) -> int:
        return self.truth.start_frame

    @property
    def end_frame(self) -> int:
        return self.truth.end_frame


# --------------------------------------------------------------------------------------


def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, *stream])


def flock_size(seed: int) -> float:
    """The flock's bird size in clip ``seed`` (1 = a 2.5 kg broiler; about 3-6 weeks old).

    A barn camera is set up for its flock, so the camera's distance scales with it and
    each bird's size varies around it by +-10 %.
    """
    return float(_rng(seed, _BIRD, 99_999).uniform(0.65, 1.2))


def _bird_size(seed: int, stream: int, species: str, spread: float = 0.1) -> float:
    f = _rng(seed, _BIRD, 50_000 + stream).uniform(1.0 - spread, 1.0 + spread)
    return flock_size(seed) * float(f) * (1.6 if species == "turkey" else 1.0)


def make_camera(view: str, seed: int, width: int, height: int, scale: float = 1.0) -> Camera:
    """The random camera of clip ``seed`` (``scale``: bird size the camera is set up for)."""
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    rng = _rng(seed, _CAMERA)
    if view == "side":
        return side_camera(rng, width, height, scale=scale)
    return rear_camera(rng, width, height, scale=scale)


def _solve_along(cam: Camera, origin: np.ndarray, u: np.ndarray, height: float,
                 lo: float, hi: float, axis: int, target: float) -> float:
    """Path distance ``s`` at which the point ``origin + s u + height z`` projects to
    pixel coordinate ``target`` along ``axis`` (0: u, 1: v), searched in [lo, hi]."""
    s = np.linspace(lo, hi, 2001)
    pts = origin + s[:, None] * u + np.array([0.0, 0.0, height])
    uv, z = cam.project(pts)
    c = uv[:, axis] - target
    ok = np.isfinite(c) & (z > 0)
    sign = np.sign(c)
    idx = np.where(ok[:-1] & ok[1:] & (sign[:-1] != sign[1:]))[0]
    if len(idx) == 0:
        raise RuntimeError("the camera does not see the walking path")
    i = idx[0]
    return float(s[i] - c[i] * (s[i + 1] - s[i]) / (c[i + 1] - c[i]))


def _project_actor(cam: Camera, walk: Walk) -> np.ndarray:
    uv, z = cam.project(walk.keypoints)
    vis = cam.inside(uv) & (z > 0)
    out = np.zeros(walk.keypoints.shape[:2] + (3,), np.float32)
    out[..., :2] = np.where(vis[..., None], uv, np.nan)
    out[..., 2] = vis.astype(np.float32)
    return out


def _pass_truth(actor: Actor, poses: np.ndarray, cam: Camera, fps: float, view: str,
                direction: str) -> PassTruth | None:
    """Truth of ``actor`` from its projected ``poses`` ``(n, 8, 3)`` (actor frames)."""
    vis_any = poses[..., 2].max(axis=1) > 0
    if not vis_any.any():
        return None
    idx = np.flatnonzero(vis_any)
    a0, a1 = int(idx[0]), int(idx[-1])
    off = actor.frame0
    bird, gp, walk = actor.bird, actor.gait, actor.walk
    events: list[tuple[int, str, int, np.ndarray, int]] = []  # strike, foot, lift, hold, k
    strikes: dict[str, list[int]] = {}
    lifts: dict[str, list[int]] = {}
    order: dict[str, list[int]] = {}
    for j, foot in enumerate(FEET):
        kp = LFOOT if j == 0 else RFOOT
        fv = poses[:, kp, 2] > 0
        strikes[foot], lifts[foot], order[foot] = [], [], []
        for k, (f0, f1, hold) in enumerate(walk.stances[foot]):
            if f0 - 1 < a0 or f1 + 1 > a1 or not fv[f0 - 1:f1 + 2].all():
                continue
            strikes[foot].append(f0 + off)
            lifts[foot].append(f1 + off)
            order[foot].append(k)
            events.append((f0, foot, f1, hold, k))
    events.sort(key=lambda e: e[0])
    all_strikes = [e[0] for e in events]
    if len(all_strikes) >= 2:
        # every step between the first and last listed strike counts, also one whose
        # stance is not listed (partly out of view): steps / time
        a, b = all_strikes[0], all_strikes[-1]
        n_on = sum(1 for foot in FEET for (f0, _f1, _h) in walk.stances[foot] if a <= f0 <= b)
        cadence = (n_on - 1) * fps / (b - a)
    else:
        cadence = float("nan")
    stance_fraction: dict[str, float] = {}
    for foot in FEET:
        fr = []
        for i in range(len(order[foot]) - 1):
            if order[foot][i + 1] == order[foot][i] + 1:
                s0, s1 = strikes[foot][i], strikes[foot][i + 1]
                fr.append((lifts[foot][i] - s0 + 1) / (s1 - s0))
        stance_fraction[foot] = float(np.mean(fr)) if fr else float("nan")
    u = walk.path_dir
    lm, lpx, lrel = [], [], []
    for e0, e1 in zip(events[:-1], events[1:], strict=True):
        if e0[1] == e1[1]:
            continue  # a step is between alternating feet
        dm = float(abs((e1[3] - e0[3]) @ u))
        p0 = poses[e0[0], LFOOT if e0[1] == "left" else RFOOT, :2]
        p1 = poses[e1[0], LFOOT if e1[1] == "left" else RFOOT, :2]
        lm.append(dm)
        lpx.append(float(np.hypot(*(p1 - p0))))
        lrel.append(dm / bird.leg_length)
    return PassTruth(
        individual=actor.individual, pass_id=actor.pass_id, severity=round(gp.severity, 4),
        view=view, species=bird.species, plumage=bird.plumage, size=round(bird.size, 4),
        start_frame=a0 + off, end_frame=a1 + off, direction=direction,
        strikes=strikes, lifts=lifts, cadence_hz=float(cadence),
        stance_fraction=stance_fraction, step_lengths_m=lm, step_lengths_px=lpx,
        step_lengths_rel=lrel, leg_length_m=bird.leg_length, speed_m_s=gp.speed,
        speed_leg_lengths_s=gp.speed / bird.leg_length, painful_leg=gp.painful,
        background=actor.background,
        nominal={"cadence_hz": gp.cadence, "duty_left": gp.duty[0], "duty_right": gp.duty[1],
                 "step_length_m": gp.step_length, "step_height_m": gp.step_height,
                 "sway_m": gp.sway, "foot_halfwidth_m": gp.foot_halfwidth})


def _main_actor(cam: Camera, view: str, *, seed: int, pass_id: int, frame0: int,
                severity: float, species: str, plumage: str | None, size: float | None,
                fps: float, direction: int | None = None, pad_s: float = 0.0,
                pecks: float = 0.0,
                corridor: dict[str, float] | None = None) -> tuple[Actor, str]:
    rng_b = _rng(seed, _BIRD, pass_id)
    bird = make_bird(rng_b, species, plumage, size)
    gp = gait_params(severity, bird, _rng(seed, _GAIT, pass_id))
    rng_l = _rng(seed, _LAYOUT, pass_id)
    margin = 0.32 * bird.size
    if view == "side":
        d = int(direction) if direction is not None else int(rng_l.choice([-1, 1]))
        psi = np.deg2rad(rng_l.normal(0.0, 3.0))
        u = np.array([d * np.cos(psi), np.sin(psi), 0.0])
        y0 = rng_l.uniform(-0.08, 0.15) * bird.size
        origin = np.array([0.0, y0, 0.0])
        h = 0.15 * bird.size
        s_a = _solve_along(cam, origin, u, h, -8.0, 8.0, 0, -0.5)
        s_b = _solve_along(cam, origin, u, h, -8.0, 8.0, 0, cam.width - 0.5)
        s_start, s_end = min(s_a, s_b) - margin, max(s_a, s_b) + margin
        dname = "left_to_right" if d > 0 else "right_to_left"
    else:
        psi = np.deg2rad(rng_l.normal(0.0, 4.0))
        u = np.array([np.cos(psi), np.sin(psi), 0.0])
        origin = np.array([0.0, rng_l.uniform(-0.06, 0.06), 0.0])
        s_bottom = _solve_along(cam, origin, u, 0.0, 0.0, 12.0, 1, cam.height - 0.5)
        s_start = s_bottom - 0.25 * bird.size
        s_end = s_start + rng_l.uniform(1.6, 2.8) * bird.size
        if corridor is not None:
            # the whole walk stays between the side walls: body and feet (about 0.2 bird
            # sizes to either side of the path, sway included) never reach them
            room = corridor["half_width"] - 0.2 * bird.size
            y0 = float(np.clip(origin[1], -max(room, 0.0), max(room, 0.0)))
            reach = max(abs(s_start), abs(s_end), 1e-6)
            lim = max(room - abs(y0), 0.0) / reach
            sin_psi = float(np.clip(np.sin(psi), -lim, lim))
            u = np.array([np.sqrt(1.0 - sin_psi ** 2), sin_psi, 0.0])
            origin = np.array([0.0, y0, 0.0])
        dname = "away"
    dur = (s_end - s_start) / gp.speed + 2.0 * pad_s
    n = int(np.ceil(dur * fps)) + 1
    walk = simulate_walk(bird, gp, n_frames=n, fps=fps, origin=origin, direction=u,
                         start_along=s_start - pad_s * gp.speed, t_start=frame0 / fps,
                         rng=_rng(seed, _WALK, pass_id), pecks=pecks)
    if view == "rear":
        # the bird leaves through the doorway at the far end: it is gone beyond s_end
        gone = walk.along > s_end
        walk.keypoints[gone] = np.nan
    return Actor(individual=0, pass_id=pass_id, frame0=frame0, bird=bird, gait=gp,
                 walk=walk), dname


def _background_actor(cam: Camera, view: str, *, seed: int, k: int, frame0: int, n_max: int,
                      species: str, fps: float, corridor: dict[str, float]) -> Actor:
    rng = _rng(seed, _BACKGROUND, k)
    bird = make_bird(rng, species, size=_bird_size(seed, 1000 + k, species, 0.15))
    gp = gait_params(float(rng.uniform(0.0, 3.0)), bird, rng)
    d = float(rng.choice([-1.0, 1.0]))
    if view == "side":
        y = rng.uniform(0.45, corridor["far_wall"] - 0.25)
        u = np.array([d, 0.0, 0.0])
        origin = np.array([0.0, y, 0.0])
        s_a = _solve_along(cam, origin, u, 0.1, -12.0, 12.0, 0, -0.5)
        s_b = _solve_along(cam, origin, u, 0.1, -12.0, 12.0, 0, cam.width - 0.5)
        s_start = min(s_a, s_b) - 0.35 * bird.size  # enters from outside the image
        s_end = max(s_a, s_b) + 0.35 * bird.size
    else:
        # beyond the end wall, seen through the doorway (never through the side walls)
        x = corridor["end"] + rng.uniform(0.15, 0.45)
        u = np.array([0.0, d, 0.0])
        origin = np.array([x, 0.0, 0.0])
        half = corridor["half_width"]
        s_start, s_end = -half - 0.3, half + 0.3
    n = min(int(np.ceil((s_end - s_start) / gp.speed * fps)) + 1, n_max)
    walk = simulate_walk(bird, gp, n_frames=max(n, 2), fps=fps, origin=origin, direction=u,
                         start_along=s_start, t_start=frame0 / fps, rng=rng)
    return Actor(individual=1, pass_id=k, frame0=frame0, bird=bird, gait=gp, walk=walk,
                 background=True)


def corridor_layout(view: str, seed: int, scale: float = 1.0) -> dict[str, float]:
    """Where the corridor's walls are for clip ``seed`` (metres)."""
    rng = _rng(seed, _LAYOUT, 10_000)
    if view == "side":
        return {"far_wall": float(rng.uniform(1.0, 1.8) * scale),
                "near_posts": float(-rng.uniform(0.2, 0.45) * scale),
                "post_spacing": float(rng.uniform(0.7, 1.4) * scale),
                "wall_height": float(rng.uniform(0.6, 1.2) * scale)}
    return {"half_width": float(rng.uniform(0.2, 0.45) * scale),
            "end": float(rng.uniform(3.4, 4.4) * scale),
            "post_spacing": float(rng.uniform(0.7, 1.4) * scale),
            "wall_height": float(rng.uniform(0.5, 0.9) * scale)}


def simulate_sequence(*, passes: int = 3, severities: list[float] | None = None,
                      view: str = "side", species: str = "broiler", fps: float = 30.0,
                      seed: int = 0, width: int = 640, height: int = 480,
                      gap_s: tuple[float, float] = (1.0, 3.0), background: float = 0.0,
                      plumage: str | None = None, lead_s: float = 0.5,
                      pecking: float = 0.0) -> SynthSequence:
    """Several passes past one camera, separated by stretches of empty corridor.

    Parameters
    ----------
    passes
        Number of passes (ignored when ``severities`` is given).
    severities
        Severity of each pass (default: uniform random in [0, 4.5]).
    species
        ``"broiler"``, ``"turkey"`` or ``"mixed"`` (random per pass).
    gap_s
        Range of the empty-corridor stretch before each pass, seconds.
    background
        Probability that a background bird walks past during each pass (side view: further
        back, smaller and out of focus; rear view: across the far end of the corridor).
        Background birds are individual 1 of the pose array (2, 3, ... for one that
        overlaps another in time).
    lead_s
        Empty seconds at the start of the clip (added to the first gap).
    pecking
        Probability that the corridor bird of a pass pecks at the litter as it walks (about
        one peck every 1-3 s; only the head moves differently).

    Returns
    -------
    SynthSequence
    """
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    if species not in (*("broiler", "turkey"), "mixed"):
        raise ValueError(f"species must be broiler, turkey or mixed, got {species!r}")
    rng = _rng(seed, _LAYOUT)
    if severities is None:
        severities = [float(x) for x in rng.uniform(0.0, 4.5, int(passes))]
    if not severities:
        raise ValueError("a sequence needs at least one pass")
    specs = [species if species != "mixed" else str(rng.choice(["broiler", "turkey"]))
             for _ in severities]
    scale = flock_size(seed) * (1.6 if all(s == "turkey" for s in specs) else (
        1.25 if "turkey" in specs else 1.0))
    cam = make_camera(view, seed, width, height, scale=scale)
    corridor = corridor_layout(view, seed, scale)
    actors: list[Actor] = []
    dirs: list[str] = []
    frame = int(round(lead_s * fps))
    for i, (sev, sp) in enumerate(zip(severities, specs, strict=True)):
        frame += int(round(rng.uniform(*gap_s) * fps))
        pk = 0.0
        if pecking > 0:
            prng = _rng(seed, _WALK, 20_000 + i)
            pk = float(prng.uniform(0.3, 1.0)) if prng.random() < pecking else 0.0
        act, dname = _main_actor(cam, view, seed=seed, pass_id=i, frame0=frame,
                                 severity=float(sev), species=sp, plumage=plumage,
                                 size=_bird_size(seed, i, sp), fps=fps, pecks=pk,
                                 corridor=corridor)
        actors.append(act)
        dirs.append(dname)
        frame += act.n_frames
    n_total = frame + int(round(rng.uniform(*gap_s) * fps))
    bg_actors = []
    for i, act in enumerate(list(actors)):
        if rng.uniform() < background:
            f0 = act.frame0 + int(rng.integers(0, max(act.n_frames // 2, 1)))
            sp = specs[i] if rng.uniform() < 0.7 else str(rng.choice(["broiler", "turkey"]))
            bg = _background_actor(cam, view, seed=seed, k=i, frame0=f0, n_max=n_total - f0,
                                   species=sp, fps=fps, corridor=corridor)
            bg_actors.append(bg)
    # a background bird that overlaps another in time gets the next individual
    ends: list[int] = []  # per individual 1, 2, ...: the frame after its last bird
    for k, bg in enumerate(bg_actors):
        slot = next((i for i, e in enumerate(ends) if e <= bg.frame0), len(ends))
        if slot == len(ends):
            ends.append(0)
        ends[slot] = bg.frame0 + bg.n_frames
        bg_actors[k] = dataclasses.replace(bg, individual=1 + slot)
    n_ind = 1 + len(ends)
    poses = np.full((n_total, n_ind, len(BODYPARTS), 3), np.nan, np.float32)
    poses[..., 2] = 0.0
    truths: list[PassTruth] = []
    for act, dname in [*zip(actors, dirs, strict=True), *[(b, "across") for b in bg_actors]]:
        p = _project_actor(cam, act.walk)
        sl = slice(act.frame0, act.frame0 + act.n_frames)
        poses[sl, act.individual] = p
        tr = _pass_truth(act, p, cam, fps, view, dname)
        if tr is not None:
            truths.append(tr)
    truths.sort(key=lambda t: (t.start_frame, t.individual))
    return SynthSequence(poses=poses, passes=truths, camera=cam, actors=actors + bg_actors,
                         view=view, fps=float(fps), seed=int(seed), corridor=corridor)


def simulate_pass(*, severity: float, view: str = "side", species: str = "broiler",
                  fps: float = 30.0, seed: int = 0, width: int = 640, height: int = 480,
                  plumage: str | None = None, size: float | None = None,
                  direction: int | None = None, pad_s: float = 0.3) -> SynthPass:
    """One bird walking once past the camera, with exact truth; nothing is rendered.

    Parameters
    ----------
    severity
        Continuous Kestin gait score in [0, 5] (0 sound, 5 barely walks).
    view
        ``"side"`` (walks across the image) or ``"rear"`` (walks away from the camera).
    species
        ``"broiler"`` or ``"turkey"``.
    seed
        Everything random (camera, bird, walk) derives from it; same seed, same truth.
    plumage, size
        Fix the bird's plumage (see :data:`~gaitlive.synth.kinematics.PLUMAGES`) or size
        (1 = reference broiler) instead of drawing them.
    direction
        Side view: +1 walks left to right, -1 right to left (default random).
    pad_s
        Seconds of walking outside the image before and after the pass.

    Returns
    -------
    SynthPass
        ``poses`` ``float32 (n_frames, 1, 8, 3)`` and the pass truth (``strikes``,
        ``lifts``, ``cadence_hz``, ``stance_fraction``, ``step_lengths``, ...).
    """
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    if species not in ("broiler", "turkey"):
        raise ValueError(f"species must be broiler or turkey, got {species!r}")
    kind = 1.6 if species == "turkey" else 1.0
    if size is None:
        size = _bird_size(seed, 0, species)
        scale = flock_size(seed) * kind
    else:
        scale = float(size)  # the camera is set up for this bird
    cam = make_camera(view, seed, width, height, scale=scale)
    corridor = corridor_layout(view, seed, scale)
    act, dname = _main_actor(cam, view, seed=seed, pass_id=0, frame0=0,
                             severity=float(severity), species=species, plumage=plumage,
                             size=size, fps=fps, direction=direction, pad_s=pad_s,
                             corridor=corridor)
    p = _project_actor(cam, act.walk)
    tr = _pass_truth(act, p, cam, fps, view, dname)
    if tr is None:
        raise RuntimeError(f"seed {seed}: the bird never came into view")
    return SynthPass(poses=p[:, None].copy(), passes=[tr], camera=cam, actors=[act],
                     view=view, fps=float(fps), seed=int(seed), corridor=corridor)
