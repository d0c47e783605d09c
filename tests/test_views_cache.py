"""The forensic views' cache (ncl_core.views.cache): compact maps, a byte bound, the same
pictures as fresh maps. Qt-free."""

from __future__ import annotations

import numpy as np
import pytest

from ncl_core.inference.render import heatmap_rgb, overlay_rgb
from ncl_core.views import ViewResult, compute_view
from ncl_core.views.cache import CompactMap, ViewCache


def _map(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.random((h, w), dtype=np.float32)


def _result(name: str, m: np.ndarray | None, **details) -> ViewResult:
    return ViewResult(name, m, f"{name} summary", True, dict(details))


def test_a_map_in_0_1_is_kept_in_a_quarter_of_the_bytes_and_coloured_the_same() -> None:
    m = _map(120, 90)
    m[0, :4] = (0.0, 1.0, 0.5, 1 / 510)  # the ends and exact half levels
    compact = CompactMap.of(m)
    assert compact.nbytes == m.size == m.nbytes // 4
    back = compact.restore()
    assert back.dtype == np.float32 and back.shape == m.shape
    assert np.abs(back - m).max() <= 0.5 / 255 + 1e-7
    assert np.array_equal(heatmap_rgb(back, "inferno"), heatmap_rgb(m, "inferno"))
    # Every level reads back as itself.
    ramp = (np.arange(256, dtype=np.float32) / 255).reshape(16, 16)
    assert np.array_equal(
        CompactMap.of(CompactMap.of(ramp).restore()).levels, CompactMap.of(ramp).levels
    )


def test_a_map_outside_0_1_keeps_its_range_and_its_nans() -> None:
    m = _map(40, 50) * 30 - 5
    m[3, 4] = np.nan
    m[5, 6] = np.inf
    m[7, 8] = -np.inf
    compact = CompactMap.of(m)
    back = compact.restore()
    finite = np.isfinite(m)
    assert np.abs(back[finite] - m[finite]).max() <= compact.step / 2 + 1e-5
    assert np.isnan(back[3, 4]) and np.isnan(back).sum() == 1
    assert back[5, 6] == pytest.approx(np.nanmax(m[finite]), abs=1e-5)
    assert back[7, 8] == pytest.approx(np.nanmin(m[finite]), abs=1e-5)
    flat = CompactMap.of(np.full((3, 3), 7.0, np.float32)).restore()
    assert np.array_equal(flat, np.full((3, 3), 7.0, np.float32))


def test_the_cache_stays_within_its_bytes_dropping_the_images_seen_longest_ago() -> None:
    side = 100  # each map: 10,000 levels
    cache = ViewCache(max_bytes=35_000)
    for i in range(6):
        cache.put(
            f"img{i}", {"ela": _result("ela", _map(side, side, i)), "meta": _result("meta", None)}
        )
        assert cache.nbytes <= cache.max_bytes
    assert [k for k in (f"img{i}" for i in range(6)) if k in cache] == ["img3", "img4", "img5"]
    assert cache.nbytes == 3 * side * side
    # An image looked at again is kept longer.
    cache.focus("img3")
    cache.put("img6", {"ela": _result("ela", _map(side, side, 6))})
    assert "img3" in cache and "img4" not in cache
    # Detail arrays count too.
    cache.put("img7", {"clone": _result("clone", None, points=np.zeros(25_000, np.uint8))})
    assert cache.nbytes <= cache.max_bytes and "img7" in cache


def test_the_image_in_focus_is_kept_even_past_the_bound() -> None:
    cache = ViewCache(max_bytes=1_000)
    cache.put("other", {"ela": _result("ela", _map(20, 20))})
    cache.focus("big")
    cache.put(
        "big", {"ela": _result("ela", _map(100, 100)), "noise": _result("noise", _map(100, 100))}
    )
    assert "big" in cache and "other" not in cache
    assert cache.names("big") == {"ela", "noise"}


def test_the_image_in_focus_gives_its_maps_as_computed_and_holds_at_most_two() -> None:
    cache = ViewCache(focus_maps=2)
    cache.focus("a")
    maps = {name: _map(30, 40, i) for i, name in enumerate(("ela", "noise", "jpeg"))}
    computed = {name: _result(name, m) for name, m in maps.items()}
    cache.put("a", {"ela": computed["ela"], "noise": computed["noise"]})
    assert cache.get("a", "ela") is computed["ela"]  # the same object: drawn once, not again
    assert cache.get("a", "ela") is computed["ela"]
    cache.put("a", {"jpeg": computed["jpeg"]})
    assert cache.focus_nbytes == 2 * maps["ela"].nbytes  # noise's float map let go
    noise = cache.get("a", "noise")
    assert noise is not computed["noise"] and np.abs(noise.map - maps["noise"]).max() <= 0.5 / 255
    assert cache.get("a", "noise") is noise
    assert noise.summary == "noise summary"
    # Another image in focus: the float maps go, the compact ones stay.
    cache.focus("b")
    assert cache.focus_nbytes == 0 and cache.names("a") == {"ela", "noise", "jpeg"}
    assert cache.get("a", "ela") is not computed["ela"]
    assert cache.focus_nbytes == 0  # maps of an image not in focus are not held
    held = {name: r.map.dtype for entry in cache.values() for name, r in entry.items()}
    assert held == {"ela": np.uint8, "noise": np.uint8, "jpeg": np.uint8}


def test_records_and_discard() -> None:
    cache = ViewCache()
    cache.put("a", {"ela": _result("ela", _map(10, 10), quality=90), "meta": _result("meta", None)})
    cache.put("b", {"ela": _result("ela", _map(10, 10))})
    records = cache.results("a")
    assert set(records) == {"ela", "meta"} and all(r.map is None for r in records.values())
    assert records["ela"].details == {"quality": 90}
    assert cache.peek("a", "ela").summary == "ela summary" and cache.peek("a", "x") is None
    cache.discard("ela", ["a"])
    assert cache.names("a") == {"meta"} and cache.names("b") == {"ela"}
    cache.discard("ela")
    assert cache.names("b") == set() and cache.get("b", "ela") is None
    assert cache.get(None, "ela") is None and cache.results(None) == {}


@pytest.mark.parametrize("name", ["ela", "noise"])
def test_a_cached_view_draws_the_picture_a_fresh_one_draws(name: str) -> None:
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[0:160, 0:200]
    image = np.stack([xx, yy, (xx + yy) // 2], axis=2) + rng.normal(0, 6, (160, 200, 3))
    image = np.clip(image, 0, 255).astype(np.uint8)
    image[40:90, 60:120] = rng.integers(0, 255, (50, 60, 3), dtype=np.uint8)
    fresh = compute_view(name, image)
    assert fresh.map is not None
    cache = ViewCache()
    cache.put("img", {name: compute_view(name, image)})
    cache.focus("another image")
    cached = cache.get("img", name)
    assert cached.summary == fresh.summary
    assert cached.record()["details"] == fresh.record()["details"]
    assert np.array_equal(heatmap_rgb(cached.map, "viridis"), heatmap_rgb(fresh.map, "viridis"))
    for mode in ("heatmap", "outline", "mask"):
        a = overlay_rgb(image, cached.map, 0.5, 0.5, "inferno", mode)
        b = overlay_rgb(image, fresh.map, 0.5, 0.5, "inferno", mode)
        # A threshold moves only pixels within half a level of it.
        near = np.abs(fresh.map - 0.5) <= 0.5 / 255
        if mode != "heatmap":
            differs = np.any(a != b, axis=2)
            assert not (differs & ~_grown(near, 4)).any()
        else:
            assert np.array_equal(a, b)


def _grown(mask: np.ndarray, px: int) -> np.ndarray:
    """``mask`` with every pixel within ``px`` of a set one set (outlines move with it)."""
    import cv2

    kernel = np.ones((2 * px + 1, 2 * px + 1), np.uint8)
    return cv2.dilate(mask.astype(np.uint8), kernel) > 0
