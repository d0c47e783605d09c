"""Check a report folder against its manifest: ``ncl-forensics verify REPORT_DIR``.

Every file listed in ``MANIFEST.json`` (``ncl_core.report.manifest``) is hashed again and
compared; a file that changed, is missing, or was added since is named. ``SHA256SUMS`` must
agree with the files too. ``MANIFEST.sig``, where present, must be a valid Ed25519 signature
of the manifest (with ``public_key``: by that key, and then it must be present). With
``check_evidence`` the evidence files are hashed again where they still are.

Nothing in the folder is trusted: the manifest's paths must stay inside it, links are named
and never followed, only regular files are opened (a FIFO would block), and nothing is
written, here or next to the evidence.
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ncl_core.errors import UserError
from ncl_core.report.manifest import (
    MANIFEST_JSON,
    MANIFEST_SIG,
    SHA256SUMS,
    UNLISTED,
    sha256sums_text,
    write_signature,
)
from ncl_core.report.signing import SignatureCheck, check_signature

__all__ = [
    "EvidenceCheck",
    "Problem",
    "VerifyError",
    "VerifyResult",
    "sign_report",
    "verify_report",
]

_MAX_MANIFEST_BYTES = 256 * 1024 * 1024
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20
# Files that make a folder a report of this tool, even with its manifest gone.
_REPORT_MARKERS = ("results.jsonl", "report.json", SHA256SUMS, MANIFEST_JSON)

# Problem kinds, in the order they are shown.
CHANGED, MISSING, ADDED, LINK, NOT_A_FILE, DAMAGED = (
    "changed",
    "missing",
    "added",
    "link",
    "not a file",
    "damaged",
)


class VerifyError(UserError):
    """The folder is not a report this tool can check (exit 2)."""


@dataclass(frozen=True)
class Problem:
    """One file that does not match: ``kind`` is changed, missing, added, link, not a file or
    damaged (the manifest itself, or one of its entries)."""

    kind: str
    path: str
    detail: str = ""

    def line(self) -> str:
        return f"{self.kind}: {self.path}" + (f" ({self.detail})" if self.detail else "")


@dataclass(frozen=True)
class EvidenceCheck:
    """An evidence file hashed again: ``match``, ``CHANGED``, ``not found`` (moved, or another
    machine: not checked), ``not a file`` or ``no hash recorded`` (it could not be read when
    the report was made)."""

    path: str
    status: str
    sha256: str | None = None


@dataclass
class VerifyResult:
    report_dir: Path
    manifest: dict[str, Any] | None
    n_files: int = 0  # files listed in the manifest
    problems: list[Problem] = field(default_factory=list)
    signature: SignatureCheck | None = None  # None: the report is not signed
    evidence: list[EvidenceCheck] | None = None  # None: the evidence was not checked

    @property
    def evidence_changed(self) -> list[EvidenceCheck]:
        return [e for e in self.evidence or [] if e.status == "CHANGED"]

    @property
    def intact(self) -> bool:
        signed_ok = self.signature is None or self.signature.ok
        return not self.problems and signed_ok and not self.evidence_changed


def _hash_regular(path: Path) -> str | None:
    """SHA-256 of a regular file, opened without following a link; None when it is not one."""
    import hashlib

    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            return None
        digest = hashlib.sha256()
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
        return digest.hexdigest()


def _safe_relative(name: Any) -> bool:
    """A path the manifest may name: relative, ``/``-separated, inside the folder."""
    if not isinstance(name, str) or not name or "\x00" in name or "\\" in name:
        return False
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return False
    return all(part not in ("", ".", "..") for part in name.split("/"))


def _walk(report_dir: Path) -> tuple[dict[str, str], list[Problem]]:
    """Every entry of the folder: regular files (relative path -> "file"), and problems for
    links and anything that is not a regular file. Links are never followed."""
    entries: dict[str, str] = {}
    problems: list[Problem] = []
    for folder, dirs, files in os.walk(report_dir, followlinks=False):
        base = Path(folder)
        for name in sorted(dirs):
            path = base / name
            if path.is_symlink():
                rel = path.relative_to(report_dir).as_posix()
                problems.append(Problem(LINK, rel, "a symbolic link; not followed"))
        for name in sorted(files):
            path = base / name
            rel = path.relative_to(report_dir).as_posix()
            try:
                mode = path.lstat().st_mode
            except OSError:
                continue
            if stat.S_ISLNK(mode):
                problems.append(Problem(LINK, rel, "a symbolic link; not followed"))
            elif not stat.S_ISREG(mode):
                problems.append(Problem(NOT_A_FILE, rel, "not a regular file; not read"))
            else:
                entries[rel] = "file"
    return entries, problems


def _load_manifest(report_dir: Path) -> tuple[dict[str, Any] | None, bytes | None, Problem | None]:
    path = report_dir / MANIFEST_JSON
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return None, None, Problem(MISSING, MANIFEST_JSON, "the report's list of its files")
    except OSError as exc:
        return None, None, Problem(DAMAGED, MANIFEST_JSON, f"cannot read it: {exc.strerror}")
    if not stat.S_ISREG(mode):
        return None, None, None  # named by the walk (a link, a FIFO)
    if path.stat().st_size > _MAX_MANIFEST_BYTES:
        return None, None, Problem(DAMAGED, MANIFEST_JSON, "far too large to be a manifest")
    data = path.read_bytes()
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        return None, data, Problem(DAMAGED, MANIFEST_JSON, f"not valid JSON: {reason}")
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        return None, data, Problem(DAMAGED, MANIFEST_JSON, "not a manifest of this tool")
    return manifest, data, None


def _read_sums(report_dir: Path) -> dict[str, str] | None:
    path = report_dir / SHA256SUMS
    try:
        if not stat.S_ISREG(path.lstat().st_mode) or path.stat().st_size > _MAX_MANIFEST_BYTES:
            return None
        text = path.read_text("utf-8", "replace")
    except OSError:
        return None
    sums: dict[str, str] = {}
    for line in text.splitlines():
        digest, sep, name = line.partition("  ")
        if sep:
            sums[name.lstrip("*")] = digest.lower()
    return sums


def verify_report(
    report_dir: str | os.PathLike[str],
    check_evidence: bool = False,
    public_key: Any = None,
) -> VerifyResult:
    """Check ``report_dir`` against its manifest (see the module's docstring).

    ``public_key`` (an Ed25519 public key, ``ncl_core.report.signing.load_public_key``): the report
    must be signed by it. Raises ``VerifyError`` when the folder is not a report folder.
    """
    report_dir = Path(os.fspath(report_dir))
    if not report_dir.is_dir():
        what = "not found" if not report_dir.exists() else "not a folder"
        raise VerifyError(f"{report_dir}: {what}; give the folder a report was written to.")
    if not any((report_dir / name).exists() for name in _REPORT_MARKERS):
        raise VerifyError(
            f"{report_dir}: not a report folder of this tool (no {MANIFEST_JSON}, "
            f"{SHA256SUMS} or results.jsonl); give the folder a report was written to."
        )
    entries, problems = _walk(report_dir)
    manifest, manifest_data, trouble = _load_manifest(report_dir)
    result = VerifyResult(report_dir, manifest)
    if trouble is not None:
        problems.append(trouble)
    hashes: dict[str, str | None] = {}

    def digest(rel: str) -> str | None:
        if rel not in hashes:
            hashes[rel] = _hash_regular(report_dir / rel) if entries.get(rel) else None
        return hashes[rel]

    listed: dict[str, Any] = manifest["files"] if manifest else {}
    result.n_files = len(listed)
    for rel, record in sorted(listed.items()):
        expected = record.get("sha256") if isinstance(record, dict) else None
        if not _safe_relative(rel) or rel in UNLISTED or not _HEX64.match(str(expected)):
            problems.append(Problem(DAMAGED, MANIFEST_JSON, f"a bad entry: {rel!r}"[:200]))
            continue
        if rel not in entries:
            if not (report_dir / rel).is_symlink():  # links are named by the walk
                problems.append(Problem(MISSING, rel))
            continue
        if digest(rel) != expected:
            problems.append(Problem(CHANGED, rel, "its SHA-256 differs from the manifest's"))
    if manifest is not None:
        for rel in sorted(set(entries) - set(listed) - UNLISTED):
            problems.append(Problem(ADDED, rel, "not in the manifest"))

    # SHA256SUMS: it lists the manifest and its signature too, and must agree with the files.
    sums = _read_sums(report_dir)
    if sums is None:
        if SHA256SUMS not in entries and not (report_dir / SHA256SUMS).is_symlink():
            problems.append(Problem(MISSING, SHA256SUMS))
    else:
        for rel, value in sorted(sums.items()):
            if rel in (MANIFEST_JSON, MANIFEST_SIG) and rel in entries:
                if digest(rel) != value:
                    problems.append(
                        Problem(CHANGED, rel, f"its SHA-256 differs from {SHA256SUMS}'s")
                    )
            elif (
                rel in listed
                and isinstance(listed[rel], dict)
                and listed[rel].get("sha256") != value
            ):
                problems.append(
                    Problem(CHANGED, SHA256SUMS, f"its line for {rel} differs from the manifest")
                )
        for rel in (MANIFEST_JSON, MANIFEST_SIG):
            if rel in entries and rel not in sums:
                problems.append(Problem(CHANGED, SHA256SUMS, f"it does not list {rel}"))

    # The signature: of the manifest's exact bytes.
    if MANIFEST_SIG in entries and manifest_data is not None:
        signature = (report_dir / MANIFEST_SIG).read_bytes()[: 64 * 1024 + 1]
        result.signature = check_signature(signature, manifest_data, public_key)
    elif public_key is not None:
        result.signature = SignatureCheck(
            "absent", f"the report is not signed ({MANIFEST_SIG} is missing)"
        )
        if MANIFEST_SIG not in entries and not (report_dir / MANIFEST_SIG).is_symlink():
            problems.append(Problem(MISSING, MANIFEST_SIG, "the report is not signed"))

    if check_evidence and manifest is not None:
        result.evidence = _check_evidence(manifest.get("evidence"))
    order = [CHANGED, MISSING, ADDED, LINK, NOT_A_FILE, DAMAGED]
    result.problems = sorted(dict.fromkeys(problems), key=lambda p: (order.index(p.kind), p.path))
    return result


def _check_evidence(records: Any) -> list[EvidenceCheck]:
    checks: list[EvidenceCheck] = []
    for record in records if isinstance(records, list) else []:
        if not isinstance(record, dict) or not isinstance(record.get("path"), str):
            continue
        path, expected = record["path"], record.get("sha256")
        if not isinstance(expected, str) or not _HEX64.match(expected):
            checks.append(EvidenceCheck(path, "no hash recorded"))
            continue
        where = Path(path)
        try:
            mode = where.stat().st_mode  # evidence may be reached through a link, as scanned
        except (OSError, ValueError):
            checks.append(EvidenceCheck(path, "not found", expected))
            continue
        if not stat.S_ISREG(mode):
            checks.append(EvidenceCheck(path, "not a file", expected))
            continue
        try:
            found = _hash_file_following(where)
        except OSError:
            checks.append(EvidenceCheck(path, "not found", expected))
            continue
        checks.append(EvidenceCheck(path, "match" if found == expected else "CHANGED", found))
    return checks


def _hash_file_following(path: Path) -> str | None:
    import hashlib

    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            return None
        h = hashlib.sha256()
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
        return h.hexdigest()


def sign_report(report_dir: str | os.PathLike[str], private_key: Any) -> VerifyResult:
    """Sign a finished report (say one exported from the app) with ``private_key``.

    Only an intact report is signed: signing a changed one would vouch for the change. An
    earlier signature is replaced. ``SHA256SUMS`` is written again to list the signature.
    Returns the check made after signing.
    """
    report_dir = Path(os.fspath(report_dir))
    before = verify_report(report_dir)
    problems = [p for p in before.problems if p.path != MANIFEST_SIG]
    if problems or before.manifest is None:
        listed = "; ".join(p.line() for p in problems[:5]) or "no manifest"
        raise VerifyError(
            f"{report_dir}: not signed, the report does not match its manifest ({listed}); "
            "sign only a report that verifies."
        )
    from ncl_core.fsutil import atomic_write_bytes

    data = (report_dir / MANIFEST_JSON).read_bytes()
    analyst = (before.manifest.get("report") or {}).get("analyst")
    write_signature(report_dir, data, private_key, analyst if isinstance(analyst, str) else None)
    atomic_write_bytes(report_dir / SHA256SUMS, sha256sums_text(report_dir).encode("utf-8"))
    return verify_report(report_dir)
