"""Showing the overlay in an OpenCV HighGUI window: is there a display, and a :class:`Window`
that opens on the first image and reports when the user quits."""

from __future__ import annotations

import os
import re

import cv2
import numpy as np

__all__ = ["Window", "display_available", "no_display_reason"]

_QUIT_KEYS = (ord("q"), ord("Q"), 27)  # q, Q, Esc


def display_available() -> bool:
    """Whether a window can be opened: on Linux, a Wayland display is set, or an X11 one
    whose server is there (a local ``:N`` display needs its socket ``/tmp/.X11-unix/XN``:
    Qt aborts the whole process when it cannot connect)."""
    if os.name == "nt" or os.uname().sysname == "Darwin":
        return True
    if os.environ.get("WAYLAND_DISPLAY"):
        return True
    display = os.environ.get("DISPLAY", "")
    m = re.fullmatch(r"(?:unix)?:(\d+)(?:\.\d+)?", display)
    if m:
        return _x_server_at(int(m.group(1)))
    return bool(display)  # host:N (ssh -X ...): cannot be checked without connecting


def _x_server_at(n: int) -> bool:
    """Whether a local X server answers for display ``:n`` where libxcb looks for it: the
    socket file ``/tmp/.X11-unix/Xn``, the abstract socket of that name (a container
    without the host's /tmp), TCP ``localhost:6000+n`` (WSL, some containers)."""
    import socket

    path = f"/tmp/.X11-unix/X{n}"
    if os.path.exists(path):
        return True
    for family, address in ((socket.AF_UNIX, "\0" + path), (socket.AF_INET,
                                                           ("127.0.0.1", 6000 + n))):
        try:
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.settimeout(0.2)
                s.connect(address)
                return True
        except OSError:
            continue
    return False


def no_display_reason() -> str:
    """Why :func:`display_available` is false, for an error message."""
    display = os.environ.get("DISPLAY", "")
    return f"no X server at DISPLAY={display}" if display else "DISPLAY is not set"


class Window:
    """An OpenCV window titled ``title``, opened (resizable, sized to the image) by the
    first :meth:`show`."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.is_open = False

    def show(self, image: np.ndarray) -> bool:
        """Show ``image`` and run the event loop for 1 ms; whether 'q' or Esc was pressed."""
        if not self.is_open:
            cv2.namedWindow(self.title, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO
                            | cv2.WINDOW_GUI_NORMAL)
            cv2.resizeWindow(self.title, image.shape[1], image.shape[0])
            self.is_open = True
        cv2.imshow(self.title, image)
        return self.quit_key_pressed()

    def quit_key_pressed(self) -> bool:
        """Run the event loop for 1 ms (when open); whether 'q' or Esc was pressed."""
        return self.is_open and (cv2.waitKey(1) & 0xFF) in _QUIT_KEYS

    def closed_by_user(self) -> bool:
        """Whether the open window was closed with its close button (raises ``cv2.error``
        when HighGUI no longer knows it)."""
        return self.is_open and cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1

    def close(self) -> None:
        """Close the window if it is open (never raises a ``cv2.error``)."""
        if not self.is_open:
            return
        self.is_open = False
        try:
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)
        except cv2.error:
            pass
