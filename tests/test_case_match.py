"""Shared regions across a case: a pasted patch is found with its boxes, unrelated photos and
copies of one photo are not shared regions, a corrupt file is skipped, and a batch report
lists what was found (report.json, index.html, report.pdf)."""

from __future__ import annotations

import io
import json
import time
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from ncl_core.analysis import Analysis, AnalysisError
from ncl_core.evidence.image import Evidence, load_or_error
from ncl_core.report import INDEX_HTML, REPORT_JSON, REPORT_PDF, ReportOptions, run_batch
from ncl_core.views.case_match import image_features, match_case, match_features

SAMPLES = Path(__file__).resolve().parents[1] / "resources" / "samples"
# Where the patch comes from (in chelsea.jpg) and goes (in rocket_copy_move.jpg), x, y, w, h.
PATCH = (150, 100, 120, 120)
PASTED_AT = (300, 320)
SCALE = 0.9


def _photo(name: str) -> np.ndarray:
    path = next(SAMPLES.glob(f"*/{name}"))
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _jpeg(path: Path, rgb: np.ndarray, quality: int = 85) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path, quality=quality)
    return path


def _iou(a: list[int], b: tuple[int, ...]) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0, x1 - x0) * max(0, y1 - y0)
    return inter / float(a[2] * a[3] + b[2] * b[3] - inter)


def _spliced() -> tuple[np.ndarray, np.ndarray, tuple[int, int, int, int]]:
    """chelsea, and rocket with a patch of chelsea pasted (0.9x) and saved as a JPEG."""
    cat, rocket = _photo("chelsea.jpg"), _photo("rocket_copy_move.jpg").copy()
    x, y, w, h = PATCH
    side = round(w * SCALE)
    patch = cv2.resize(cat[y : y + h, x : x + w], (side, side), interpolation=cv2.INTER_AREA)
    tx, ty = PASTED_AT
    rocket[ty : ty + side, tx : tx + side] = patch
    buf = io.BytesIO()
    Image.fromarray(rocket).save(buf, "JPEG", quality=85)
    with Image.open(buf) as im:
        return cat, np.asarray(im.convert("RGB")), (tx, ty, side, side)


