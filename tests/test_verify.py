"""Reports that verify themselves: the manifest, ``verify``, the signature, ``sign``, ``keygen``.

One small report is made per module (two JPEGs and a HEIC, the tiny model) and copied for each
test that changes it. The keys are made here. Evidence folders are hashed before and after:
nothing verifies by writing into them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

from ncl_core.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main
from ncl_core.inference.predictor import Predictor
from ncl_core.report import ReportOptions, run_batch
from ncl_core.report.manifest import MANIFEST_JSON, MANIFEST_SIG, SHA256SUMS, sha256sums_text
from ncl_core.report.signing import (
    PASSPHRASE_ENV,
    SigningKeyError,
    fingerprint,
    generate_key,
    load_private_key,
    load_public_key,
)
from ncl_core.report.verification import VerifyError, verify_report

from imaging import pattern, save


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with its SHA-256 (links and FIFOs as such)."""
    out = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_symlink():
            out[rel] = "link"
        elif path.is_file():
            out[rel] = sha(path)
    return out


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keys")
    analyst = generate_key(folder / "analyst.key", None)
    other = generate_key(folder / "other.key", None)
    return {"analyst": analyst, "other": other}


@pytest.fixture(scope="module")
def made(tmp_path_factory, tiny_model_path, keys):
    """(evidence folder, signed report, unsigned report, the evidence's hashes)."""
    root = tmp_path_factory.mktemp("made")
    evidence = root / "evidence"
    for i in range(2):
        save(evidence / f"img{i}.jpg", pattern(40, 56, seed=i), quality=90)
    Image.fromarray(pattern(40, 56, seed=5)).save(evidence / "IMG_0005.heic", quality=90)
    hashes = tree(evidence)
    predictor = Predictor.load(tiny_model_path, device="cpu")
    key = load_private_key(keys["analyst"][0])
    signed = ReportOptions(mode="resize", analyst="A. Analyst", case_id="C-1", signing_key=key)
    run_batch([evidence], predictor, root / "signed", signed)
    run_batch([evidence], predictor, root / "unsigned", ReportOptions(mode="resize"))
    assert tree(evidence) == hashes
    return evidence, root / "signed", root / "unsigned", hashes


@pytest.fixture()
def signed_copy(made, tmp_path):
    copy = tmp_path / "report"
    shutil.copytree(made[1], copy, symlinks=True)
    return copy


