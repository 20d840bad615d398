"""Atomic file writes: a crash or a bad value never leaves a half-written file where a good
one was, so data already produced is never lost."""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_text", "check_output_dir",
           "check_output_file", "output_dir", "file_digest"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike[str], writer: Callable[[Path], object]) -> Path:
    """Call ``writer(tmp_path)`` on a temporary file beside ``path``, then rename it over
    ``path``. The file gets the usual permissions (``0o666 & ~umask``), not ``mkstemp``'s
    private ``0o600``. On any error the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        writer(Path(tmp))
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return atomic_write(path, lambda p: p.write_bytes(data))


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically."""
    return atomic_write(path, lambda p: p.write_text(text, encoding=encoding))


def file_digest(path: str | os.PathLike[str]) -> str:
    """The first 16 hex digits of the SHA-256 of a file: which file it was, whatever its
    name, copies and modification times."""
    import hashlib

    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()[:16]


def jsonable(x: Any, ndigits: int | None = None) -> Any:
    """``x`` as strict JSON values: NaN and infinities become ``None`` (null), numpy
    scalars and arrays plain numbers and lists, tuples lists, dict keys strings, and
    bytes their length (binary payloads are not JSON); floats rounded to ``ndigits``
    when given. Use with ``json.dumps(..., allow_nan=False)``."""
    if isinstance(x, dict):
        return {str(k): jsonable(v, ndigits) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v, ndigits) for v in x]
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist(), ndigits)
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, (float, np.floating)):
        v = float(x)
        if not math.isfinite(v):
            return None
        return round(v, ndigits) if ndigits is not None else v
    if isinstance(x, (bytes, bytearray)):
        return len(x)
    return x


def check_output_dir(path: str | os.PathLike[str], what: str = "--out") -> Path:
    """Raise a clear ``ValueError`` naming ``what`` when ``path`` cannot be (or become) an
    output folder: it, or the nearest of its parents that exists, is a file or not
    writable. Creates nothing."""
    p = Path(path)
    for q in (p, *p.parents):
        if q.exists() or q.is_symlink():
            if not q.is_dir():
                raise ValueError(f"{what} {p}: {q} is a file, not a folder (expected a folder "
                                 f"for the outputs)")
            if not os.access(q, os.W_OK | os.X_OK):
                raise ValueError(f"{what} {p}: folder {q} is not writable (expected a writable "
                                 f"folder for the outputs)")
            break
    return p


def check_output_file(path: str | os.PathLike[str], what: str, *,
                      inputs: Sequence[str | os.PathLike[str]] = (),
                      overwrite: bool = True) -> Path:
    """Raise a clear one-line ``ValueError`` naming ``what`` (e.g. ``"--json x.json"``)
    when a file cannot be written at ``path``: it is a folder, one of ``inputs`` (it would
    destroy them), an existing file when ``overwrite`` is False, a read-only file, or its
    folder cannot be one (:func:`check_output_dir`) or cannot be written (a file is made
    there and removed at once). Call it before any work, so that a bad path fails at
    once."""
    p = Path(path)
    if p.is_dir() or str(path).endswith(("/", "\\")):
        raise ValueError(f"{what}: is a folder; expected a file name (e.g. {p / 'NAME'})")
    for i in inputs:
        if p.exists() and Path(i).exists() and os.path.samefile(p, i):
            raise ValueError(f"{what}: is an input of this command ({i}); give another "
                             f"file name for the output")
    if (p.exists() or p.is_symlink()) and not overwrite:
        raise ValueError(f"{what}: the file already exists; give another name, or "
                         f"--force to replace it")
    if p.exists() and not os.access(p, os.W_OK):
        raise ValueError(f"{what}: the file exists and is not writable")
    check_output_dir(p.parent, f"{what}: its folder")
    folder = p.parent if str(p.parent) else Path(".")
    if folder.is_dir():
        # permissions do not tell everything (root, immutable folders, read-only mounts):
        # a file made and removed at once does
        try:
            fd, probe = tempfile.mkstemp(prefix=".gaitlive-probe-", dir=folder)
            os.close(fd)
            os.unlink(probe)
        except OSError as e:
            raise ValueError(f"{what}: its folder {folder} cannot be written "
                             f"({e.strerror or e})") from None
    return p


def output_dir(path: str | os.PathLike[str], what: str = "--out") -> Path:
    """Create the output folder ``path`` (and its parents) and return it; a clear
    ``ValueError`` naming ``what`` when it cannot be one (see :func:`check_output_dir`;
    also a full or read-only disk)."""
    p = check_output_dir(path, what)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"{what} {p}: cannot create the output folder ({e.strerror or e})"
                         ) from None
    return p


def move_aside(files: Sequence[Path], parent: Path, prefix: str = "",
               when: float | None = None) -> Path:
    """Move ``files`` into a new folder ``parent/<prefix><YYYYmmdd-HHMMSS>`` (``when``, a
    POSIX time, default now; ``-2``, ``-3`` ... appended when it exists) and return it: an
    earlier run's results are kept, never overwritten."""
    import datetime

    stamp = datetime.datetime.fromtimestamp(time.time() if when is None else when)
    base = f"{prefix}{stamp:%Y%m%d-%H%M%S}"
    dest, n = parent / base, 1
    while dest.exists():
        n += 1
        dest = parent / f"{base}-{n}"
    dest.mkdir(parents=True)
    for f in files:
        os.replace(f, dest / f.name)
    return dest


def move_to_previous(files: Sequence[Path], folder: Path) -> Path | None:
    """Move those of ``files`` that exist to ``folder/previous/<time>/`` (the time the
    newest was written), so new results never overwrite earlier ones; returns that folder,
    or None when none exists."""
    old = [f for f in files if f.is_file()]
    if not old:
        return None
    return move_aside(old, folder / "previous", when=max(f.stat().st_mtime for f in old))
