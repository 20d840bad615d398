"""The bird and its walk: body proportions, the severity-to-gait mapping and a 3D walk.

Everything here is in world metres and seconds (see :mod:`gaitlive.synth.camera` for the
frame); nothing is drawn. A walk is built from continuous-time stance intervals per foot:

* each foot has stance intervals ``[t_strike_k, t_lift_k]``; during a stance the foot sits
  on a fixed foothold on the floor (exactly the same coordinates every frame: no sliding);
* between stances the foot swings on an arc (eased along the path, ``sin`` in height) from
  one foothold to the next;
* the knee hangs from the hip on the femur (which swings a little); the hock (intertarsal
  joint, the "heel") comes from a two-segment inverse kinematics knee -> hock -> foot that
  always bends the hock backwards, as in birds;
* the head holds still in the world while the body walks on, then thrusts forward (one bob
  per step); the body sways towards the stance foot and rolls with it.

A frame ``f`` is at ``t = f / fps``; the stance of a frame is decided on those times, so a
stance's strike frame is the first frame of the stance and its lift frame the last one.

Severity (continuous Kestin gait score, 0 sound ... 5 barely walks) drives the walk through
:func:`gait_params`; the mapping and its literature are documented in ``docs/synth.md``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

log = logging.getLogger(__name__)

__all__ = [
    "BODYPARTS",
    "SPECIES",
    "PLUMAGES",
    "Bird",
    "GaitParams",
    "Walk",
    "make_bird",
    "gait_params",
    "simulate_walk",
]

BODYPARTS: tuple[str, ...] = ("head", "neck", "left_knee", "right_knee", "left_hock",
                              "right_hock", "left_foot", "right_foot")
SPECIES = ("broiler", "turkey")
PLUMAGES: dict[str, tuple[str, ...]] = {
    "broiler": ("white", "cream", "brown", "red"),
    "turkey": ("white", "bronze", "black"),
}
HEAD, NECK, LKNEE, RKNEE, LHOCK, RHOCK, LFOOT, RFOOT = range(8)
FEET = ("left", "right")


@dataclass(frozen=True)
class Bird:
    """One bird's build (metres). ``size`` is relative to a reference 2.5 kg broiler."""

    species: str
    plumage: str
    size: float
    body_axes: tuple[float, float, float]  # semi-axes: forward, lateral, vertical
    hip_offset: tuple[float, float, float]  # hip from body centre: forward, lateral, down
    femur: float
    tibiotarsus: float
    tarsometatarsus: float
    toe: float
    neck_len: float
    head_radius: float
    head_up: float = 1.0  # head height above the neck base, in neck lengths
    head_fwd: float = 0.6  # mean head position ahead of the neck base, in half neck lengths

    @property
    def leg_length(self) -> float:
        """Knee-hock plus hock-foot length: the scale unit of the gait profiles."""
        return self.tibiotarsus + self.tarsometatarsus


@dataclass(frozen=True)
class GaitParams:
    """The walk of one bird at one severity (see :func:`gait_params`)."""

    severity: float
    speed: float  # m/s along the path
    cadence: float  # steps per second, both feet
    duty: tuple[float, float]  # stance fraction of left, right foot
    painful: str  # the favoured ("painful") leg: shorter stance
    step_height: float  # m, swing-foot clearance
    sway: float  # m, lateral body sway amplitude
    roll_deg: float  # body roll amplitude towards the stance leg
    foot_halfwidth: float  # m, lateral distance of each foothold from the path
    femur_rom_deg: float  # femur swing amplitude
    stride_cv: float  # stride-to-stride variability (coefficient of variation)
    head_hold: float  # fraction of a step the head holds still
    hock_valgus_deg: float  # hocks bent towards the midline (Fodor et al. 2023)
    speed_ripple: float  # within-stride speed fluctuation, fraction of speed

    @property
    def stride_period(self) -> float:
        return 2.0 / self.cadence

    @property
    def step_length(self) -> float:
        return self.speed / self.cadence


