"""A pinhole camera with radial (barrel) lens distortion for the synthetic corridor world.

World frame (metres): ``X`` runs along the corridor, ``Y`` across it, ``Z`` up; the floor
is ``Z = 0``. Camera frame: ``x`` right, ``y`` down, ``z`` forward (OpenCV convention).
A world point ``P`` has camera coordinates ``(x, y, z) = R @ (P - C)`` and undistorted
normalised coordinates ``(x / z, y / z)`` at radius ``r_u``. Lens distortion follows the
one-parameter division model ``r_u = r_d / (1 + k1 r_d^2)`` (``k1 <= 0``: barrel, as in
wide-angle barn cameras), which has a closed-form inverse, so projecting points
(:meth:`Camera.project`) and casting pixel rays (:meth:`Camera.pixel_rays`) are exact
inverses of each other. The pixel is ``u = f * x_d + cx``, ``v = f * y_d + cy``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["Camera", "side_camera", "rear_camera"]


@dataclass(frozen=True)
class Camera:
    """A pinhole camera (no lens distortion).

    Attributes
    ----------
    R
        ``(3, 3)`` world-to-camera rotation.
    C
        ``(3,)`` camera centre in world coordinates (metres).
    f
        Focal length in pixels (square pixels).
    width, height
        Image size in pixels; the principal point is the image centre.
    k1
        Division-model radial distortion (0: none; negative: barrel).
    """

    R: np.ndarray
    C: np.ndarray
    f: float
    width: int
    height: int
    k1: float = 0.0

    @property
    def cx(self) -> float:
        return (self.width - 1) / 2.0

    @property
    def cy(self) -> float:
        return (self.height - 1) / 2.0

    @property
    def K(self) -> np.ndarray:
        return np.array([[self.f, 0.0, self.cx], [0.0, self.f, self.cy], [0.0, 0.0, 1.0]])

    def to_camera(self, pts: np.ndarray) -> np.ndarray:
        """World points ``(..., 3)`` to camera coordinates ``(..., 3)``."""
        p = np.asarray(pts, dtype=np.float64)
        return (p - self.C) @ self.R.T

    def project(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Project world points ``(..., 3)``.

        Returns
        -------
        uv
            ``(..., 2)`` pixel coordinates (NaN for points behind the camera).
        depth
            ``(...)`` depth along the optical axis (metres).
        """
        pc = self.to_camera(pts)
        z = pc[..., 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            xu = pc[..., 0] / z
            yu = pc[..., 1] / z
            scale = self._distort_scale(np.hypot(xu, yu))
            u = self.f * xu * scale + self.cx
            v = self.f * yu * scale + self.cy
        uv = np.stack([u, v], axis=-1)
        uv[z <= 1e-6] = np.nan
        return uv, z

    def _distort_scale(self, ru: np.ndarray) -> np.ndarray:
        """``r_d / r_u`` for undistorted radii ``ru`` (division model, closed form)."""
        k = self.k1
        if k == 0.0:
            return np.ones_like(ru)
        with np.errstate(divide="ignore", invalid="ignore"):
            rd = (1.0 - np.sqrt(1.0 - 4.0 * k * ru * ru)) / (2.0 * k * ru)
            return np.where(ru > 1e-12, rd / ru, 1.0)

    def pixel_rays(self) -> np.ndarray:
        """World ray direction of every pixel, ``float64 (H, W, 3)``, unit length."""
        u, v = np.meshgrid(np.arange(self.width, dtype=np.float64),
                           np.arange(self.height, dtype=np.float64))
        xd, yd = (u - self.cx) / self.f, (v - self.cy) / self.f
        s = 1.0 / (1.0 + self.k1 * (xd * xd + yd * yd))
        dc = np.stack([xd * s, yd * s, np.ones_like(u)], axis=-1)
        d = dc @ self.R  # R^T applied to each row vector
        return d / np.linalg.norm(d, axis=-1, keepdims=True)

    def inside(self, uv: np.ndarray, margin: float = 0.0) -> np.ndarray:
        """Whether pixel coordinates ``(..., 2)`` fall inside the image."""
        u, v = uv[..., 0], uv[..., 1]
        with np.errstate(invalid="ignore"):
            return ((u >= -0.5 + margin) & (u <= self.width - 0.5 - margin)
                    & (v >= -0.5 + margin) & (v <= self.height - 0.5 - margin))

    def to_dict(self) -> dict:
        return {"R": self.R.tolist(), "C": self.C.tolist(), "f": self.f,
                "width": self.width, "height": self.height, "k1": self.k1,
                "model": "pinhole + division-model radial distortion r_u = r_d/(1+k1 r_d^2)"}


def look_at(C: np.ndarray, target: np.ndarray, roll_deg: float = 0.0) -> np.ndarray:
    """World-to-camera rotation for a camera at ``C`` looking at ``target`` (world up = +Z)."""
    fwd = np.asarray(target, float) - np.asarray(C, float)
    fwd /= np.linalg.norm(fwd)
    right = np.cross(fwd, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(fwd, right)
    R = np.stack([right, down, fwd])
    if roll_deg:
        a = np.deg2rad(roll_deg)
        Rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
        R = Rz @ R
    return R


def _k1(rng: np.random.Generator) -> float:
    """No distortion for 40 % of cameras, else mild to strong barrel distortion."""
    k = float(rng.uniform(-0.3, 0.0))
    return 0.0 if rng.random() < 0.4 else k


def _focal(width: int, hfov_deg: float) -> float:
    return (width / 2.0) / np.tan(np.deg2rad(hfov_deg) / 2.0)


def side_camera(rng: np.random.Generator, width: int, height: int, *, scale: float = 1.0,
                x_centre: float = 0.0) -> Camera:
    """A random side-view camera looking across the corridor (+Y) at the walking line Y=0.

    ``scale`` is the bird size (1 = a broiler): the camera stands further back for turkeys.
    """
    dist = rng.uniform(1.0, 1.7) * scale
    cam_h = rng.uniform(0.12, 0.55) * scale
    target_h = rng.uniform(0.10, 0.22) * scale
    C = np.array([x_centre + rng.uniform(-0.1, 0.1), -dist, cam_h])
    target = np.array([x_centre, 0.0, target_h])
    R = look_at(C, target, roll_deg=rng.normal(0.0, 1.5))
    hfov = rng.uniform(48.0, 66.0)
    return Camera(R=R, C=C, f=_focal(width, hfov), width=width, height=height,
                  k1=_k1(rng))


def rear_camera(rng: np.random.Generator, width: int, height: int, *, scale: float = 1.0
                ) -> Camera:
    """A random rear-view camera behind the start of the corridor, looking down it (+X)."""
    cam_h = rng.uniform(0.45, 0.9) * scale
    C = np.array([-rng.uniform(0.35, 0.6) * scale, rng.uniform(-0.05, 0.05), cam_h])
    target = np.array([rng.uniform(1.6, 2.4) * scale, rng.uniform(-0.05, 0.05), 0.0])
    R = look_at(C, target, roll_deg=rng.normal(0.0, 1.5))
    hfov = rng.uniform(42.0, 64.0)
    return Camera(R=R, C=C, f=_focal(width, hfov), width=width, height=height,
                  k1=_k1(rng))
