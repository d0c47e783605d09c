"""``ncl-forensics --self-test``: the smoke test of an install or a PyInstaller bundle.

Headless (no window, no display needed): analyzes a bundled sample image with the default
model and checks the result's shape and range, then loads the GUI's modules and finds Qt's
platform plugin without opening a window. A bundle that lacks a library, a Qt module or a
resource fails here rather than in an analyst's hands. Exit code 0 when every step passed, 1
otherwise, with one line saying which step failed and why."""

from __future__ import annotations

import os
import platform
import sys
import time
import traceback
from pathlib import Path

EXIT_OK, EXIT_FAILED = 0, 1
# The plugin Qt needs to open a window on each desktop system.
PLATFORM_PLUGINS = {"linux": "xcb", "win32": "windows", "darwin": "cocoa"}


class SelfTestError(Exception):
    """A step of the self-test failed; the message says what to do."""


def _check_analysis(analysis, sample) -> None:
    import numpy as np

    prob = analysis.probability
    if prob.shape != (analysis.height, analysis.width):
        raise SelfTestError(
            f"probability map {prob.shape} does not match the image "
            f"({analysis.height}, {analysis.width}) of {sample}"
        )
    if not np.isfinite(prob).all() or prob.min() < 0.0 or prob.max() > 1.0:
        raise SelfTestError(f"probability map of {sample} has values outside [0, 1]")
    if not 0.0 <= analysis.score <= 1.0:
        raise SelfTestError(f"image score {analysis.score} of {sample} is outside [0, 1]")


def _steps(say):
    """The checks, in order, each a (name, function) pair; a function raises on failure."""
    state: dict = {}

    def samples() -> None:
        from app.resources import resource_path, sample_images

        found = sample_images()
        if not found:
            raise SelfTestError(
                f"no sample images under {resource_path('samples')}; the build is incomplete"
            )
        state["sample"] = found[0]
        say(f"sample image: {found[0]}")

    def model() -> None:
        from ncl_core.models.modelfile import ModelFileError, ModelRegistry

        try:
            info = ModelRegistry().default()
        except ModelFileError as exc:
            raise SelfTestError(str(exc)) from exc
        state["model"] = info
        origin = "bundled" if info.bundled else "from the user's registry"
        say(f"model: {info.name} ({info.id}, {origin}) {info.path}")

    def analysis() -> None:
        from ncl_core.inference.predictor import Predictor

        predictor = Predictor.load(state["model"].path)
        say(f"device: {predictor.device}")
        result = predictor.analyze(state["sample"])
        _check_analysis(result, state["sample"])
        say(
            f"analysis: score {result.score:.3f}, area at 0.5 {100 * result.area_fraction:.2f} %, "
            f"{result.width}x{result.height} px in {result.duration_s:.2f} s"
        )

    def image_formats() -> None:
        # HEIC (pillow-heif's libheif) and AVIF (Pillow's libavif) are native libraries the
        # bundle must carry: a tiny image of each, encoded in memory, must decode.
        import io

        import numpy as np
        from PIL import Image

        from ncl_core.data.io import decode_image

        picture = np.zeros((16, 24, 3), np.uint8)
        picture[:, 12:] = 200
        for fmt in ("HEIF", "AVIF"):
            buffer = io.BytesIO()
            Image.fromarray(picture).save(buffer, format=fmt, quality=90)
            image, _, info = decode_image(buffer.getvalue(), f"test.{fmt.lower()}")
            if image.shape != picture.shape or info.format != fmt:
                raise SelfTestError(f"a {fmt} test image decoded as {info.format} {image.shape}")
        # libjpeg-turbo's warnings about damaged data come through simplejpeg, another native
        # library: a JPEG cut short and closed again must be reported.
        noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(noise).save(buffer, format="JPEG", quality=90)
        data = buffer.getvalue()
        _, warnings, _ = decode_image(data[: len(data) // 2] + b"\xff\xd9", "test.jpg")
        if not any(w.startswith("the JPEG data is damaged") for w in warnings):
            raise SelfTestError(f"a JPEG cut short was not reported as damaged: {warnings}")
        say("image formats: HEIC/HEIF and AVIF decode; damaged JPEG data is reported")

    def signing() -> None:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        from ncl_core.report.signing import check_signature, sign_bytes

        data = b"manifest"
        record = sign_bytes(Ed25519PrivateKey.generate(), data, "MANIFEST.json")
        if not check_signature(record, data).ok or check_signature(record, b"changed").ok:
            raise SelfTestError("Ed25519 signatures of report manifests do not check out")
        say("report signatures: Ed25519")

    def content_credentials() -> None:
        # c2pa-python's native library must be in the bundle, where the reader looks for it;
        # a JPEG made in memory carries no manifest, and must read as such.
        import io

        from PIL import Image

        from ncl_core.evidence.provenance import NONE, library_version, read_credentials

        buffer = io.BytesIO()
        Image.new("RGB", (24, 16), (90, 120, 150)).save(buffer, "JPEG")
        found = read_credentials(buffer.getvalue(), "JPEG")
        if found.status != NONE:
            raise SelfTestError(f"a plain JPEG read as {found.status}: {found.summary()}")
        say(f"Content Credentials: {library_version()}; a plain JPEG has none")

    def gui_modules() -> None:
        os.environ.setdefault("QT_API", "pyside6")
        import pyqtgraph
        from PySide6 import __version__ as pyside_version

        import app.main_window  # noqa: F401 - imports every view, i.e. the whole GUI

        say(f"GUI modules: PySide6 {pyside_version}, pyqtgraph {pyqtgraph.__version__}")

    def qt_platform() -> None:
        # Without its platform plugin Qt cannot open a window: the classic broken bundle.
        from PySide6.QtCore import QCoreApplication

        folders = [Path(p) / "platforms" for p in QCoreApplication.libraryPaths()]
        found = sorted(
            {f.stem.removeprefix("lib").removeprefix("q") for d in folders for f in d.glob("*q*")}
        )
        needed = PLATFORM_PLUGINS.get(sys.platform)
        if needed and needed not in found:
            where = ", ".join(map(str, folders)) or "no plugin folder"
            raise SelfTestError(f"Qt platform plugin '{needed}' missing in {where}")
        say(f"Qt platform plugins: {', '.join(found)}")

    return [
        ("sample images", samples),
        ("model", model),
        ("analysis", analysis),
        ("image formats", image_formats),
        ("report signatures", signing),
        ("Content Credentials", content_credentials),
        ("GUI modules", gui_modules),
        ("Qt platform plugin", qt_platform),
    ]


def run_self_test(out=None) -> int:
    """Run every step, printing one line each; 0 if all passed, 1 at the first failure."""
    out = out or sys.stdout

    def say(text: str) -> None:
        print(f"  {text}", file=out, flush=True)

    from ncl_core import __version__

    kind = "bundle" if getattr(sys, "frozen", False) else "source"
    print(
        f"NCL Forensics {__version__} self-test ({kind}, Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()})",
        file=out,
        flush=True,
    )
    t0 = time.perf_counter()
    for name, step in _steps(say):
        try:
            step()
        except SelfTestError as exc:
            print(f"self-test FAILED at '{name}': {exc}", file=out, flush=True)
            return EXIT_FAILED
        except Exception as exc:  # noqa: BLE001 - an unexpected error is the finding itself
            traceback.print_exc(file=sys.stderr)
            print(
                f"self-test FAILED at '{name}': {type(exc).__name__}: {exc}", file=out, flush=True
            )
            return EXIT_FAILED
    print(f"self-test passed in {time.perf_counter() - t0:.1f} s", file=out, flush=True)
    return EXIT_OK