def make_bird(rng: np.random.Generator, species: str = "broiler", plumage: str | None = None,
              size: float | None = None) -> Bird:
    """A random bird of ``species`` (broiler or turkey) with a plumage from :data:`PLUMAGES`.

    Broiler proportions follow a 5-6 week commercial broiler (tarsometatarsus ~8 cm,
    tibiotarsus ~11 cm); turkeys are about 1.6 times larger with relatively longer legs.
    """
    if species not in SPECIES:
        raise ValueError(f"species must be one of {SPECIES}, got {species!r}")
    if plumage is None:
        plumage = str(rng.choice(PLUMAGES[species]))
    elif plumage not in PLUMAGES[species]:
        raise ValueError(f"plumage for {species} must be one of {PLUMAGES[species]}, "
                         f"got {plumage!r}")
    if size is None:
        # 3-6 week broilers (Fodor et al. 2023 filmed at 14, 21 and 33 days); turkeys larger
        size = float(rng.uniform(0.65, 1.2)) * (1.6 if species == "turkey" else 1.0)
    s = size
    fat = rng.uniform(0.92, 1.1)
    leg = rng.uniform(0.93, 1.07) * (1.08 if species == "turkey" else 1.0)
    return Bird(
        species=species, plumage=plumage, size=s,
        body_axes=(0.135 * s * rng.uniform(0.95, 1.05), 0.080 * s * fat, 0.085 * s * fat),
        hip_offset=(-0.015 * s, 0.045 * s * fat, 0.035 * s),
        femur=0.07 * s, tibiotarsus=0.11 * s * leg, tarsometatarsus=0.08 * s * leg,
        toe=0.045 * s, neck_len=(0.095 if species == "broiler" else 0.13) * s,
        head_radius=(0.024 if species == "broiler" else 0.026) * s,
        head_up=float(rng.uniform(0.75, 1.1)), head_fwd=float(rng.uniform(0.3, 0.95)))


def gait_params(severity: float, bird: Bird, rng: np.random.Generator) -> GaitParams:
    """Map a continuous Kestin gait score to walk parameters, with bird-to-bird spread.

    Reference (score 0) broiler: speed 0.30 m/s, cadence 2.0 steps/s, duty factor 0.62
    (Caplen et al. 2012; Paxton et al. 2013; Aydin 2017). With rising severity the bird walks
    slower with shorter, lower steps, a longer stance (duty factor), more lateral sway and
    roll, wider footholds, hocks bent towards the midline (Fodor et al. 2023), less joint
    range of motion, more stride variability, and favours one leg (shorter stance on the
    painful leg). Cadence rises a little up to score 3 (shorter, quicker strides, Caplen et
    al. 2012) and falls for severe lameness. Turkeys walk with the same dimensionless gait,
    scaled with leg length (dynamic similarity). See ``docs/synth.md`` for the table.
    """
    s = float(severity)
    if not 0.0 <= s <= 5.0:
        raise ValueError(f"severity must be in [0, 5] (Kestin gait score), got {severity!r}")
    scale = bird.leg_length / 0.19  # speed ~ sqrt(g L) (Froude), cadence ~ 1/sqrt(L)
    fr = np.sqrt(scale)
    speed = 0.30 * fr * rng.uniform(0.88, 1.12) * (1.0 - 0.145 * s)
    # Caplen et al. 2012: lame (score 3) broilers take shorter *and quicker* strides;
    # severely lame birds (4-5) only manage a few slow steps
    cad_f = 1.0 + 0.03 * s if s <= 3.0 else 1.09 - 0.2 * (s - 3.0)
    cadence = 2.0 / fr * rng.uniform(0.9, 1.1) * cad_f
    duty = 0.62 + 0.035 * s + rng.normal(0.0, 0.01)
    asym = 0.028 * s * rng.uniform(0.7, 1.3)
    painful = str(rng.choice(FEET))
    dl, dr = (duty - asym / 2, duty + asym / 2) if painful == "left" else \
        (duty + asym / 2, duty - asym / 2)
    return GaitParams(
        severity=s, speed=float(speed), cadence=float(cadence),
        duty=(float(min(dl, 0.9)), float(min(dr, 0.9))), painful=painful,
        step_height=float(bird.leg_length * 0.24 * (1.0 - 0.11 * s) * rng.uniform(0.85, 1.15)),
        sway=float(bird.size * (0.006 + 0.0055 * s) * rng.uniform(0.8, 1.2)),
        roll_deg=float((3.0 + 2.5 * s) * rng.uniform(0.8, 1.2)),
        foot_halfwidth=float(bird.hip_offset[1] * (1.0 + 0.09 * s) * rng.uniform(0.9, 1.1)),
        femur_rom_deg=float(8.0 * (1.0 - 0.1 * s) * rng.uniform(0.85, 1.15)),
        stride_cv=float(0.03 + 0.015 * s),
        head_hold=float(rng.uniform(0.35, 0.5)),
        hock_valgus_deg=float(2.0 + 4.0 * s * rng.uniform(0.8, 1.2)),
        speed_ripple=float(rng.uniform(0.05, 0.12) * (1.0 + 0.3 * s)),
    )