@pytest.fixture(scope="module")
def case(tmp_path_factory) -> tuple[Path, tuple[int, int, int, int]]:
    """A case folder: the donor, the spliced image, an unrelated photo and a corrupt file."""
    folder = tmp_path_factory.mktemp("case")
    cat, spliced, truth = _spliced()
    _jpeg(folder / "a_cat.jpg", cat, 92)
    _jpeg(folder / "b_spliced.jpg", spliced, 90)
    _jpeg(folder / "c_coffee.jpg", _photo("coffee_removal.jpg"))
    good = (folder / "a_cat.jpg").read_bytes()
    (folder / "d_corrupt.jpg").write_bytes(good[: len(good) // 3])
    (folder / "e_text.jpg").write_text("not an image")
    return folder, truth


def test_a_pasted_patch_is_found_with_both_boxes(case):
    folder, truth = case
    result = match_case(sorted(folder.iterdir()))
    assert [(Path(r["source"]).name, Path(r["target"]).name) for r in result.shared_regions] == [
        ("a_cat.jpg", "b_spliced.jpg")
    ]
    region = result.shared_regions[0]
    assert _iou(region["source_box"], PATCH) > 0.5
    assert _iou(region["target_box"], truth) > 0.5
    assert region["matches"] >= 10
    assert region["scale"] == pytest.approx(SCALE, abs=0.05)
    assert result.duplicates == []
    # The corrupt files are skipped with a reason; the rest is still matched.
    skipped = {Path(s["name"]).name for s in result.skipped}
    assert skipped == {"d_corrupt.jpg", "e_text.jpg"}
    assert all(s["reason"] for s in result.skipped)
    assert result.complete and result.n_images == 5


def test_unrelated_photos_give_no_pair():
    names = ("chelsea.jpg", "coffee_removal.jpg", "rocket_copy_move.jpg", "astronaut_splice.jpg")
    result = match_case([(n, _photo(n)) for n in names])
    assert result.shared_regions == [] and result.duplicates == []


def test_copies_of_one_photo_are_the_same_picture_not_a_shared_region(tmp_path):
    rocket = _photo("rocket_copy_move.jpg")
    first = _jpeg(tmp_path / "rocket.jpg", rocket, 92)
    copy = tmp_path / "rocket_copy.jpg"
    copy.write_bytes(first.read_bytes())
    small = cv2.resize(rocket, (360, 360), interpolation=cv2.INTER_AREA)
    resized = _jpeg(tmp_path / "rocket_small.jpg", small, 75)
    other = _jpeg(tmp_path / "cat.jpg", _photo("chelsea.jpg"))
    result = match_case([first, copy, resized, other])
    assert result.shared_regions == []
    relations = {(Path(d["a"]).name, Path(d["b"]).name): d["relation"] for d in result.duplicates}
    assert relations == {
        ("rocket.jpg", "rocket_copy.jpg"): "identical file",
        ("rocket.jpg", "rocket_small.jpg"): "same picture",
    }


def test_a_region_shared_with_a_file_is_shared_with_its_identical_copy():
    cat, spliced, _ = _spliced()
    features = [
        image_features(cat, "cat", digest="c"),
        image_features(cat, "cat copy", digest="c"),
        image_features(spliced, "spliced", digest="s"),
    ]
    result = match_features(features)
    assert {(r["source"], r["target"]) for r in result.shared_regions} == {
        ("cat", "spliced"),
        ("cat copy", "spliced"),
    }
    assert [d["relation"] for d in result.duplicates] == ["identical file"]


def test_the_time_budget_stops_and_says_so():
    names = ("chelsea.jpg", "coffee_removal.jpg", "rocket_copy_move.jpg")
    result = match_case([(n, _photo(n)) for n in names], time_budget_s=0.0)
    assert not result.complete and "time budget" in result.note
    assert result.shared_regions == []


def test_many_images_go_through_the_index():
    """More images than candidates per image: the pairs come from the global index."""
    cat, spliced, truth = _spliced()
    rng = np.random.default_rng(0)
    others = []
    for name in ("coffee_removal.jpg", "astronaut_splice.jpg"):
        photo = _photo(name)
        for k in range(3):  # flipped and turned crops: unrelated to each other for SIFT
            crop = photo[k * 60 : k * 60 + 360, k * 50 : k * 50 + 360]
            crop = np.ascontiguousarray(np.rot90(crop[:, ::-1], k))
            others.append((f"{name}-{k}", crop))
    images = [("cat", cat), *others, ("spliced", spliced)]
    rng.shuffle(images)
    result = match_case(images)
    pairs = {frozenset((r["source"], r["target"])) for r in result.shared_regions}
    assert frozenset(("cat", "spliced")) in pairs
    assert result.n_candidates < len(images) * (len(images) - 1) // 2


# -- the batch report ---------------------------------------------------------------------------


class _FakePredictor:
    """Real Analysis objects without a model: the probability is the red channel."""

    model_id = "fake-ncl"
    model_sha256 = "cd" * 32
    device = "cpu"

    def analyze_stream(self, paths, settings=None):
        mode = settings.mode if settings is not None and settings.mode != "auto" else "resize"
        for path in paths:
            loaded = load_or_error(path)
            if not isinstance(loaded, Evidence):
                yield None, loaded
                continue
            prob = loaded.image[:, :, 0].astype(np.float32) / 255.0
            yield (
                loaded,
                Analysis(
                    source=str(path),
                    sha256=loaded.file_sha256,
                    width=prob.shape[1],
                    height=prob.shape[0],
                    probability=prob,
                    threshold=0.5,
                    score=float(prob.max()),
                    model_id=self.model_id,
                    model_sha256=self.model_sha256,
                    settings={"mode": mode},
                    device=self.device,
                    duration_s=0.0,
                    started_utc=datetime.now(timezone.utc).isoformat(),
                    image_format=loaded.format,
                ),
            )


def test_a_batch_report_lists_the_shared_regions(case, tmp_path):
    folder, truth = case
    out = tmp_path / "report"
    t0 = time.perf_counter()
    summary = run_batch([folder], _FakePredictor(), out, ReportOptions(case_match=True))
    assert time.perf_counter() - t0 < 60
    assert summary.n_errors == 2  # the corrupt files: error rows, and matching went on
    header = json.loads((out / REPORT_JSON).read_text(encoding="utf-8"))
    regions = header["shared_regions"]
    assert [(Path(r["source"]).name, Path(r["target"]).name) for r in regions] == [
        ("a_cat.jpg", "b_spliced.jpg")
    ]
    region = regions[0]
    rows = {Path(r["path"]).name: r for r in summary.rows}
    assert region["source_index"] == rows["a_cat.jpg"]["index"]
    assert _iou(region["target_box"], truth) > 0.5
    assert (out / region["picture_path"]).is_file()
    assert header["duplicate_images"] == []
    assert header["case_match"]["complete"] is True
    page = (out / INDEX_HTML).read_text(encoding="utf-8")
    assert 'id="shared-regions"' in page and region["picture_path"] in page
    assert (out / REPORT_PDF).stat().st_size > 0
    manifest = json.loads((out / "MANIFEST.json").read_text(encoding="utf-8"))
    assert region["picture_path"] in manifest["files"]


def test_a_batch_without_case_matching_says_nothing_of_it(case, tmp_path):
    folder, _ = case
    out = tmp_path / "report"
    run_batch([folder], _FakePredictor(), out)  # off unless asked for
    header = json.loads((out / REPORT_JSON).read_text(encoding="utf-8"))
    assert header["shared_regions"] == [] and header["case_match"] is None
    assert 'id="shared-regions"' not in (out / INDEX_HTML).read_text(encoding="utf-8")
    assert not (out / "images" / "shared").exists()


def test_a_failed_decode_is_an_error_row_not_a_failed_match(case):
    folder, _ = case
    result = match_case([folder / "d_corrupt.jpg", folder / "a_cat.jpg"])
    assert result.shared_regions == [] and len(result.skipped) == 1
    assert isinstance(load_or_error(folder / "d_corrupt.jpg"), AnalysisError)


def test_names_in_the_shared_regions_section_are_escaped():
    from ncl_core.report.html import _e, _src
    from ncl_core.report.shared import html_section

    hostile = "<img src=x onerror=alert(1)>.jpg"
    region = {
        "source": hostile,
        "target": "b.jpg",
        "source_box": [1, 2, 3, 4],
        "target_box": [5, 6, 7, 8],
        "matches": 12,
        "scale": 1.0,
        "rotation_deg": 0.0,
        "picture_path": "images/shared/pair-0001.jpg",
    }
    header = {
        "shared_regions": [region],
        "duplicate_images": [{"a": hostile, "b": "c.jpg", "relation": "same picture"}],
        "case_match": {"n_images": 3, "seconds": 0.1, "complete": True, "note": None},
    }
    page = html_section(header, _e, _src)
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;.jpg" in page
