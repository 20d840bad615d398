"""CURVE key pairs and socket security (``zmq.auth``).

The publisher is a CURVE *server*: its secret key is ``<keys_dir>/server.key_secret`` and it
accepts only clients whose public keys (``*.key`` files) are in the allow-list folder,
checked by a :class:`zmq.auth.thread.ThreadAuthenticator` sharing the sockets' context.
Subscribers are CURVE *clients*: they need the server's public key (``server.key``) and
their own certificate (``<name>.key_secret``).

Key files are the ZeroMQ certificate format written by :func:`zmq.auth.create_certificates`.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

log = logging.getLogger(__name__)

__all__ = ["KeyFileError", "KeyPair", "create_keypair", "load_public_key", "load_secret_cert",
           "ServerSecurity", "ClientSecurity", "start_authenticator"]


class KeyFileError(ValueError):
    """A key file is missing or is not a ZeroMQ certificate."""


@dataclass(frozen=True)
class KeyPair:
    """Paths of a certificate pair written by :func:`create_keypair`."""

    public: Path
    secret: Path
    allowed: Path | None = None


def create_keypair(out_dir: str | Path, name: str = "server", *, allow_dir: str | Path | None = None,
                   overwrite: bool = False) -> KeyPair:
    """Create ``<out_dir>/<name>.key`` and ``<name>.key_secret`` (Z85 CURVE certificates).

    Parameters
    ----------
    out_dir
        Folder for the pair; created when missing.
    name
        Certificate name (``server`` for a publisher, e.g. ``farm1`` for a subscriber).
    allow_dir
        When given, also copy the public key there (the publisher's allow-list folder).
    overwrite
        Replace an existing pair; otherwise an existing pair is an error (a publisher's
        subscribers would all be locked out by a new server key).
    """
    if not name or "/" in name or name.startswith("."):
        raise KeyFileError(f"key name: expected a plain file name, got {name!r}")
    out = Path(out_dir)
    pub, sec = out / f"{name}.key", out / f"{name}.key_secret"
    if not overwrite and (pub.exists() or sec.exists()):
        raise KeyFileError(f"{pub}: a key pair named {name!r} already exists "
                        f"(use --force to replace it)")
    if allow_dir is not None and not overwrite and (Path(allow_dir) / pub.name).exists():
        # another subscriber's (or the publisher's own) public key of that name: replacing
        # it would lock that one out
        raise KeyFileError(f"{Path(allow_dir) / pub.name}: the allow-list folder already holds "
                           f"a public key named {name!r} (choose another --name, or use "
                           f"--force to replace it)")
    out.mkdir(parents=True, exist_ok=True)
    p, s = zmq.auth.create_certificates(out, name)
    sec_path = Path(s)
    sec_path.chmod(0o600)
    allowed = None
    if allow_dir is not None:
        ad = Path(allow_dir)
        ad.mkdir(parents=True, exist_ok=True)
        allowed = ad / Path(p).name
        shutil.copyfile(p, allowed)
    return KeyPair(Path(p), sec_path, allowed)


def load_public_key(path: str | Path) -> bytes:
    """The public key (Z85) of a certificate file (``.key`` or ``.key_secret``)."""
    pub, _ = _load(path)
    return pub


def load_secret_cert(path: str | Path) -> tuple[bytes, bytes]:
    """``(public, secret)`` of a ``.key_secret`` certificate file."""
    pub, sec = _load(path)
    if not sec:
        raise KeyFileError(f"{path}: expected a secret certificate (.key_secret) with a "
                        f"secret-key, this file has only a public key")
    return pub, sec


def _load(path: str | Path) -> tuple[bytes, bytes | None]:
    p = Path(path)
    if not p.is_file():
        raise KeyFileError(f"{p}: key file not found (create one with `gaitlive keys`)")
    try:
        pub, sec = zmq.auth.load_certificate(p)
    except (ValueError, OSError) as e:
        raise KeyFileError(f"{p}: not a ZeroMQ certificate ({e})") from None
    if pub is None or len(pub) != 40:
        raise KeyFileError(f"{p}: expected a 40-character Z85 public-key")
    return pub, sec


@dataclass(frozen=True)
class ServerSecurity:
    """CURVE server settings: the server certificate and the allow-list folder."""

    public: bytes
    secret: bytes
    allow_dir: Path

    @classmethod
    def from_dirs(cls, keys_dir: str | Path, allow_dir: str | Path) -> ServerSecurity:
        """Load ``<keys_dir>/server.key_secret``; check the allow-list folder exists."""
        pub, sec = load_secret_cert(Path(keys_dir) / "server.key_secret")
        ad = Path(allow_dir)
        if not ad.is_dir():
            raise KeyFileError(f"{ad}: allow-list folder not found (put subscribers' .key "
                            f"files there, e.g. `gaitlive keys --name farm1 --allow {ad}`)")
        if not any(ad.glob("*.key")):
            log.warning("CURVE allow-list %s is empty: no subscriber will be accepted", ad)
        return cls(pub, sec, ad)

    def apply(self, sock: zmq.Socket) -> None:
        """Make ``sock`` a CURVE server (call before bind)."""
        sock.curve_secretkey = self.secret
        sock.curve_publickey = self.public
        sock.curve_server = True


@dataclass(frozen=True)
class ClientSecurity:
    """CURVE client settings: the server's public key and our own certificate."""

    server_public: bytes
    public: bytes
    secret: bytes

    @classmethod
    def from_files(cls, server_key: str | Path, client_cert: str | Path) -> ClientSecurity:
        """``server_key``: the server's ``server.key``; ``client_cert``: our ``.key_secret``."""
        server_public = load_public_key(server_key)
        pub, sec = load_secret_cert(client_cert)
        return cls(server_public, pub, sec)

    def apply(self, sock: zmq.Socket) -> None:
        """Make ``sock`` a CURVE client (call before connect)."""
        sock.curve_serverkey = self.server_public
        sock.curve_publickey = self.public
        sock.curve_secretkey = self.secret


def start_authenticator(ctx: zmq.Context, allow_dir: str | Path) -> ThreadAuthenticator:
    """Start a ZAP authenticator on ``ctx`` that accepts the CURVE public keys in
    ``allow_dir`` (re-read when the folder changes is not supported: restart to reload)."""
    auth = ThreadAuthenticator(ctx, log=logging.getLogger(__name__ + ".auth"))
    auth.start()
    auth.configure_curve(domain="*", location=str(allow_dir))
    return auth