@dataclass
class Walk:
    """A simulated walk sampled at the frame times.

    Attributes
    ----------
    t
        ``(n,)`` frame times (s).
    keypoints
        ``(n, 8, 3)`` world positions of :data:`BODYPARTS`.
    hips
        ``(n, 2, 3)`` left and right hip joints.
    toes
        ``(n, 2, 4, 3)`` toe tips (three forward toes, then the hallux), per foot.
    body_centre, body_frame
        ``(n, 3)`` and ``(n, 3, 3)`` (columns: forward, left, up).
    head_dir
        ``(n, 3)`` unit vector the beak points along.
    stance
        ``(n, 2)`` whether each foot is in stance.
    stances
        Per foot, a list of ``(strike_frame, lift_frame, foothold_xyz)`` for every stance that
        has at least one frame in ``[0, n)``.
    path_origin, path_dir
        The straight path the bird walks along.
    """

    t: np.ndarray
    keypoints: np.ndarray
    hips: np.ndarray
    toes: np.ndarray
    body_centre: np.ndarray
    body_frame: np.ndarray
    head_dir: np.ndarray
    stance: np.ndarray
    stances: dict[str, list[tuple[int, int, np.ndarray]]]
    path_origin: np.ndarray
    path_dir: np.ndarray
    along: np.ndarray = field(default_factory=lambda: np.zeros(0))  # body distance along path


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _stance_times(rng: np.random.Generator, gp: GaitParams, t0: float, t1: float
                  ) -> dict[str, np.ndarray]:
    """Stance intervals ``(k, 2)`` per foot covering ``[t0, t1]``."""
    T = gp.stride_period
    extra = 4
    while True:
        n = int(np.ceil((t1 - t0) / T)) + extra
        periods = T * np.clip(1.0 + rng.normal(0.0, gp.stride_cv, n), 0.75, 1.25)
        left_strikes = t0 - 2.0 * T + rng.uniform(0.0, T) + np.concatenate(
            [[0.0], np.cumsum(periods[:-1])])
        if left_strikes[-1] > t1 + 0.5 * T:  # the schedule covers the walk (else: redraw
            break  # with more strides; rare, after many short strides)
        extra *= 2
    # the right foot strikes about half a stride later; the painful leg's stance is shorter
    shift = 0.5 + rng.normal(0.0, 0.01 + 0.008 * gp.severity, n)
    right_strikes = left_strikes + shift * periods
    out = {}
    for foot, strikes, duty in (("left", left_strikes, gp.duty[0]),
                                ("right", right_strikes, gp.duty[1])):
        dur = duty * periods * np.clip(1.0 + rng.normal(0.0, gp.stride_cv / 2, n), 0.85, 1.15)
        # keep a swing of at least 30% of the nominal swing before the same foot's next
        # strike (the right foot's strike-to-strike time is not ``periods``: its shift varies)
        gaps = np.diff(strikes, append=strikes[-1] + periods[-1])
        dur = np.minimum(dur, gaps - 0.3 * (1.0 - duty) * T)
        out[foot] = np.stack([strikes, strikes + dur], axis=1)
    return out


