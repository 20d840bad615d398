"""The OpenCV (HighGUI) window of ``gaitlive annotate``: a thin layer over
:class:`gaitlive.offline.annotate.AnnotationSession`.

Mouse and key callbacks become session calls; :func:`render` draws the session's state (the
frame through the session's :class:`~gaitlive.offline.annotate.View`, the points, the
skeleton and a help line naming the bodypart to click next).
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

from gaitlive.offline.annotate import (
    KEY_HELP,
    LABELLED,
    SKIPPED,
    SOURCE_MODEL,
    SOURCE_MODEL_MOVED,
    AnnotationSession,
    View,
)

log = logging.getLogger(__name__)

__all__ = ["AnnotationWindow", "render", "key_name", "bodypart_colors", "BAR_H"]

BAR_H = 44  # help bar under the image, window pixels
FONT = cv2.FONT_HERSHEY_SIMPLEX

# cv2.waitKeyEx codes of special keys: Qt backend, GTK/X11 backend, Windows backend
_SPECIAL = {
    27: "esc", 8: "backspace", 9: "tab", 13: "enter", 10: "enter",
    0x1000000: "esc", 0x1000001: "tab", 0x1000003: "backspace", 0x1000004: "enter",
    0x1000012: "left", 0x1000014: "right",
    65361: "left", 65363: "right", 65288: "backspace", 65289: "tab", 65307: "esc",
    2424832: "left", 2555904: "right",
}


def key_name(code: int) -> str | None:
    """The session key name of a ``cv2.waitKeyEx`` code (``None`` for no/unknown key)."""
    if code is None or code < 0:
        return None
    if code in _SPECIAL:
        return _SPECIAL[code]
    low = code & 0xFFFF
    if low in _SPECIAL:
        return _SPECIAL[low]
    if 32 <= low < 127:
        return chr(low)
    return None


def bodypart_colors(n: int) -> list[tuple[int, int, int]]:
    """``n`` BGR colours along the rainbow colormap (DeepLabCut's default)."""
    ramp = np.linspace(0, 255, max(n, 1)).astype(np.uint8).reshape(-1, 1)
    cmap = cv2.applyColorMap(ramp, cv2.COLORMAP_RAINBOW).reshape(-1, 3)
    return [tuple(int(c) for c in row) for row in cmap[:n]]


def _text(img: np.ndarray, s: str, org: tuple[int, int], scale: float = 0.5,
          color: tuple[int, int, int] = (255, 255, 255), thick: int = 1) -> None:
    cv2.putText(img, s, org, FONT, scale, (0, 0, 0), thick + 2, cv2.LINE_AA)
    cv2.putText(img, s, org, FONT, scale, color, thick, cv2.LINE_AA)


def render(session: AnnotationSession, *, show_help: bool = False) -> np.ndarray:
    """Draw the session: the frame (zoomed/panned), points, skeleton and help bar.

    Returns
    -------
    numpy.ndarray
        BGR ``uint8 (canvas_h + BAR_H, canvas_w, 3)``.
    """
    # no view: the frame's image cannot be read (corrupt, deleted): an empty canvas that
    # says so, and the keys still work (n: the next frame)
    view = session.view or View(*session.canvas_size, *session.canvas_size)
    w, h = view.canvas_w, view.canvas_h
    canvas = np.zeros((h + BAR_H, w, 3), np.uint8)
    try:
        img = session.image()
        interp = cv2.INTER_NEAREST if view.scale >= 2 else cv2.INTER_LINEAR
        canvas[:h] = cv2.warpAffine(img, view.matrix(), (w, h), flags=interp,
                                    borderMode=cv2.BORDER_CONSTANT)
    except ValueError:
        _text(canvas, f"cannot read {session.current.path.name} (corrupt or missing image): "
                      f"n for the next frame", (10, 30))
    colors = bodypart_colors(len(session.bodyparts))
    i = session.frame
    pts = {}
    for k in range(len(session.bodyparts)):
        if session.status[i, k] == LABELLED:
            u, v = view.to_canvas(*session.xy[i, k])
            pts[k] = (int(round(u)), int(round(v)))
    names = session.bodyparts
    for a, b in session.skeleton:
        ka, kb = names.index(a), names.index(b)
        if ka in pts and kb in pts:
            cv2.line(canvas, pts[ka], pts[kb], (200, 200, 200), 1, cv2.LINE_AA)
    for k, p in pts.items():
        model = session.source[i, k] in (SOURCE_MODEL, SOURCE_MODEL_MOVED)
        if k == session.bodypart:
            cv2.circle(canvas, p, 10, (255, 255, 255), 2, cv2.LINE_AA)
        if model:  # predicted by the model: a ring, filled once the user moved it
            cv2.circle(canvas, p, 6, colors[k], 2, cv2.LINE_AA)
            if session.source[i, k] == SOURCE_MODEL_MOVED:
                cv2.circle(canvas, p, 3, colors[k], -1, cv2.LINE_AA)
        else:
            cv2.circle(canvas, p, 5, colors[k], -1, cv2.LINE_AA)
            cv2.circle(canvas, p, 5, (0, 0, 0), 1, cv2.LINE_AA)
        _text(canvas, names[k], (p[0] + 8, p[1] - 6), 0.4, colors[k])
    # help bar
    bar = canvas[h:]
    bar[:] = (40, 40, 40)
    bp = session.current_bodypart
    k = session.bodypart
    head = (f"{i + 1}/{session.n_frames} {session.current.key}  ")
    if bp is None:
        what = "frame done: n next, Tab/1-9 re-place"
        color = (140, 230, 140)
    else:
        what = f"click {bp} ({k + 1}/{len(names)})"
        color = colors[k]
    _text(bar, head, (6, 17), 0.45)
    (tw, _), _ = cv2.getTextSize(head, FONT, 0.45, 1)
    if bp is not None:  # a swatch of the bodypart's colour, then its name in white
        cv2.circle(bar, (12 + tw, 12), 7, color, -1, cv2.LINE_AA)
        cv2.circle(bar, (12 + tw, 12), 7, (255, 255, 255), 1, cv2.LINE_AA)
        tw += 24
        color = (255, 255, 255)
    _text(bar, what, (6 + tw, 18), 0.55, color, 2 if bp else 1)
    st = session.stats()
    skipped = [names[j] for j in range(len(names)) if session.status[i, j] == SKIPPED]
    line2 = (f"x skip  u undo  n/p frame  +/- zoom  s save  q quit  h help | "
             f"{st['frames_done']}/{st['frames']} done")
    if st["model_points"]:
        line2 += f", {st['clicks_saved']} clicks saved"
    if skipped:
        line2 += f" | skipped: {', '.join(skipped)}"
    if session.message:
        line2 += f" | {session.message}"
    _text(bar, line2, (6, 37), 0.4, (220, 220, 220))
    if show_help:
        y = 24
        overlay = canvas[:h].copy()
        cv2.rectangle(overlay, (0, 0), (min(w, 430), min(h, 24 + 18 * len(KEY_HELP))),
                      (0, 0, 0), -1)
        cv2.addWeighted(overlay, 0.7, canvas[:h], 0.3, 0, dst=canvas[:h])
        for keys, what_ in KEY_HELP:
            _text(canvas, keys, (8, y), 0.45, (120, 230, 255))
            _text(canvas, what_, (160, y), 0.45)
            y += 18
    return canvas


class AnnotationWindow:
    """A HighGUI window driving an :class:`AnnotationSession`.

    Parameters
    ----------
    session
        The session (its ``canvas_size`` sets the largest image size shown).
    title
        Window title.
    """

    def __init__(self, session: AnnotationSession, title: str = "gaitlive annotate") -> None:
        self.session = session
        self.title = title
        self.show_help = False
        self._pan_from: tuple[int, int] | None = None
        self._mouse: tuple[int, int] | None = None  # last mouse position on the image
        self._redraw = True
        self._qt = cv2.currentUIFramework().upper() == "QT"

    def _on_mouse(self, event: int, u: int, v: int, flags: int, _param: object) -> None:
        s = self.session
        view = s.view
        if view is None:
            return
        inside = 0 <= u < view.canvas_w and 0 <= v < view.canvas_h
        self._mouse = (u, v) if inside else None
        x, y = view.to_image(u, v)
        if event == cv2.EVENT_LBUTTONDOWN and inside:
            s.press(x, y)
        elif event == cv2.EVENT_MOUSEMOVE and flags & cv2.EVENT_FLAG_LBUTTON:
            s.move(x, y)
        elif event == cv2.EVENT_LBUTTONUP:
            s.release(x, y)
        elif event == cv2.EVENT_RBUTTONDOWN:
            self._pan_from = (u, v)
        elif event == cv2.EVENT_MOUSEMOVE and flags & cv2.EVENT_FLAG_RBUTTON and self._pan_from:
            view.pan(u - self._pan_from[0], v - self._pan_from[1])
            self._pan_from = (u, v)
        elif event == cv2.EVENT_RBUTTONUP:
            self._pan_from = None
        elif event == cv2.EVENT_MOUSEWHEEL and inside and not self._qt:
            # Qt's HighGUI zooms its own view on the wheel (mouse coordinates stay right);
            # zooming here as well would zoom twice
            view.zoom_at(1.25 if flags > 0 else 0.8, u, v)  # delta in the high 16 bits
        else:
            return
        self._redraw = True

    def run(self) -> dict[str, int]:
        """Show the window until the user quits (``q``/Esc or closing it); the labels are
        saved on every change and once more at the end.

        Returns
        -------
        dict
            :meth:`AnnotationSession.stats` at the end.
        """
        s = self.session
        flags = cv2.WINDOW_AUTOSIZE | cv2.WINDOW_KEEPRATIO | cv2.WINDOW_GUI_NORMAL
        cv2.namedWindow(self.title, flags)
        cv2.moveWindow(self.title, 0, 0)
        cv2.setMouseCallback(self.title, self._on_mouse)
        shown = None
        try:
            while True:
                state = (s.frame, s.bodypart, s.message, self.show_help)
                if self._redraw or state != shown:
                    cv2.imshow(self.title, render(s, show_help=self.show_help))
                    self._redraw, shown = False, state
                code = cv2.waitKeyEx(30)
                name = key_name(code)
                if code != -1:
                    log.debug("key code %#x -> %s", code, name)
                if name is not None:
                    self._redraw = True
                    if name == "h":
                        self.show_help = not self.show_help
                    elif name in ("+", "=", "-") and s.view is not None and self._mouse:
                        s.view.zoom_at(0.8 if name == "-" else 1.25, *self._mouse)
                    elif not s.key(name):
                        break
                if cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
                    break
        finally:
            s.save()
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)
        return s.stats()
