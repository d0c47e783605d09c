"""``ncl-forensics verify``, ``sign`` and ``keygen``: reports that verify themselves.

``verify REPORT_DIR`` checks every file of a report folder against its ``MANIFEST.json``
(exit 0: intact; 1: each changed, missing or added file named), its signature if it has one,
and with ``--evidence`` the evidence files where they still are. ``sign`` signs a finished
report with the analyst's Ed25519 key; ``keygen`` makes such a key.
"""

from __future__ import annotations

import argparse
import os
import sys

from ncl_core.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, shown


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "verify", help="check a report folder against its manifest (and signature)"
    )
    p.add_argument("report", metavar="REPORT_DIR", help="the report folder")
    p.add_argument(
        "--evidence",
        action="store_true",
        help="also hash the evidence files again where they still are (read only)",
    )
    p.add_argument(
        "--public-key",
        metavar="FILE",
        help="the signer's Ed25519 public key (an ssh-ed25519 line or PEM): the report must "
        "be signed with it",
    )
    p.set_defaults(func=run_verify)

    s = subparsers.add_parser(
        "sign", help="sign a finished report's manifest with your Ed25519 key"
    )
    s.add_argument("report", metavar="REPORT_DIR", help="the report folder (it must verify)")
    s.add_argument(
        "--key",
        required=True,
        metavar="FILE",
        help="your Ed25519 private key (PEM or OpenSSH; passphrase from "
        "NCL_FORENSICS_KEY_PASSPHRASE or asked)",
    )
    s.set_defaults(func=run_sign)

    k = subparsers.add_parser("keygen", help="make an Ed25519 key pair for signing reports")
    k.add_argument("key", metavar="FILE", help="the private key file to create (FILE.pub beside)")
    k.add_argument(
        "--no-passphrase",
        action="store_true",
        help="store the private key unencrypted (else the passphrase comes from "
        "NCL_FORENSICS_KEY_PASSPHRASE or is asked)",
    )
    k.add_argument("--comment", default="ncl-forensics", help="the public key's comment")
    k.set_defaults(func=run_keygen)


def _signature_line(check) -> str:
    who = f", signer {shown(check.signer)!s}" if check.signer else ""
    when = f", {shown(check.signed_utc)}" if check.signed_utc else ""
    return f"signature: {check.status}: {shown(check.message)}{who}{when}"


def run_verify(args: argparse.Namespace) -> int:
    from ncl_core.report.signing import load_public_key
    from ncl_core.report.verification import verify_report

    key = load_public_key(args.public_key) if args.public_key else None
    result = verify_report(args.report, check_evidence=args.evidence, public_key=key)
    manifest = result.manifest or {}
    tool = manifest.get("tool") if isinstance(manifest.get("tool"), dict) else {}
    model = manifest.get("model") if isinstance(manifest.get("model"), dict) else {}
    report = manifest.get("report") if isinstance(manifest.get("report"), dict) else {}
    print(f"report: {shown(result.report_dir)}")
    if manifest:
        print(
            f"  written by {shown(tool.get('name'))} {shown(tool.get('version'))}, model "
            f"{shown(model.get('id'))} (SHA-256 {shown(model.get('sha256'))}), "
            f"{shown(report.get('ended_utc'))}; {result.n_files} file(s) listed"
        )
    for problem in result.problems:
        print(shown(problem.line()))
    if result.signature is not None:
        print(_signature_line(result.signature))
        if result.signature.ok and key is None:
            print(
                "  the key is the one stored in the report: compare its fingerprint with the "
                "analyst's, or pass --public-key"
            )
    else:
        print("signature: none (the report is not signed)")
    if result.evidence is not None:
        counts: dict[str, int] = {}
        for check in result.evidence:
            counts[check.status] = counts.get(check.status, 0) + 1
            if check.status == "CHANGED":
                print(f"evidence CHANGED: {shown(check.path)}")
        summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        print(f"evidence: {summary or 'none recorded'}")
    if result.intact:
        print(f"INTACT: every file matches the manifest ({result.n_files} file(s))")
        return EXIT_OK
    problems = len(result.problems) + len(result.evidence_changed)
    bad_signature = result.signature is not None and not result.signature.ok
    what = f"{problems} problem(s)" + (", bad signature" if bad_signature else "")
    print(f"NOT INTACT: {what}")
    return EXIT_FAILED


def run_sign(args: argparse.Namespace) -> int:
    from ncl_core.report.signing import load_private_key
    from ncl_core.report.verification import sign_report

    key = load_private_key(args.key)
    result = sign_report(args.report, key)
    print(f"signed: {shown(result.report_dir)}")
    if result.signature is not None:
        print(_signature_line(result.signature))
    return EXIT_OK if result.intact else EXIT_FAILED


def run_keygen(args: argparse.Namespace) -> int:
    from ncl_core.report.signing import PASSPHRASE_ENV, generate_key

    passphrase: bytes | None = None
    if not args.no_passphrase:
        value = os.environ.get(PASSPHRASE_ENV)
        if value:
            passphrase = value.encode("utf-8")
        elif sys.stdin is not None and sys.stdin.isatty():
            import getpass

            first = getpass.getpass("passphrase for the new key: ")
            if first != getpass.getpass("the same passphrase again: "):
                print("error: the passphrases differ; nothing was written", file=sys.stderr)
                return EXIT_USAGE
            passphrase = first.encode("utf-8") or None
        else:
            print(
                f"error: no passphrase: set {PASSPHRASE_ENV}, run in a terminal to be asked, "
                "or give --no-passphrase to store the key unencrypted",
                file=sys.stderr,
            )
            return EXIT_USAGE
    private, public, fingerprint = generate_key(args.key, passphrase, args.comment)
    print(f"private key: {shown(private)} (keep it to yourself)")
    print(f"public key:  {shown(public)} (give it to whoever checks your reports)")
    print(f"fingerprint: {fingerprint}")
    return EXIT_OK