def simulate_walk(bird: Bird, gp: GaitParams, *, n_frames: int, fps: float,
                  origin: np.ndarray, direction: np.ndarray, start_along: float,
                  t_start: float = 0.0, rng: np.random.Generator,
                  pecks: float = 0.0) -> Walk:
    """Simulate ``n_frames`` frames of ``bird`` walking with ``gp`` along a straight path.

    Parameters
    ----------
    origin, direction
        The path: the body centre (at floor level) is at ``origin + s * direction``.
    start_along
        ``s`` of the body centre at frame 0 (``t = t_start``).
    t_start
        Time of frame 0 (the walk may have begun before the first frame).
    pecks
        Pecks per second: the bird dips its head to the litter in front of its feet
        (0.4-0.9 s each) while it walks on; only the head and its direction change.

    Returns
    -------
    Walk
    """
    fps = float(fps)
    t = t_start + np.arange(n_frames) / fps
    u = np.asarray(direction, float)
    u = u / np.linalg.norm(u)
    up = np.array([0.0, 0.0, 1.0])
    left = np.cross(up, u)
    origin = np.asarray(origin, float)

    T = gp.stride_period
    w = 2.0 * np.pi / T
    ripple_phase = rng.uniform(0, 2 * np.pi)

    def along(tt: np.ndarray) -> np.ndarray:
        tau = np.asarray(tt) - t_start
        return start_along + gp.speed * tau + gp.speed * gp.speed_ripple / (2 * w) * (
            np.sin(2 * w * tau + ripple_phase) - np.sin(ripple_phase))

    st = _stance_times(rng, gp, t_start, t[-1] + 1.0 / fps)
    a_b, b_b, c_b = bird.body_axes
    hf, hl, hd = bird.hip_offset
    a, b = bird.tibiotarsus, bird.tarsometatarsus
    femur_fwd = bird.femur * np.cos(np.deg2rad(28.0))
    femur_drop = bird.femur * np.sin(np.deg2rad(28.0))
    # knee height: as crouched as a broiler, but the stance foot must stay reachable
    # the stance foot is swept from ahead of the knee to behind it (most at the lift)
    reach_h = 0.5 * max(gp.duty) * gp.speed * T + 0.15 * a
    knee_h = float(np.clip(np.sqrt(max((0.96 * (a + b)) ** 2 - reach_h ** 2, 0.0)),
                           0.72 * (a + b), 0.82 * (a + b)))
    hip_h = knee_h + femur_drop
    centre_h = hip_h + hd - 0.004 * gp.severity * bird.size  # lame birds sit lower

    # ---- body ------------------------------------------------------------------------
    s_body = along(t)
    tl_mid = st["left"].mean(axis=1)
    # sway: towards the left foot in mid left stance
    phase_l = w * (t - tl_mid[0])
    sway = gp.sway * np.cos(phase_l)
    bob = 0.004 * bird.size * np.cos(2 * phase_l)
    lateral_path = 0.0
    centre = (origin + s_body[:, None] * u + (lateral_path + sway)[:, None] * left
              + (centre_h + bob)[:, None] * up)
    roll = np.deg2rad(gp.roll_deg) * np.cos(phase_l)  # positive: left side down
    pitch = np.deg2rad(-8.0 - 1.5 * gp.severity + 2.0 * np.sin(2 * phase_l + 0.7))
    cr, sr, cp, sp = np.cos(roll), np.sin(roll), np.cos(pitch), np.sin(pitch)
    fwd_v = cp[:, None] * u + sp[:, None] * up  # pitch > 0: nose up
    up_p = -sp[:, None] * u + cp[:, None] * up
    left_v = cr[:, None] * left[None] - sr[:, None] * up_p
    up_v = sr[:, None] * left[None] + cr[:, None] * up_p
    frame = np.stack([fwd_v, left_v, up_v], axis=2)  # (n, 3, 3): columns fwd, left, up

    def body_point(off: tuple[float, float, float]) -> np.ndarray:
        return centre + frame @ np.asarray(off, float)

    hips = np.stack([body_point((hf, hl, -hd)), body_point((hf, -hl, -hd))], axis=1)

    # ---- feet ------------------------------------------------------------------------
    n = len(t)
    foot = np.zeros((n, 2, 3))
    stance = np.zeros((n, 2), bool)
    toe_curl = np.zeros((n, 2))
    stances: dict[str, list[tuple[int, int, np.ndarray]]] = {}
    for j, name in enumerate(FEET):
        iv = st[name]
        side = 1.0 if name == "left" else -1.0
        mids = iv.mean(axis=1)
        # foothold under the knee at mid-stance
        # foothold a little behind the knee at mid-stance
        holds_s = (along(mids) + hf + femur_fwd - 0.15 * a
                   + rng.normal(0.0, 0.006 * bird.size, len(mids)))
        holds_l = side * gp.foot_halfwidth + rng.normal(0.0, 0.004 * bird.size, len(mids))
        holds = origin + holds_s[:, None] * u + holds_l[:, None] * left
        k = np.searchsorted(iv[:, 0], t, side="right") - 1  # last strike at or before t
        if np.any(k < 0) or np.any(k >= len(iv) - 1):
            raise RuntimeError("stance schedule does not cover the walk")
        in_st = t <= iv[k, 1]
        stance[:, j] = in_st
        foot[in_st, j] = holds[k[in_st]]
        sw = ~in_st
        ks = k[sw]
        s = (t[sw] - iv[ks, 1]) / (iv[ks + 1, 0] - iv[ks, 1])
        e = _smoothstep(s)
        p = holds[ks] + e[:, None] * (holds[ks + 1] - holds[ks])
        p = p + (gp.step_height * np.sin(np.pi * s) ** 1.3)[:, None] * up
        foot[sw, j] = p
        toe_curl[sw, j] = np.sin(np.pi * s)
        stances[name] = []
        for (ts, tl), hold in zip(iv, holds, strict=True):
            f0 = int(np.ceil((ts - t_start) * fps - 1e-9))
            f1 = int(np.floor((tl - t_start) * fps + 1e-9))
            if f1 < f0 or f1 < 0 or f0 >= n:
                continue
            stances[name].append((f0, f1, hold))

    # ---- knees (femur swings with the leg's stride phase) and hocks (IK) ------------------
    knees = np.zeros((n, 2, 3))
    hocks = np.zeros((n, 2, 3))
    rom = np.deg2rad(gp.femur_rom_deg)
    for j, name in enumerate(FEET):
        iv = st[name]
        k = np.clip(np.searchsorted(iv[:, 0], t, side="right") - 1, 0, len(iv) - 2)
        ph = (t - iv[k, 0]) / (iv[k + 1, 0] - iv[k, 0])
        ang = np.deg2rad(28.0) + rom * np.cos(2 * np.pi * ph)  # femur lower at strike
        side = 1.0 if name == "left" else -1.0
        # the femur's angle is set in the world (the bird holds its thighs level while the
        # body pitches and rolls a little)
        fv = (np.cos(ang)[:, None] * u + (side * 0.15) * left - np.sin(ang)[:, None] * up)
        fv *= bird.femur / np.linalg.norm(fv, axis=1, keepdims=True)
        K = hips[:, j] + fv
        F = foot[:, j]
        D = F - K
        d = np.linalg.norm(D, axis=1)
        dmax, dmin = 0.985 * (a + b), abs(a - b) + 0.02 * (a + b)
        # if the foot is out of reach the knee follows it (the femur stretches a little)
        too_far = d > dmax
        K[too_far] = F[too_far] - D[too_far] * (dmax / d[too_far])[:, None]
        too_near = d < dmin
        K[too_near] = F[too_near] - D[too_near] * (dmin / d[too_near])[:, None]
        D = F - K
        d = np.linalg.norm(D, axis=1)
        Dh = D / d[:, None]
        # the hock bends backwards, and towards the midline with lameness
        gam = np.deg2rad(gp.hock_valgus_deg)
        bend = -np.cos(gam) * u - np.sin(gam) * side * left
        back = bend[None] - np.sum(bend[None] * Dh, axis=1, keepdims=True) * Dh
        back /= np.linalg.norm(back, axis=1, keepdims=True)
        cos_a = np.clip((a * a + d * d - b * b) / (2 * a * d), -1.0, 1.0)
        alpha = np.arccos(cos_a)
        H = K + a * (np.cos(alpha)[:, None] * Dh + np.sin(alpha)[:, None] * back)
        knees[:, j], hocks[:, j] = K, H

    # ---- toes ------------------------------------------------------------------------
    toes = np.zeros((n, 2, 4, 3))
    for j in range(2):
        side = 1.0 if j == 0 else -1.0
        for i, yaw in enumerate((-25.0, 0.0, 25.0, 180.0)):
            ya = np.deg2rad(yaw * side)
            ln = bird.toe * (0.45 if i == 3 else (1.0 if i == 1 else 0.8))
            dirv = np.cos(ya) * u + np.sin(ya) * left
            curl = toe_curl[:, j] * (0.9 if i < 3 else -0.5)  # toes droop during swing
            d3 = (np.cos(curl)[:, None] * dirv[None] - np.sin(curl)[:, None] * up[None]
                  ) if i < 3 else (np.cos(curl)[:, None] * dirv[None]
                                   + np.sin(np.abs(curl))[:, None] * up[None] * 0.5)
            toes[:, j, i] = foot[:, j] + ln * d3

    # ---- neck and head ---------------------------------------------------------------
    neck = body_point((a_b * np.cos(np.deg2rad(38.0)), 0.0, c_b * np.sin(np.deg2rad(38.0))))
    Ts = T / 2.0
    cyc = (t - t_start) / Ts
    kq = np.floor(cyc)
    phi = cyc - kq
    g = _smoothstep((phi - gp.head_hold) / (1.0 - gp.head_hold))
    # along-path head distance: still during the hold, then thrust to catch up
    base_s = along(t_start + kq * Ts)
    # (centred on the body: the head lags by up to speed * Ts * hold, so add half of that)
    head_s = base_s + gp.speed * Ts * g + gp.speed * Ts * gp.head_hold / 2.0
    neck_off = float(np.mean((neck - centre) @ u))
    reach = bird.neck_len * 0.55
    dev = head_s - s_body
    # (written so that the head is exactly still in the world while it holds)
    head_along = np.where(np.abs(dev) <= reach, head_s,
                          s_body + np.clip(dev, -reach, reach)) + (neck_off
                                                                   + bird.head_fwd * reach)
    dip = 0.012 * bird.size * 4.0 * g * (1.0 - g)  # the head dips a little as it thrusts
    head_h = centre_h + c_b * np.sin(np.deg2rad(38.0)) + bird.head_up * bird.neck_len - dip
    head = (origin + head_along[:, None] * u + (0.4 * sway)[:, None] * left
            + head_h[:, None] * up)
    head_dir = np.broadcast_to(np.cos(np.deg2rad(-15)) * u + np.sin(np.deg2rad(-15)) * up,
                               (n, 3)).copy()
    if pecks > 0:
        # pecking: the head goes down to the litter ahead of the feet and comes back up
        prng = np.random.default_rng(rng.integers(0, 2 ** 32))
        dur_t = float(t[-1] - t[0]) + 1.0 / fps
        n_pk = int(prng.poisson(pecks * dur_t))
        for t0 in np.sort(prng.uniform(t[0], t[-1], n_pk)):
            dur = float(prng.uniform(0.4, 0.9))
            wgt = np.where((t >= t0) & (t <= t0 + dur), np.sin(np.pi * (t - t0) / dur) ** 2, 0.0)
            if not wgt.any():
                continue
            target = (origin + (s_body + a_b * prng.uniform(0.9, 1.4))[:, None] * u
                      + (0.4 * sway)[:, None] * left
                      + (bird.head_radius * 1.2) * up)
            head = head + wgt[:, None] * (target - head)
            down = np.cos(np.deg2rad(-70)) * u + np.sin(np.deg2rad(-70)) * up
            hd = head_dir + wgt[:, None] * (down - head_dir)
            head_dir = hd / np.linalg.norm(hd, axis=1, keepdims=True)

    kp = np.zeros((n, 8, 3))
    kp[:, HEAD] = head
    kp[:, NECK] = neck
    kp[:, LKNEE], kp[:, RKNEE] = knees[:, 0], knees[:, 1]
    kp[:, LHOCK], kp[:, RHOCK] = hocks[:, 0], hocks[:, 1]
    kp[:, LFOOT], kp[:, RFOOT] = foot[:, 0], foot[:, 1]
    return Walk(t=t, keypoints=kp, hips=hips, toes=toes, body_centre=centre, body_frame=frame,
                head_dir=head_dir, stance=stance, stances=stances, path_origin=origin,
                path_dir=u, along=s_body)
