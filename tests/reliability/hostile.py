"""Hostile inputs and hostile model files for the reliability suite.

Each ``InputCase`` writes one small real file and says what every layer (library, CLI, batch
report, GUI) must make of it: a result, with a warning where something was converted, or one
error naming the file. Nothing here is large: the 50 000 x 50 000 PNG is a header and one
row of data, 83 bytes.
"""

from __future__ import annotations

import json
import pickle
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

from ncl_core.data.io import SMALL_SIDE

from imaging import encoded, pattern, png_with_header_only, save

# Names a file system accepts but careless code does not: spaces, quotes, HTML, unicode.
HTML_NAME = 'it\'s "quoted" <b onmouseover=alert(1)>&amp; x.png'
UNICODE_NAME = "証拠 café — Ünïcødé.png"
LONG_NAME = "L" * 246 + ".png"  # 250 characters: near the 255-byte limit of most file systems


@dataclass(frozen=True)
class InputCase:
    """One hostile input file and the behaviour every layer must show for it."""

    id: str
    name: str
    make: Callable[[Path], object]
    error: str | None = None  # regex the error message must match; None: analyzed
    warning: str | None = None  # regex one warning must match
    shape: tuple[int, int] | None = None  # (height, width) of the analyzed image


def _truncated(fmt: str) -> Callable[[Path], object]:
    def make(path: Path) -> None:
        data = encoded(pattern(64, 64, seed=7), fmt)
        path.write_bytes(data[: len(data) // 2])

    return make


def _zeros_in_the_middle(fmt: str) -> Callable[[Path], object]:
    def make(path: Path) -> None:
        data = bytearray(encoded(pattern(96, 128, seed=12, noise=10), fmt))
        third = len(data) // 3
        data[third : third + 100] = bytes(100)
        path.write_bytes(bytes(data))

    return make


def _cut_and_closed(path: Path) -> None:
    """A JPEG cut in the middle of its scan and closed with an end marker, as some copying and
    recovery tools leave a file: every decoder reads it, and half of it is filling."""
    data = encoded(pattern(96, 128, seed=10, noise=8), "JPEG", quality=90)
    path.write_bytes(data[: len(data) // 2] + b"\xff\xd9")


def _png16(path: Path) -> None:
    values = (np.arange(16 * 24, dtype=np.uint16).reshape(16, 24) * 170).astype(np.uint16)
    Image.fromarray(values).save(path)


def _tiff16(path: Path) -> None:
    rgb16 = pattern(16, 24, seed=2).astype(np.uint16) * 257
    cv2.imwrite(str(path), rgb16[:, :, ::-1])  # Pillow cannot write 48-bit colour; OpenCV can


def _cmyk(path: Path) -> None:
    cmyk = np.zeros((16, 24, 4), np.uint8)
    cmyk[:, :12, 1] = 255
    cmyk[:, 12:, 0] = 255
    Image.fromarray(cmyk, mode="CMYK").save(path, quality=95)


def _palette_transparent(path: Path) -> None:
    index = np.zeros((16, 24), np.uint8)
    index[:, 12:] = 1
    im = Image.fromarray(index, mode="P")
    im.putpalette([0, 0, 0, 200, 10, 20] + [0] * 762)
    im.save(path, transparency=0)


def _animated_gif(path: Path) -> None:
    frames = [Image.new("RGB", (24, 16), c) for c in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=40, loop=0)


def _multipage_tiff(path: Path) -> None:
    pages = [Image.fromarray(pattern(16, 24, seed=s)) for s in (1, 2)]
    pages[0].save(path, save_all=True, append_images=pages[1:])


def _exif_rotated(path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed turned 90 degrees clockwise: 16 x 24 stored, 24 x 16 shown
    Image.fromarray(pattern(16, 24, seed=3)).save(path, quality=95, exif=exif)


INPUT_CASES: tuple[InputCase, ...] = (
    InputCase("zero_bytes", "empty.jpg", lambda p: p.write_bytes(b""), error=r"empty \(0 bytes\)"),
    InputCase("truncated_jpeg", "cut.jpg", _truncated("JPEG"), error="truncated"),
    InputCase("truncated_png", "cut.png", _truncated("PNG"), error="truncated"),
    InputCase(
        "png_zeros_in_pixel_data",
        "zeros.png",
        _zeros_in_the_middle("PNG"),
        error=r"the PNG data cannot be decoded",
    ),
    InputCase(
        "text_named_jpg",
        "notes.jpg",
        lambda p: p.write_text("case notes, not a picture\n" * 20),
        error="not an image",
    ),
    InputCase(
        "png_header_50000_px",
        "bomb.png",
        lambda p: png_with_header_only(p, 50_000, 50_000),
        error="refused",
    ),
    InputCase("one_pixel", "dot.png", lambda p: save(p, pattern(1, 1)), shape=(1, 1)),
    InputCase(
        "strip_20000_x_3", "strip.png", lambda p: save(p, pattern(3, 20_000)), shape=(3, 20_000)
    ),
    InputCase("png_16_bit", "grey16.png", _png16, warning="16-bit", shape=(16, 24)),
    InputCase("tiff_16_bit", "colour16.tif", _tiff16, warning="16-bit", shape=(16, 24)),
    InputCase("cmyk_jpeg", "print.jpg", _cmyk, warning="CMYK", shape=(16, 24)),
    InputCase(
        "palette_png_transparency",
        "palette.png",
        _palette_transparent,
        warning="transparency",
        shape=(16, 24),
    ),
    InputCase("animated_gif", "anim.gif", _animated_gif, warning="3 frames", shape=(16, 24)),
    InputCase("multipage_tiff", "scan.tif", _multipage_tiff, warning="2 pages", shape=(16, 24)),
    InputCase(
        "exif_rotated_jpeg", "phone.jpg", _exif_rotated, warning="EXIF-rotated", shape=(24, 16)
    ),
    InputCase(
        "png_named_jpg",
        "renamed.jpg",
        lambda p: p.write_bytes(encoded(pattern(64, 72, seed=8), "PNG")),
        warning=r"name ends in \.jpg but the content is PNG",
        shape=(64, 72),
    ),
    InputCase("plain_png", "plain.png", lambda p: save(p, pattern(64, 72, seed=9)), shape=(64, 72)),
    InputCase(
        "plain_jpeg",
        "plain.jpg",
        lambda p: p.write_bytes(encoded(pattern(64, 72, seed=11, noise=8), "JPEG", quality=90)),
        shape=(64, 72),
    ),
    InputCase(
        "jpeg_cut_and_closed",
        "recovered.jpg",
        _cut_and_closed,
        warning=r"^the JPEG data is damaged \(libjpeg: .*\): part of the picture may be",
        shape=(96, 128),
    ),
    InputCase(
        "unicode_name", UNICODE_NAME, lambda p: save(p, pattern(16, 24, seed=4)), shape=(16, 24)
    ),
    InputCase(
        "spaces_quotes_html_name",
        HTML_NAME,
        lambda p: save(p, pattern(16, 24, seed=5)),
        shape=(16, 24),
    ),
    InputCase(
        "name_250_characters",
        LONG_NAME,
        lambda p: save(p, pattern(16, 24, seed=6)),
        shape=(16, 24),
    ),
)
CASES_BY_ID = {case.id: case for case in INPUT_CASES}
GOOD_CASES = tuple(c for c in INPUT_CASES if c.error is None)
BAD_CASES = tuple(c for c in INPUT_CASES if c.error is not None)


def write_inputs(folder: Path, cases: tuple[InputCase, ...] = INPUT_CASES) -> dict[str, Path]:
    """Write every case into ``folder``; returns case id -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for case in cases:
        path = folder / case.name
        case.make(path)
        paths[case.id] = path
    return paths


def check_warnings(case: InputCase, warnings: list[str]) -> None:
    """A converted input carries its warning; a plain one carries none. An image smaller
    than ``SMALL_SIDE`` a side also carries the one warning that says so, with its size."""
    small = [w for w in warnings if w.startswith("image is only")]
    if case.shape is not None and min(case.shape) < SMALL_SIDE:
        height, width = case.shape
        size = f"image is only {width} x {height} px; below {SMALL_SIDE} px"
        assert len(small) == 1 and small[0].startswith(size), (case.id, warnings)
        warnings = [w for w in warnings if w not in small]
    if case.warning is None:
        assert warnings == [], (case.id, warnings)
    else:
        assert any(re.search(case.warning, w) for w in warnings), (case.id, warnings)


# --- console output ------------------------------------------------------------------------------

# A tqdm line ("batch: 0img [00:00, ?img/s]"), and a bar with a total ("x:  40%|███ | 2/5 [..]").
_PROGRESS = re.compile(r"^\s*(analyze|batch|train)\b.*(\||it/s|img/s|s/img)")
_BAR = re.compile(r"^[^|]*\|[^|]*\| *\d+/\d+ \[[^\]]*\]")


def console_lines(text: str) -> list[str]:
    """What a person reads on stderr, without tqdm's progress bars and redraws (``\\r``)."""
    lines = []
    for segment in re.split(r"[\r\n]", text):
        segment = _BAR.sub("", segment)  # a bar left on screen when the command stopped
        if segment.strip() and not _PROGRESS.match(segment):
            lines.append(segment)
    return lines


def assert_clean_console(text: str, allowed_prefixes: tuple[str, ...]) -> list[str]:
    """No traceback; every line starts with one of the expected prefixes. Returns the lines."""
    assert "Traceback" not in text
    lines = console_lines(text)
    for line in lines:
        assert line.startswith(allowed_prefixes), f"unexpected console line: {line!r}"
    return lines


# --- hostile model files -------------------------------------------------------------------------


class CodeExecution:
    """Unpickling this runs Python code that writes ``marker``: the payload of a hostile model."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple:
        code = f"open({self.marker!r}, 'w').write('code ran')"
        return (exec, (code,))


def write_pickle_payloads(folder: Path, marker: Path) -> dict[str, Path]:
    """A torch ``.pt`` (zip), a plain-pickle ``.pth`` and the ``.pt`` renamed ``.safetensors``."""
    folder.mkdir(parents=True, exist_ok=True)
    payload = {"state_dict": {"w": torch.zeros(2)}, "hook": CodeExecution(marker)}
    pt = folder / "shared-model.pt"
    torch.save(payload, pt)
    pth = folder / "shared-model.pth"
    pth.write_bytes(pickle.dumps(payload))
    renamed = folder / "shared-model.safetensors"
    renamed.write_bytes(pt.read_bytes())
    return {"pickle_pt": pt, "pickle_pth": pth, "pickle_renamed_safetensors": renamed}


def write_bad_safetensors(folder: Path, good_model: Path) -> dict[str, Path]:
    """Truncated, foreign-architecture and missing-tensor model files built from a good one."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from ncl_core.network.net_config import ModelConfig

    folder.mkdir(parents=True, exist_ok=True)
    with safe_open(str(good_model), framework="pt") as fh:
        metadata = dict(fh.metadata())
    tensors = load_file(str(good_model))
    files = {}
    data = good_model.read_bytes()
    files["truncated_safetensors"] = folder / "truncated.safetensors"
    files["truncated_safetensors"].write_bytes(data[: len(data) // 3])

    # A valid header whose config names an architecture this app does not have.
    foreign = dict(metadata, model_config=json.dumps({"backbone": "vit_b16"}))
    files["other_architecture"] = folder / "vit.safetensors"
    save_file(tensors, str(files["other_architecture"]), metadata=foreign)

    # A valid config of another size: the weights (resnet18) do not fit a resnet50.
    bigger = dict(metadata, model_config=ModelConfig(backbone="resnet50").to_json())
    files["config_of_other_size"] = folder / "resnet50-claimed.safetensors"
    save_file(tensors, str(files["config_of_other_size"]), metadata=bigger)

    missing = {k: v for i, (k, v) in enumerate(sorted(tensors.items())) if i % 2}
    files["missing_tensors"] = folder / "missing.safetensors"
    save_file(missing, str(files["missing_tensors"]), metadata=metadata)
    return files


def read_jsonl(path: Path) -> list[dict]:
    """Every complete JSON line of a journal (a last line cut short is ignored)."""
    records = []
    lines = path.read_text("utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            assert number == len(lines), f"{path.name}: damaged line {number}"
    return records


def remount_read_only(point: Path) -> None:
    """Turn a ``small_fs`` mount read-only; the files on it stay as they are."""
    subprocess.run(["mount", "-o", "remount,ro", str(point)], check=True)
