"""The faster computations inside the clone and ELA views give what the plain ones give."""

import cv2
import numpy as np

from ncl_core.views import clone, ela

from imaging import pattern


def test_row_order_is_the_lexicographic_order_of_rounded_rows():
    rng = np.random.default_rng(0)
    # Few distinct levels, so that many rows tie on their first columns (and some on all).
    values = rng.integers(0, 4, (5000, 16)).astype(np.float32) * 60 + rng.normal(0, 0.3, (5000, 16))
    values = np.clip(values, 0, 255).astype(np.float32)
    values[100] = values[200]  # rows equal throughout keep their order (a stable sort)
    expected = np.lexsort(np.round(values).T[::-1])
    assert np.array_equal(clone._row_order(values), expected)
    # Out of the byte range, the plain sort.
    assert np.array_equal(clone._row_order(values - 10), np.lexsort(np.round(values - 10).T[::-1]))


def test_close_rows_match_the_max_difference_test():
    rng = np.random.default_rng(1)
    flat = np.round(rng.normal(100, 1.0, (4000, 16))).astype(np.float32)
    flat = flat[np.lexsort(np.round(flat).T[::-1])]
    columns = np.ascontiguousarray(flat.T)
    for k in (1, 3, 6):
        expected = np.flatnonzero(np.abs(flat[k:] - flat[:-k]).max(axis=1) <= clone.BLOCK_TOL)
        assert expected.size > 0
        assert np.array_equal(clone._close_rows(columns, k), expected)


def test_hull_grown_on_a_crop_equals_the_whole_image_transform():
    rng = np.random.default_rng(2)
    shape = (300, 400)
    for points, pad in (
        (rng.uniform(120, 200, (12, 2)), 9),
        (rng.uniform(0, 60, (8, 2)), 25),  # at the image's corner
        (np.array([[390.0, 290.0], [399.0, 299.0], [395.0, 280.0]]), 40),
    ):
        mask = np.zeros(shape, np.uint8)
        hull = cv2.convexHull(points.astype(np.float32)).astype(np.int32)
        cv2.fillConvexPoly(mask, hull, 1)
        expected = cv2.distanceTransform(1 - mask, cv2.DIST_L2, 3) <= pad
        assert np.array_equal(clone._hull_mask(points, shape, pad), expected)


def test_error_levels_take_the_largest_channel_error():
    image = pattern(120, 160, seed=5)
    resaved = ela._resave(image, 80)
    err = cv2.absdiff(image, resaved).max(axis=2).astype(np.float32)
    expected = cv2.blur(err, (8, 8), borderType=cv2.BORDER_REFLECT)
    assert np.array_equal(ela.error_levels(image, 80, 8), expected)
