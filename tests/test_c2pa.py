"""Content Credentials (C2PA): images signed here, at test time, with a throw-away certificate
chain, then read back through ``ncl_core.evidence.provenance`` and the ``c2pa`` view."""

from __future__ import annotations

import csv
import datetime
import io
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from PIL import Image

from ncl_core.evidence import provenance
from ncl_core.evidence.image import Evidence
from ncl_core.evidence.provenance import credentials_from_store, read_credentials
from ncl_core.views import VIEWS, compute_view, compute_views, parse_names

from imaging import pattern

ROOT = Path(__file__).resolve().parents[1]
AI = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
SIGNER_CN, SIGNER_ORG = "Test Signer", "NCL Test Lab"


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, SIGNER_ORG),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        ]
    )


def _key_usage(sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=not sign,
        crl_sign=not sign,
        encipher_only=False,
        decipher_only=False,
    )


@pytest.fixture(scope="module")
def signer():
    return make_signer()


def make_signer():
    """An ES256 signer: a CA, and a leaf for signing (digitalSignature, emailProtection), both
    valid from yesterday for a month. C2PA needs the chain, not a trust anchor: without one the
    signature reads valid but untrusted."""
    c2pa = provenance.library()
    now = datetime.datetime.now(datetime.timezone.utc)
    valid = (now - datetime.timedelta(days=1), now + datetime.timedelta(days=30))
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())

    def cert(subject, issuer, public, signing_key, leaf):
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(valid[0])
            .not_valid_after(valid[1])
            .add_extension(x509.BasicConstraints(ca=not leaf, path_length=None), critical=True)
            .add_extension(_key_usage(sign=leaf), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        )
        if leaf:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
            ).add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
        return builder.sign(signing_key, hashes.SHA256())

    ca = cert(_name("Test Root CA"), _name("Test Root CA"), ca_key.public_key(), ca_key, False)
    leaf = cert(_name(SIGNER_CN), ca.subject, key.public_key(), ca_key, True)
    chain = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (leaf, ca))
    pem_key = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    info = c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, chain, pem_key, None)
    return c2pa.Signer.from_info(info)


def manifest_of(*actions: dict, title: str = "photo.jpg") -> dict:
    return {
        "claim_generator_info": [{"name": "Test Generator", "version": "1.2"}],
        "title": title,
        "assertions": [{"label": "c2pa.actions", "data": {"actions": list(actions)}}],
    }


CREATED_BY_AI = {"action": "c2pa.created", "digitalSourceType": AI}
EDITED = {"action": "c2pa.edited", "softwareAgent": {"name": "Editor", "version": "9"}}


def sign(signer, data: bytes, manifest: dict, mime: str = "image/jpeg", ingredient=None):
    """``data`` with a manifest embedded and signed (the Builder checks the manifest first)."""
    c2pa = provenance.library()
    with c2pa.Builder(manifest) as builder:
        if ingredient is not None:
            builder.add_ingredient(*ingredient)
        out = io.BytesIO()
        builder.sign(signer, mime, io.BytesIO(data), out)
    return out.getvalue()


