"""A report folder's manifest: every file it holds with its SHA-256, so that it verifies itself.

``MANIFEST.json`` is written last but for ``SHA256SUMS``: it lists every file of the folder
(path, SHA-256, size), the evidence each row analyzed (path and SHA-256 at the start and the
end of the batch), the tool and its decoders' versions, and the model file's SHA-256.
``ncl-forensics verify`` (``ncl_core.report.verification``) checks a folder against it. Signed with the
analyst's Ed25519 key (``ncl_core.report.signing``), ``MANIFEST.sig`` beside it ties all of that to
the key. ``SHA256SUMS`` (``sha256sum -c``) lists every file, the manifest and its signature
included; the manifest lists every file but those three.
"""

from __future__ import annotations

import json
import os
import platform
import stat
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from ncl_core.evidence.hashing import sha256_file
from ncl_core.fsutil import TEMP_NAME, atomic_write_bytes

MANIFEST_JSON = "MANIFEST.json"
MANIFEST_SIG = "MANIFEST.sig"
SHA256SUMS = "SHA256SUMS"
MANIFEST_FORMAT = 1
# Top-level files the manifest does not list: itself, its signature, and SHA256SUMS.
UNLISTED = frozenset({MANIFEST_JSON, MANIFEST_SIG, SHA256SUMS})
# The libraries whose versions decide what a report says (the decoders above all): their
# distribution and their module. The module's own ``__version__`` comes first: a PyInstaller
# bundle carries the modules without most distributions' metadata.
_LIBRARIES = (
    ("Pillow", "PIL"),
    ("pillow-heif", "pillow_heif"),
    ("numpy", "numpy"),
    ("opencv-python-headless", "cv2"),
    ("torch", "torch"),
    ("cryptography", "cryptography"),
)

__all__ = [
    "MANIFEST_FORMAT",
    "MANIFEST_JSON",
    "MANIFEST_SIG",
    "SHA256SUMS",
    "UNLISTED",
    "build_manifest",
    "manifest_bytes",
    "remove_temp_files",
    "report_files",
    "sha256sums_text",
    "write_manifest",
]


def remove_temp_files(out_dir: Path) -> None:
    """Temporary files left in the folder by an interrupted write are deleted."""
    for folder, _dirs, files in os.walk(out_dir, followlinks=False):
        for name in files:
            path = Path(folder) / name
            if TEMP_NAME.match(name) and not path.is_symlink():
                path.unlink(missing_ok=True)


def report_files(out_dir: Path, unlisted: frozenset[str] = UNLISTED) -> list[str]:
    """Relative paths (``/``-separated, sorted) of the regular files in the folder, but the
    top-level ``unlisted`` ones. Links are never followed (a report folder holds none)."""
    found: list[str] = []
    for folder, dirs, files in os.walk(out_dir, followlinks=False):
        dirs.sort()
        for name in files:
            path = Path(folder) / name
            rel = path.relative_to(out_dir).as_posix()
            if rel in unlisted:
                continue
            try:
                if stat.S_ISREG(path.lstat().st_mode):
                    found.append(rel)
            except FileNotFoundError:
                continue
    return sorted(found)


def _library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for dist, module_name in _LIBRARIES:
        module = sys.modules.get(module_name)  # never imported here only for its version
        found = getattr(module, "__version__", None) if module is not None else None
        if found is None:
            try:
                found = metadata.version(dist)
            except metadata.PackageNotFoundError:
                found = None
        versions[dist] = None if found is None else str(found)
    try:
        import pillow_heif

        versions["libheif"] = str(pillow_heif.libheif_version())
    except Exception:  # noqa: BLE001 - a version for the record, never a reason to fail
        versions["libheif"] = None
    return versions


def _evidence(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "index": row.get("index"),
        "path": row.get("path"),
        "sha256": row.get("sha256_start"),
        "sha256_end": row.get("sha256_end"),
        "hash_check": row.get("hash_check"),
        "status": row.get("status"),
    }


def build_manifest(
    out_dir: Path, header: dict[str, Any], rows: list[dict[str, Any]]
) -> dict[str, Any]:
    """The manifest of the folder as it is now (every file hashed), from the report's header
    and rows."""
    files = {}
    for rel in report_files(out_dir):
        path = out_dir / rel
        files[rel] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    return {
        "manifest_format": MANIFEST_FORMAT,
        "tool": {
            "name": header.get("app", "NCL Forensics"),
            "version": header.get("app_version"),
            "python": platform.python_version(),
            "libraries": _library_versions(),
        },
        "report": {
            key: header.get(key)
            for key in (
                "report_format",
                "status",
                "analyst",
                "case_id",
                "started_utc",
                "ended_utc",
                "n_files",
                "n_hash_mismatches",
            )
        },
        "model": {"id": header.get("model_id"), "sha256": header.get("model_sha256")},
        "files": files,
        "evidence": [_evidence(row) for row in rows],
    }


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    return (json.dumps(manifest, indent=1, ensure_ascii=False) + "\n").encode("utf-8")


def write_manifest(
    out_dir: Path,
    header: dict[str, Any],
    rows: list[dict[str, Any]],
    signing_key: Any = None,
) -> dict[str, Any]:
    """Write ``MANIFEST.json`` (and ``MANIFEST.sig`` with ``signing_key``, an Ed25519 private
    key); a signature of an earlier manifest (a resumed report) is removed first. Returns the
    manifest written (its ``files`` hold the hash of every file it lists)."""
    (out_dir / MANIFEST_SIG).unlink(missing_ok=True)
    remove_temp_files(out_dir)
    manifest = build_manifest(out_dir, header, rows)
    data = manifest_bytes(manifest)
    atomic_write_bytes(out_dir / MANIFEST_JSON, data)
    if signing_key is not None:
        write_signature(out_dir, data, signing_key, header.get("analyst"))
    return manifest


def write_signature(out_dir: Path, data: bytes, signing_key: Any, signer: str | None) -> None:
    from ncl_core.report.signing import sign_bytes

    atomic_write_bytes(out_dir / MANIFEST_SIG, sign_bytes(signing_key, data, MANIFEST_JSON, signer))


def sha256sums_text(out_dir: Path, known: dict[str, str] | None = None) -> str:
    """``sha256sum -c`` compatible lines for every file in the report folder but SHA256SUMS.

    ``known``: SHA-256 by file, just computed for the manifest (``MANIFEST.json``'s
    ``files``), so that a report's files are read and hashed once; the others are hashed
    here. Temporary files left by an interrupted write are deleted first.
    """
    remove_temp_files(out_dir)
    known = known or {}
    return "".join(
        f"{known.get(rel) or sha256_file(out_dir / rel)}  {rel}\n"
        for rel in report_files(out_dir, frozenset({SHA256SUMS}))
    )