def run_cli(capsys, *args: str) -> tuple[int, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_the_manifest_lists_every_file_the_evidence_the_tool_and_the_model(made, tiny_model_path):
    evidence, report, _, hashes = made
    manifest = json.loads((report / MANIFEST_JSON).read_text("utf-8"))
    on_disk = tree(report)
    listed = manifest["files"]
    assert set(listed) == set(on_disk) - {MANIFEST_JSON, MANIFEST_SIG, SHA256SUMS}
    assert {"index.html", "report.pdf", "results.csv", "results.jsonl", "report.json"} <= set(
        listed
    )
    assert all(listed[name]["sha256"] == on_disk[name] for name in listed)
    # SHA256SUMS lists everything else, the manifest and its signature included.
    sums = dict(
        reversed(line.split("  ", 1)) for line in (report / SHA256SUMS).read_text().splitlines()
    )
    assert sums == {k: v for k, v in on_disk.items() if k != SHA256SUMS}

    from ncl_core import __version__

    assert manifest["tool"]["version"] == __version__
    assert manifest["tool"]["libraries"]["pillow-heif"] == "1.8.1"
    assert manifest["model"]["sha256"] == sha(tiny_model_path)
    assert manifest["report"]["analyst"] == "A. Analyst"
    recorded = {Path(e["path"]).name: e["sha256"] for e in manifest["evidence"]}
    assert recorded == hashes


def test_an_intact_report_verifies(made, capsys, keys):
    evidence, report, unsigned, hashes = made
    before = tree(report)
    result = verify_report(report, check_evidence=True)
    assert result.intact and result.problems == [] and result.signature.ok
    assert [e.status for e in result.evidence] == ["match"] * 3
    code, out = run_cli(capsys, "verify", str(report), "--evidence")
    assert code == EXIT_OK and "INTACT" in out and "evidence: 3 match" in out
    assert fingerprint(load_public_key(keys["analyst"][1])) in out
    code, out = run_cli(capsys, "verify", str(report), "--public-key", str(keys["analyst"][1]))
    assert code == EXIT_OK
    code, out = run_cli(capsys, "verify", str(unsigned))
    assert code == EXIT_OK and "signature: none" in out
    assert tree(report) == before and tree(evidence) == hashes  # verifying wrote nothing


def test_a_changed_results_csv_is_named(signed_copy, capsys):
    with open(signed_copy / "results.csv", "a", encoding="utf-8") as fh:
        fh.write('"9","forged.jpg"\n')
    code, out = run_cli(capsys, "verify", str(signed_copy))
    assert code == EXIT_FAILED
    assert "changed: results.csv" in out and "NOT INTACT: 1 problem(s)" in out


def test_each_missing_added_linked_or_special_file_is_named(signed_copy, made, capsys):
    (signed_copy / "images" / "00002" / "heatmap.png").unlink()
    (signed_copy / "report.pdf").unlink()
    (signed_copy / "notes.txt").write_text("added later\n")
    (signed_copy / "images" / "extra").mkdir()
    (signed_copy / "images" / "extra" / "x.png").write_bytes(b"png")
    os.symlink(made[0], signed_copy / "evidence-link")
    os.symlink(made[0] / "img0.jpg", signed_copy / "index2.html")
    os.mkfifo(signed_copy / "pipe")  # opening it to hash would block for good
    result = verify_report(signed_copy)
    lines = [p.line() for p in result.problems]
    assert lines == [
        "missing: images/00002/heatmap.png",
        "missing: report.pdf",
        "added: images/extra/x.png (not in the manifest)",
        "added: notes.txt (not in the manifest)",
        "link: evidence-link (a symbolic link; not followed)",
        "link: index2.html (a symbolic link; not followed)",
        "not a file: pipe (not a regular file; not read)",
    ]
    code, out = run_cli(capsys, "verify", str(signed_copy))
    assert code == EXIT_FAILED and all(line in out for line in lines)


def test_a_file_swapped_for_a_link_is_named_not_followed(signed_copy, made):
    target = signed_copy / "results.csv"
    target.unlink()
    os.symlink(made[1] / "results.csv", target)  # the same bytes, through a link
    lines = [p.line() for p in verify_report(signed_copy).problems]
    assert lines == ["link: results.csv (a symbolic link; not followed)"]


def test_an_edited_manifest_breaks_the_signature(signed_copy, capsys, keys):
    manifest = signed_copy / MANIFEST_JSON
    manifest.write_text(manifest.read_text("utf-8").replace("A. Analyst", "B. Analyst"), "utf-8")
    # A careful forger also writes SHA256SUMS again: the signature still tells.
    (signed_copy / SHA256SUMS).write_text(sha256sums_text(signed_copy), "utf-8")
    result = verify_report(signed_copy)
    assert result.problems == [] and result.signature.status == "invalid"
    assert not result.intact
    code, out = run_cli(capsys, "verify", str(signed_copy))
    assert code == EXIT_FAILED and "signature: invalid" in out and "bad signature" in out


def test_a_manifest_rewritten_with_another_key_is_caught_by_the_expected_key(
    signed_copy, capsys, keys
):
    other = load_private_key(keys["other"][0])
    from ncl_core.report.verification import sign_report

    sign_report(signed_copy, other)  # a forger re-signs with a key of their own
    assert verify_report(signed_copy).intact  # consistent, but by whom?
    code, out = run_cli(capsys, "verify", str(signed_copy), "--public-key", str(keys["analyst"][1]))
    assert code == EXIT_FAILED and "signature: wrong key" in out
    assert fingerprint(other.public_key()) in out


def test_an_unsigned_report_fails_when_a_signer_is_expected(made, capsys, keys):
    code, out = run_cli(capsys, "verify", str(made[2]), "--public-key", str(keys["analyst"][1]))
    assert code == EXIT_FAILED and "missing: MANIFEST.sig" in out


def test_sign_signs_an_intact_report_and_refuses_a_changed_one(made, tmp_path, capsys, keys):
    report = tmp_path / "report"
    shutil.copytree(made[2], report)
    code, out = run_cli(capsys, "sign", str(report), "--key", str(keys["analyst"][0]))
    assert code == EXIT_OK and "signature: valid" in out
    assert (report / MANIFEST_SIG).is_file()
    code, _ = run_cli(capsys, "verify", str(report), "--public-key", str(keys["analyst"][1]))
    assert code == EXIT_OK

    (report / "report.json").write_text("{}", "utf-8")
    before = tree(report)
    code, out = run_cli(capsys, "sign", str(report), "--key", str(keys["other"][0]))
    errors = [line for line in out.splitlines() if line.startswith("error")]
    assert code == EXIT_USAGE and len(errors) == 1
    assert "not signed" in errors[0] and "changed: report.json" in errors[0]
    assert tree(report) == before


def test_evidence_is_checked_where_it_still_is(made, tmp_path, tiny_model_path, capsys):
    evidence = tmp_path / "case"
    for i in range(3):
        save(evidence / f"p{i}.png", pattern(32, 40, seed=10 + i))
    predictor = Predictor.load(tiny_model_path, device="cpu")
    report = tmp_path / "report"
    run_batch([evidence], predictor, report, ReportOptions(mode="resize"))
    assert verify_report(report, check_evidence=True).intact
    # After the report: one file altered, one moved away.
    with open(evidence / "p0.png", "ab") as fh:
        fh.write(b"\x00")
    (evidence / "p1.png").rename(tmp_path / "p1.png")
    before = tree(evidence)
    result = verify_report(report, check_evidence=True)
    status = {Path(e.path).name: e.status for e in result.evidence}
    assert status == {"p0.png": "CHANGED", "p1.png": "not found", "p2.png": "match"}
    assert not result.intact and result.problems == []
    code, out = run_cli(capsys, "verify", str(report), "--evidence")
    assert code == EXIT_FAILED and "evidence CHANGED: " in out and "p0.png" in out
    assert "1 not found" in out
    assert run_cli(capsys, "verify", str(report))[0] == EXIT_OK  # the report itself is intact
    assert tree(evidence) == before


def test_a_crafted_manifest_cannot_reach_outside_the_folder(signed_copy):
    manifest = json.loads((signed_copy / MANIFEST_JSON).read_text("utf-8"))
    for bad in ("../evidence/img0.jpg", "/etc/passwd", "images/../../x", "a\\b"):
        manifest["files"][bad] = {"sha256": "0" * 64, "bytes": 1}
    (signed_copy / MANIFEST_JSON).write_text(json.dumps(manifest), "utf-8")
    result = verify_report(signed_copy)
    damaged = [p for p in result.problems if p.kind == "damaged"]
    assert len(damaged) == 4 and all(p.path == MANIFEST_JSON for p in damaged)
    assert not result.intact


@pytest.mark.parametrize(
    "content", [b"", b"{not json", b"[1, 2]", b'{"files": 3}', b"[" * 100_000 + b"]" * 100_000]
)
def test_a_damaged_manifest_is_named(signed_copy, content):
    (signed_copy / MANIFEST_JSON).write_bytes(content)
    result = verify_report(signed_copy)
    assert not result.intact
    assert any(p.kind == "damaged" and p.path == MANIFEST_JSON for p in result.problems)


def test_a_removed_manifest_is_missing_and_a_non_report_is_a_usage_error(
    signed_copy, tmp_path, capsys
):
    (signed_copy / MANIFEST_JSON).unlink()
    code, out = run_cli(capsys, "verify", str(signed_copy))
    assert code == EXIT_FAILED and "missing: MANIFEST.json" in out
    plain = tmp_path / "holiday"
    save(plain / "a.png", pattern(8, 8))
    code, out = run_cli(capsys, "verify", str(plain))
    assert code == EXIT_USAGE and "not a report folder" in out
    code, out = run_cli(capsys, "verify", str(tmp_path / "nowhere"))
    assert code == EXIT_USAGE and "not found" in out
    with pytest.raises(VerifyError):
        verify_report(plain / "a.png")


def test_a_resumed_report_gets_a_new_manifest_and_loses_the_old_signature(
    made, tmp_path, tiny_model_path, keys
):
    evidence = made[0]
    predictor = Predictor.load(tiny_model_path, device="cpu")
    report = tmp_path / "report"
    options = ReportOptions(mode="resize", signing_key=load_private_key(keys["analyst"][0]))
    calls = iter(range(100))
    partial = run_batch([evidence], predictor, report, options, cancel=lambda: next(calls) >= 1)
    assert not partial.complete and verify_report(report).intact
    unsigned = ReportOptions(mode="resize")
    done = run_batch([evidence], predictor, report, unsigned, resume=True)
    assert done.complete
    result = verify_report(report)
    assert result.intact and result.signature is None  # the old signature no longer applies
    assert not (report / MANIFEST_SIG).exists()
    assert len(json.loads((report / MANIFEST_JSON).read_text("utf-8"))["evidence"]) == 3


def test_keygen_needs_a_passphrase_or_says_none(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    code, out = run_cli(capsys, "keygen", str(tmp_path / "k"))
    assert code == EXIT_USAGE and PASSPHRASE_ENV in out and not (tmp_path / "k").exists()

    monkeypatch.setenv(PASSPHRASE_ENV, "correct horse")
    code, out = run_cli(capsys, "keygen", str(tmp_path / "k"))
    assert code == EXIT_OK and "fingerprint: SHA256:" in out
    assert b"ENCRYPTED PRIVATE KEY" in (tmp_path / "k").read_bytes()
    assert (tmp_path / "k").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "k.pub").read_text().startswith("ssh-ed25519 ")
    assert load_private_key(tmp_path / "k", ask=False)
    code, out = run_cli(capsys, "keygen", str(tmp_path / "k"))
    assert code == EXIT_USAGE and "already exists" in out  # never overwritten

    monkeypatch.setenv(PASSPHRASE_ENV, "wrong")
    with pytest.raises(SigningKeyError, match="wrong passphrase"):
        load_private_key(tmp_path / "k", ask=False)
    monkeypatch.delenv(PASSPHRASE_ENV)
    with pytest.raises(SigningKeyError, match="protected by a passphrase"):
        load_private_key(tmp_path / "k", ask=False)


def test_openssh_keys_work_and_other_kinds_are_refused(tmp_path, made, capsys):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    key = ed25519.Ed25519PrivateKey.generate()  # as ssh-keygen -t ed25519 writes it
    (tmp_path / "id_ed25519").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
    )
    (tmp_path / "id_ed25519.pub").write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
        + b" analyst@laptop\n"
    )
    report = tmp_path / "report"
    shutil.copytree(made[2], report)
    assert run_cli(capsys, "sign", str(report), "--key", str(tmp_path / "id_ed25519"))[0] == 0
    code, _ = run_cli(
        capsys, "verify", str(report), "--public-key", str(tmp_path / "id_ed25519.pub")
    )
    assert code == EXIT_OK

    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    (tmp_path / "rsa.pem").write_bytes(
        rsa_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (tmp_path / "junk.key").write_text("hello\n")
    for name, reason in (("rsa.pem", "RSA key"), ("junk.key", "not a private key file")):
        code, out = run_cli(capsys, "sign", str(report), "--key", str(tmp_path / name))
        lines = [line for line in out.splitlines() if line.startswith("error")]
        assert code == EXIT_USAGE and len(lines) == 1
        assert name in lines[0] and reason in lines[0] and "Ed25519" in lines[0]


def test_library_versions_need_no_distribution_metadata(monkeypatch):
    """A PyInstaller bundle carries modules without most distributions' metadata."""
    import PIL

    from ncl_core.report import manifest

    def no_metadata(name):
        raise manifest.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(manifest.metadata, "version", no_metadata)
    versions = manifest._library_versions()
    assert versions["Pillow"] == PIL.__version__ and versions["pillow-heif"] == "1.8.1"
    assert versions["libheif"] and versions["numpy"]
