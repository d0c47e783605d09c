"""The analyst's own Ed25519 key: made, read, and used to sign a report's manifest.

A report folder's ``MANIFEST.json`` (``ncl_core.report.manifest``) lists every file with its
SHA-256; signing it with the analyst's private key ties all of them to that key, for a chain
of custody. The signature goes into ``MANIFEST.sig`` beside it, with the public key, so that
anyone can check it; to know *who* signed, compare the key's fingerprint with the one the
analyst published (``ncl-forensics verify --public-key``).

Keys are ordinary files: a private key in PEM (PKCS #8, as ``ncl-forensics keygen`` or
``openssl genpkey -algorithm ed25519`` write it, encrypted or not) or OpenSSH format
(``ssh-keygen -t ed25519``); a public key as an OpenSSH line (``ssh-ed25519 AAAA…``) or PEM.
Fingerprints are OpenSSH's (``SHA256:…``, what ``ssh-keygen -lf KEY.pub`` prints). The
``cryptography`` package does the cryptography; it is imported only when a key is used.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ncl_core.errors import UserError

__all__ = [
    "PASSPHRASE_ENV",
    "SIGNATURE_FORMAT",
    "SigningKeyError",
    "SignatureCheck",
    "check_signature",
    "fingerprint",
    "generate_key",
    "load_private_key",
    "load_public_key",
    "sign_bytes",
]

# The passphrase of an encrypted private key, for scripts; in a terminal the tool asks.
PASSPHRASE_ENV = "NCL_FORENSICS_KEY_PASSPHRASE"
SIGNATURE_FORMAT = 1
_MAX_KEY_BYTES = 64 * 1024
_MAX_SIGNATURE_BYTES = 64 * 1024


class SigningKeyError(UserError):
    """A key file that cannot be used: not found, not Ed25519, wrong passphrase."""


def _read_key_file(path: Path) -> bytes:
    try:
        if not path.is_file():
            raise SigningKeyError(f"{path}: not a key file (not found, or not a regular file).")
        if path.stat().st_size > _MAX_KEY_BYTES:
            raise SigningKeyError(f"{path}: too large for a key file; give an Ed25519 key file.")
        return path.read_bytes()
    except OSError as exc:
        raise SigningKeyError(f"{path}: cannot read the key file ({exc.strerror or exc}).") from exc


def _passphrase(path: Path, ask: bool) -> bytes | None:
    value = os.environ.get(PASSPHRASE_ENV)
    if value:
        return value.encode("utf-8")
    if ask and sys.stdin is not None and sys.stdin.isatty():
        import getpass

        return getpass.getpass(f"passphrase of {path}: ").encode("utf-8")
    return None


def load_private_key(path: str | os.PathLike[str], ask: bool = True):
    """The Ed25519 private key in ``path`` (PEM or OpenSSH, encrypted or not).

    An encrypted key's passphrase comes from ``NCL_FORENSICS_KEY_PASSPHRASE``, else (``ask``
    and a terminal) from a prompt. ``SigningKeyError`` in one line otherwise.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = Path(os.fspath(path))
    data = _read_key_file(path)

    def load(password: bytes | None):
        if b"-----BEGIN OPENSSH PRIVATE KEY-----" in data:
            return serialization.load_ssh_private_key(data, password)
        if b"-----BEGIN" in data:
            return serialization.load_pem_private_key(data, password)
        return serialization.load_der_private_key(data, password)

    try:
        try:
            key = load(None)
        except TypeError:  # encrypted, and no password given
            password = _passphrase(path, ask)
            if password is None:
                raise SigningKeyError(
                    f"{path}: the key is protected by a passphrase; set {PASSPHRASE_ENV}, or "
                    "run the command in a terminal to be asked for it."
                ) from None
            key = load(password)
    except SigningKeyError:
        raise
    except ValueError as exc:
        text = str(exc)
        if "password" in text.lower() or "decrypt" in text.lower():
            raise SigningKeyError(f"{path}: wrong passphrase for this key; try again.") from None
        raise SigningKeyError(
            f"{path}: not a private key file this tool reads ({text.splitlines()[0][:120]}); "
            "give an Ed25519 key (ncl-forensics keygen, or ssh-keygen -t ed25519)."
        ) from None
    except Exception as exc:  # noqa: BLE001 - the parsers raise several types on bad files
        raise SigningKeyError(
            f"{path}: not a private key file this tool reads ({type(exc).__name__}); "
            "give an Ed25519 key (ncl-forensics keygen, or ssh-keygen -t ed25519)."
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(
            f"{path}: a {_key_kind(key)} key; reports are signed with Ed25519 keys "
            "(ncl-forensics keygen, or ssh-keygen -t ed25519)."
        )
    return key


def load_public_key(path: str | os.PathLike[str]):
    """The Ed25519 public key in ``path``: an OpenSSH line or PEM (a private key file also
    gives its public key, without asking for a passphrase where it is unencrypted)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

    path = Path(os.fspath(path))
    data = _read_key_file(path)
    if b"PRIVATE KEY-----" in data:
        key = load_private_key(path)
        return key.public_key()
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            key = serialization.load_pem_public_key(data)
        else:
            key = serialization.load_ssh_public_key(data.strip().splitlines()[0])
    except Exception as exc:  # noqa: BLE001
        raise SigningKeyError(
            f"{path}: not a public key file this tool reads ({type(exc).__name__}); give the "
            "signer's Ed25519 public key (an ssh-ed25519 line, or PEM)."
        ) from None
    if isinstance(key, Ed25519PrivateKey):  # pragma: no cover - excluded above
        key = key.public_key()
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError(f"{path}: a {_key_kind(key)} public key; an Ed25519 key is needed.")
    return key


def _key_kind(key: Any) -> str:
    name = type(key).__name__.replace("PrivateKey", "").replace("PublicKey", "")
    return name.lstrip("_") or "different"


def openssh_public_line(public_key, comment: str = "") -> str:
    from cryptography.hazmat.primitives import serialization

    line = public_key.public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode("ascii")
    return f"{line} {comment}".strip()


def fingerprint(public_key) -> str:
    """OpenSSH's fingerprint: ``SHA256:`` and the unpadded base64 of the key blob's hash."""
    blob = base64.b64decode(openssh_public_line(public_key).split()[1])
    digest = hashlib.sha256(blob).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def generate_key(
    path: str | os.PathLike[str], passphrase: bytes | None, comment: str = "ncl-forensics"
) -> tuple[Path, Path, str]:
    """A new Ed25519 key pair: ``path`` (private, PEM PKCS #8, mode 0600; encrypted when a
    passphrase is given) and ``path.pub`` (an OpenSSH line). Returns both paths and the
    fingerprint. An existing file is never overwritten."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private_path = Path(os.fspath(path))
    public_path = private_path.with_name(private_path.name + ".pub")
    for target in (private_path, public_path):
        if target.exists() or target.is_symlink():
            raise SigningKeyError(f"{target}: already exists; choose a new file name for the key.")
    key = Ed25519PrivateKey.generate()
    encryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    try:
        private_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        public_path.write_text(openssh_public_line(key.public_key(), comment) + "\n", "ascii")
    except OSError as exc:
        raise SigningKeyError(
            f"cannot write the key to {private_path} ({exc.strerror or exc})."
        ) from exc
    return private_path, public_path, fingerprint(key.public_key())


def sign_bytes(private_key, data: bytes, signed_file: str, signer: str | None = None) -> bytes:
    """The signature file's content (JSON) for ``data``, the bytes of ``signed_file``."""
    public = private_key.public_key()
    record = {
        "signature_format": SIGNATURE_FORMAT,
        "algorithm": "Ed25519",
        "signed_file": signed_file,
        "signed_sha256": hashlib.sha256(data).hexdigest(),
        "public_key": openssh_public_line(public),
        "fingerprint": fingerprint(public),
        "signer": signer,
        "signed_utc": datetime.now(timezone.utc)
        .isoformat(timespec="seconds")
        .replace("+00:00", "Z"),
        "signature": base64.b64encode(private_key.sign(data)).decode("ascii"),
    }
    return (json.dumps(record, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


@dataclass
class SignatureCheck:
    """What a signature file says of the bytes it signs.

    ``status``: ``valid``; ``invalid`` (the bytes or the signature changed); ``wrong key``
    (valid, but not by the expected key); ``unreadable`` (not a signature file).
    """

    status: str
    message: str
    fingerprint: str | None = None
    signer: str | None = None
    signed_utc: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "valid"


def check_signature(signature_file: bytes, data: bytes, expected=None) -> SignatureCheck:
    """Check ``signature_file`` (``sign_bytes``' output) against ``data``; with ``expected``
    (a public key) the signer must hold that key."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if len(signature_file) > _MAX_SIGNATURE_BYTES:
        return SignatureCheck("unreadable", "the signature file is too large to be one")
    try:
        record = json.loads(signature_file.decode("utf-8"))
        if not isinstance(record, dict) or record.get("algorithm") != "Ed25519":
            raise ValueError("not an Ed25519 signature record")
        signature = base64.b64decode(str(record["signature"]), validate=True)
        key = serialization.load_ssh_public_key(str(record["public_key"]).encode("ascii"))
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("its public key is not an Ed25519 key")
    except Exception as exc:  # noqa: BLE001 - a damaged or crafted file
        reason = str(exc) or type(exc).__name__
        return SignatureCheck("unreadable", f"the signature file cannot be read ({reason[:120]})")
    found = fingerprint(key)
    signer = record.get("signer") if isinstance(record.get("signer"), str) else None
    when = record.get("signed_utc") if isinstance(record.get("signed_utc"), str) else None
    try:
        key.verify(signature, data)
    except InvalidSignature:
        return SignatureCheck(
            "invalid",
            "the signature does not match the manifest: it was changed after signing",
            found,
            signer,
            when,
        )
    if expected is not None and fingerprint(expected) != found:
        return SignatureCheck(
            "wrong key",
            f"signed with key {found}, not with the expected key {fingerprint(expected)}",
            found,
            signer,
            when,
        )
    return SignatureCheck("valid", f"the manifest is as signed by key {found}", found, signer, when)