def jpeg_bytes(image: np.ndarray, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _segments(data: bytes) -> list[tuple[int, int, int]]:
    """(marker, start, end) of a JPEG's header segments, up to and with the start of scan."""
    out, pos = [], 2
    while pos + 4 <= len(data):
        marker = data[pos + 1]
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        out.append((marker, pos, pos + 2 + length))
        if marker == 0xDA:
            break
        pos += 2 + length
    return out


def _scan_start(data: bytes) -> int:
    return next(start for marker, start, _ in _segments(data) if marker == 0xDA)


@pytest.fixture(scope="module")
def host() -> np.ndarray:
    return pattern(96, 128, seed=5, noise=8)


@pytest.fixture(scope="module")
def signed(signer, host) -> bytes:
    return sign(signer, jpeg_bytes(host), manifest_of(CREATED_BY_AI, EDITED))


def test_a_signed_jpeg_shows_its_signer_generator_and_actions(signed):
    found = read_credentials(signed, "JPEG")

    assert found.present and found.valid and found.status == provenance.VALID
    assert (found.signer, found.issuer) == (SIGNER_CN, SIGNER_ORG)
    assert found.claim_generator == "Test Generator 1.2"
    assert [a.action for a in found.actions] == ["c2pa.created", "c2pa.edited"]
    assert found.actions[0].ai and found.ai_generated
    assert found.actions[1].software == "Editor 9"
    assert found.problems == () and not found.mismatch
    assert "signingCredential.untrusted" in found.codes  # no trust list: valid, not trusted
    lines = found.lines()
    assert f"Signer: {SIGNER_CN}" in lines and "Made with: Test Generator 1.2" in lines
    assert "Action: created, AI-generated (trained algorithmic media)" in lines
    assert "Action: edited, with Editor 9" in lines

    view = compute_view("c2pa", Evidence.from_bytes(signed, "photo.jpg"))
    assert view.applicable and view.map is None
    assert view.summary.startswith(f"Content Credentials valid; signed by {SIGNER_CN}")
    assert "AI-GENERATED" in view.summary and "actions: created, edited" in view.summary
    assert view.details["lines"] == lines and view.details["valid"] is True
    json.dumps(view.record())  # JSON-ready as a view's record


def test_pixels_changed_after_signing_no_longer_match(signer, host, signed):
    # The same encoder, size and quality give the same header: the altered picture's scan
    # data spliced behind the signed file's header and manifest is a valid JPEG.
    altered = host.copy()
    altered[30:60, 40:90] = 255 - altered[30:60, 40:90]
    plain, changed = jpeg_bytes(host), jpeg_bytes(altered)
    assert plain[: _scan_start(plain)] == changed[: _scan_start(changed)]
    tampered = signed[: _scan_start(signed)] + changed[_scan_start(changed) :]
    evidence = Evidence.from_bytes(tampered, "tampered.jpg")
    assert np.array_equal(evidence.image, np.asarray(Image.open(io.BytesIO(changed))))

    found = read_credentials(tampered, "JPEG")

    assert found.present and not found.valid and found.status == provenance.INVALID
    assert found.mismatch and "assertion.dataHash.mismatch" in found.codes
    assert found.signer == SIGNER_CN  # who signed is still shown
    view = compute_view("c2pa", evidence)
    assert view.summary.startswith("Content Credentials DO NOT MATCH this file")
    assert "Status: DO NOT MATCH this file" in view.details["lines"]
    assert any("changed after signing" in line for line in view.details["lines"])


def test_a_plain_jpeg_has_no_credentials_cheaply(host):
    data = jpeg_bytes(pattern(1200, 1600, seed=1, noise=8))
    read_credentials(data, "JPEG")  # the library loaded
    start = time.perf_counter()
    found = read_credentials(data, "JPEG")
    assert time.perf_counter() - start < 1.0
    assert found.status == provenance.NONE and not found.present and not found.valid
    view = compute_view("c2pa", Evidence.from_bytes(jpeg_bytes(host), "plain.jpg"))
    assert view.applicable and view.summary == "no Content Credentials"
    assert view.details["lines"] == ["no Content Credentials"]


def test_files_that_cannot_carry_credentials_are_not_applicable(host):
    buf = io.BytesIO()
    Image.fromarray(host).save(buf, "BMP")
    bmp = compute_view("c2pa", Evidence.from_bytes(buf.getvalue(), "a.bmp"))
    assert not bmp.applicable and "BMP files cannot carry Content Credentials" in bmp.summary
    bare = compute_view("c2pa", host)
    assert not bare.applicable and "no file" in bare.summary


def _app11(data: bytes) -> list[tuple[int, int]]:
    return [(start, end) for marker, start, end in _segments(data) if marker == 0xEB]


def _flip_middle(data: bytes) -> bytes:
    start, end = _app11(data)[0]
    middle = (start + end) // 2
    noise = np.random.default_rng(0).integers(0, 256, 256, dtype=np.uint8).tobytes()
    return data[:middle] + noise + data[middle + 256 :]


def _zero_manifest(data: bytes) -> bytes:
    start, end = _app11(data)[0]
    return data[: start + 20] + bytes(end - start - 20) + data[end:]


def _lying_length(data: bytes) -> bytes:
    start, _ = _app11(data)[0]
    return data[: start + 2] + b"\xff\xf0" + data[start + 4 :]


def _forged_box(data: bytes) -> bytes:
    """A plain JPEG with an APP11 segment that looks like a C2PA store and holds nonsense."""
    rng = np.random.default_rng(1)
    box = b"jumb" + b"\x00\x00\x00\x19jumdc2pa" + rng.integers(0, 256, 200, np.uint8).tobytes()
    payload = b"JP\x00\x01\x00\x00\x00\x01" + (8 + len(box)).to_bytes(4, "big") + box
    segment = b"\xff\xeb" + (2 + len(payload)).to_bytes(2, "big") + payload
    return data[:2] + segment + data[2:]


@pytest.mark.parametrize(
    ("corrupt", "status"),
    [
        (_flip_middle, provenance.INVALID),  # parses, but its hashes fail
        (_zero_manifest, provenance.NONE),  # nothing left to read
        (_lying_length, provenance.DAMAGED),
        (_forged_box, provenance.DAMAGED),
    ],
)
def test_a_damaged_manifest_is_a_message_not_a_crash(signed, host, corrupt, status):
    data = corrupt(jpeg_bytes(host) if corrupt is _forged_box else signed)

    found = read_credentials(data, "JPEG")

    assert found.status == status and not found.valid
    assert found.summary() and found.lines()
    json.dumps(found.record())
    if found.status == provenance.DAMAGED:
        assert found.summary().startswith("Content Credentials DAMAGED: ")
    # As a view (pixels given: some of these files no longer decode), among others.
    results = compute_views(["c2pa", "metadata"], Evidence(host, data, "bad.jpg"))
    assert results["c2pa"].applicable and "failed" not in results["c2pa"].summary


def test_a_damaged_manifest_store_of_any_shape_is_reported():
    hostile = [
        {"active_manifest": "m", "manifests": {"m": {"assertions": 5, "ingredients": {"a": 1}}}},
        {"active_manifest": "m", "manifests": {"m": {"signature_info": [], "title": ["x"]}}},
        {"active_manifest": "m", "manifests": {"m": {}}, "validation_results": [1, 2]},
        {"active_manifest": ["m"], "manifests": []},
        {"active_manifest": "m", "manifests": {"m": {"assertions": [{"label": "c2pa.actions"}]}}},
        {
            "active_manifest": "m",
            "manifests": {"m": {"claim_generator": "<b>x</b>\x00\n" * 50}},
            "validation_results": {"activeManifest": {"failure": [{"code": "odd.code"}, 7]}},
        },
    ]
    for store in hostile:
        found = credentials_from_store(store)
        assert found.summary() and found.lines()
        json.dumps(found.record())
    odd = credentials_from_store(hostile[-1])
    assert odd.status == provenance.INVALID and "(odd.code)" in odd.problems[0]
    assert len(odd.claim_generator) <= provenance.MAX_TEXT and "\x00" not in odd.claim_generator


def test_ingredients_and_their_own_credentials(signer, signed):
    child = manifest_of(
        {"action": "c2pa.opened", "parameters": {"ingredientIds": ["parent"]}},
        {"action": "c2pa.cropped"},
        title="crop.jpg",
    )
    parent = ({"title": "photo.jpg", "relationship": "parentOf", "label": "parent"}, "image/jpeg")
    data = sign(signer, signed, child, ingredient=(*parent, io.BytesIO(signed)))

    found = read_credentials(data, "JPEG")

    assert found.valid and found.manifests == 2
    assert [a.label for a in found.actions] == ["opened", "cropped"]
    (ingredient,) = found.ingredients
    assert ingredient.title == "photo.jpg" and ingredient.has_credentials
    assert ingredient.signer == SIGNER_CN and ingredient.ai  # the parent says AI-generated
    assert found.ai_generated and "AI-GENERATED material per its ingredients" in found.summary()
    assert any(line.startswith("Ingredient: edited from: photo.jpg") for line in found.lines())


def test_a_signed_png(signer, host):
    buf = io.BytesIO()
    Image.fromarray(host).save(buf, "PNG")
    data = sign(signer, buf.getvalue(), manifest_of(CREATED_BY_AI), mime="image/png")
    found = compute_view("c2pa", Evidence.from_bytes(data, "a.png"))
    assert found.details["valid"] and found.details["signer"] == SIGNER_CN


def test_a_remote_manifest_is_not_fetched(signer, host):
    c2pa = provenance.library()
    with c2pa.Builder(manifest_of(CREATED_BY_AI)) as builder:
        builder.set_no_embed()
        builder.set_remote_url("http://192.0.2.1/manifest.c2pa")  # TEST-NET: never answers
        out = io.BytesIO()
        builder.sign(signer, "image/jpeg", io.BytesIO(jpeg_bytes(host)), out)
    start = time.perf_counter()
    found = read_credentials(out.getvalue(), "JPEG")
    assert time.perf_counter() - start < 2.0
    assert found.status == provenance.REMOTE and found.present and not found.valid
    assert "192.0.2.1" in found.summary() and "not fetched" in found.summary()


def test_the_native_library_is_loaded_from_the_package_only(tmp_path):
    # c2pa-python itself would try ./libc2pa_c.so first: a file planted in an evidence folder.
    (tmp_path / "libc2pa_c.so").write_bytes(b"not a library")
    script = textwrap.dedent(
        """
        import ctypes, json, sys
        tried = []
        real = ctypes.CDLL
        class Spy(real):
            def __init__(self, name, *args, **kwargs):
                tried.append(str(name))
                super().__init__(name, *args, **kwargs)
        ctypes.CDLL = Spy
        from ncl_core.evidence.provenance import library, read_credentials
        library()
        print(json.dumps(tried))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    tried = json.loads(done.stdout.strip().splitlines()[-1])
    assert any(t.endswith("libc2pa_c.so") for t in tried)
    assert not any(t.startswith(str(tmp_path)) for t in tried)


def test_the_view_is_registered_for_the_cli_and_reports():
    assert "c2pa" in VIEWS and not VIEWS["c2pa"].has_map
    assert "c2pa" in parse_names("all") and parse_names("c2pa") == ("c2pa",)


def test_analyze_views_c2pa(tmp_path, tiny_model_path, signed, capsys):
    from ncl_core.cli import EXIT_OK, main

    image = tmp_path / "evidence" / "signed.jpg"
    image.parent.mkdir()
    image.write_bytes(signed)
    out = tmp_path / "out"
    args = ["analyze", str(image), "--views", "c2pa", "--out", str(out)]
    code = main([*args, "--model", str(tiny_model_path), "--input-size", "64"])

    assert code == EXIT_OK
    printed = capsys.readouterr().out
    assert f"c2pa: Content Credentials valid; signed by {SIGNER_CN}" in printed
    record = json.loads((out / "signed.json").read_text())["views"]["c2pa"]
    assert record["details"]["signer"] == SIGNER_CN
    assert "c2pa" not in json.loads((out / "signed.json").read_text())["outputs"]
    assert not list(out.glob("*.c2pa.png"))


def test_batch_rows_carry_content_credentials(tmp_path, signed, host):
    from test_report import FakePredictor

    from ncl_core.report import ReportOptions, run_batch

    folder = tmp_path / "evidence"
    folder.mkdir()
    (folder / "signed.jpg").write_bytes(signed)
    (folder / "plain.jpg").write_bytes(jpeg_bytes(host))
    out = tmp_path / "report"

    summary = run_batch([folder], FakePredictor(), out, ReportOptions(views=("c2pa",)))

    rows = {r["name"]: r for r in summary.rows}
    assert rows["signed.jpg"]["content_credentials"].startswith("Content Credentials valid")
    assert rows["plain.jpg"]["content_credentials"] == "no Content Credentials"
    assert rows["signed.jpg"]["views"]["c2pa"]["applicable"] is True
    with open(out / "results.csv", newline="") as fh:
        table = {r["name"]: r for r in csv.DictReader(fh)}
    assert SIGNER_CN in table["signed.jpg"]["content_credentials"]
    assert "Content Credentials" in (out / "index.html").read_text()
