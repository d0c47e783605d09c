"""Measures of structure in a probability map that comes from the method, not from the image.

Pure NumPy, for tests and benchmarks. On an authentic photo a good map has neither:

- ``border_profile``: mean probability by bands of distance to the nearest image edge. A map
  without a positional prior has a flat profile; a network that learnt "the centre of a crop is
  where forgeries are" rises from the border inwards.
- ``periodic_energy``: how much of the map's energy at a pitch (a tile stride, the 16 px decoder
  stride, the 32 px patch grid) and its harmonics stands out above the neighbouring frequencies.
  Stripes or a grid at that pitch score near 1, a map without them near 0.
"""

from __future__ import annotations

import numpy as np

__all__ = ["border_profile", "periodic_energy", "line_power"]

# Hann window main lobe: +-2 bins of 1 / N. Neighbouring frequencies lie at least this far from
# every harmonic; the run of neighbours beside each peak starts a little further out.
_LOBE_BINS = 2.0
_FIRST_NEIGHBOUR_BINS = 2.5
_NEIGHBOURS = 6
# Harmonics nearer DC than this many natural bins are left out: there a map's large-scale
# content (a few blobs) makes the spectrum too steep and too noisy to tell a peak.
_MIN_BINS = 8
# Spectra are evaluated on a grid this many times finer than 1 / N (zero padding), so that a
# pitch that does not divide the line length is still read at its own frequency.
_OVERSAMPLE = 8


def border_distance(height: int, width: int) -> np.ndarray:
    """Each pixel's distance in px to the nearest edge, ``min(y, x, h-1-y, w-1-x)``."""
    ys = np.minimum(np.arange(height), np.arange(height)[::-1])
    xs = np.minimum(np.arange(width), np.arange(width)[::-1])
    return np.minimum(ys[:, None], xs[None, :])


def border_profile(prob: np.ndarray, band: int = 16, bands: int | None = None) -> list[float]:
    """Mean of ``prob`` by bands of distance to the nearest edge, border first.

    Band ``i`` holds the pixels whose distance to the nearest edge (``min(y, x, h-1-y, w-1-x)``,
    0 on the outermost ring) lies in ``[i * band, (i + 1) * band)``. ``bands`` limits the number
    of bands (default: all, up to the centre; the innermost band may be narrower). A map without
    a positional prior gives a flat list; a centre-bright one a rising list.
    """
    prob = np.asarray(prob, dtype=np.float64)
    if prob.ndim != 2 or prob.size == 0:
        raise ValueError(f"expected a non-empty 2-D map, got shape {prob.shape}")
    if band < 1:
        raise ValueError("band must be at least 1 px")
    index = border_distance(*prob.shape) // band
    count = int(index.max()) + 1 if bands is None else min(int(bands), int(index.max()) + 1)
    sums = np.bincount(index.ravel(), weights=prob.ravel())[:count]
    sizes = np.bincount(index.ravel())[:count]
    return [float(s / n) for s, n in zip(sums, sizes)]


def line_power(prob: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean power spectrum of the lines of ``prob`` that run along ``axis`` (1: the rows, whose
    spectra show vertical stripes; 0: the columns, horizontal stripes).

    Each line has its own mean removed and a Hann window applied, and is zero-padded to
    ``_OVERSAMPLE`` times its length. Returns ``(frequencies in cycles per pixel, power)``.
    """
    lines = np.moveaxis(np.asarray(prob, dtype=np.float64), axis, -1)
    n = lines.shape[-1]
    lines = lines - lines.mean(axis=-1, keepdims=True)
    lines = lines * np.hanning(n + 2)[1:-1]  # no zero end points: every pixel counts
    size = _OVERSAMPLE * n
    spectrum = np.fft.rfft(lines.reshape(-1, n), n=size, axis=-1)
    power = (spectrum.real**2 + spectrum.imag**2).mean(axis=0)
    return np.fft.rfftfreq(size), power


def _background(near: np.ndarray, level: np.ndarray, f: float):
    """The neighbours' level as a function of frequency: a parabola in log power fitted to
    the neighbours (least squares; a map's spectrum falls steeply and curves away from DC,
    where a flat level or a straight line would misjudge the level under the peak), a straight
    line when there are too few of them for a parabola, their median when they lie all on one
    side of ``f``."""
    logs = np.log(np.maximum(level, 1e-300))
    below, above = near < f, near > f
    if not below.any() or not above.any():
        flat = float(np.exp(np.median(logs)))
        return lambda x: np.full_like(x, flat)
    degree = 2 if near.size >= 6 and below.sum() >= 2 and above.sum() >= 2 else 1
    coefficients = np.polyfit(near - f, logs, degree)
    return lambda x: np.exp(np.polyval(coefficients, x - f))


def _harmonic_excess(freqs: np.ndarray, power: np.ndarray, n: int, pitch: float) -> float:
    """Energy at the harmonics of ``pitch`` above the neighbouring frequencies' level, on one
    one-sided spectrum of lines of length n (same units as ``power.sum()``)."""
    step = freqs[1]
    bin_width = 1.0 / n  # natural resolution of an n-sample line
    fundamental = 1.0 / pitch
    harmonics = fundamental * np.arange(1, int(0.5 / fundamental) + 1)
    # A harmonic's energy: the window's main lobe around it, or half-way to the next harmonic
    # when they are closer than that.
    lobe = min(_LOBE_BINS * bin_width, fundamental / 2)
    offsets = bin_width * (_FIRST_NEIGHBOUR_BINS + np.arange(_NEIGHBOURS))
    excess = 0.0
    for f in harmonics:
        if f < _MIN_BINS * bin_width or f + lobe > 0.5:
            continue  # among the map's large-scale content (near DC), or past Nyquist
        # Neighbours: a run beside the peak and the comb's gaps half-way to the next
        # harmonics, outside every harmonic's main lobe and clear of DC and Nyquist.
        near = np.concatenate(
            [f - offsets, f + offsets, [f - fundamental / 2, f + fundamental / 2]]
        )
        distance = np.abs(near[:, None] - harmonics[None, :]).min(axis=1)
        near = near[(distance >= lobe - 1e-12) & (near >= _LOBE_BINS * bin_width) & (near <= 0.5)]
        if near.size == 0:
            continue
        lo_idx = int(np.ceil((f - lobe) / step))
        inside = power[lo_idx : int(np.floor((f + lobe) / step)) + 1]
        background = _background(near, power[np.rint(near / step).astype(int)], f)
        where = (lo_idx + np.arange(inside.size)) * step
        background = background(where)
        # Signed: a harmonic below its neighbours' level offsets one above it, so that the
        # random ups and downs of a spectrum without a grid add up to about nothing.
        excess += float((inside - background).sum())
    return excess


def periodic_energy(prob: np.ndarray, pitch: float) -> float:
    """Share of the map's energy (each line's mean removed) that is periodic at ``pitch`` px:
    at its harmonics ``k / pitch``, along rows and columns together, above the level of the
    neighbouring frequencies. In ``[0, 1]``.

    For each axis, ``line_power`` gives the mean power spectrum of the lines (each line's mean
    removed, Hann-windowed, oversampled 8 times). For every harmonic at least 8 natural bins
    ``1 / N`` from DC (nearer, a map's own large-scale content makes the spectrum too steep and
    too noisy) and below Nyquist, the power within the window's main lobe (+-2 bins, or
    half-way to the next harmonic when closer) is summed after subtracting the background:
    a parabola in log power fitted to the neighbouring frequencies (2.5 to 7.5 bins either side
    and the comb's gaps half-way to the next harmonics, all outside every harmonic's lobe).
    The signed sums over harmonics and both axes, divided by the two spectra's total energy
    (Parseval: the windowed lines' variance), clipped to ``[0, 1]``, give the result.

    Unchanged by the map's offset and scale. Stripes at ``pitch`` whose variance equals the
    rest of the map's score about 0.5, a pure grid near 1, faint stripes on a busy map near 0.
    Smooth random maps score below 0.05 at 16 and 32 px and up to about 0.1 at pitches whose
    first harmonics fall among their blobs (64 to 128 px on a 512 x 384 map): that is the
    measure's noise floor there. On lines shorter than ``8 * pitch`` the fundamental is left
    out and only higher harmonics count; lines shorter than 8 px are not measured (0).
    """
    prob = np.asarray(prob, dtype=np.float64)
    if prob.ndim != 2:
        raise ValueError(f"expected a 2-D map, got shape {prob.shape}")
    if pitch < 2:
        raise ValueError("pitch must be at least 2 px")
    excess = total = 0.0
    for axis in (0, 1):
        n = prob.shape[axis]
        if n < 8:
            continue
        freqs, power = line_power(prob, axis)
        # One-sided spectrum: every bin but DC and Nyquist stands for two, harmonics included.
        total += 2 * float(power[1:-1].sum()) + float(power[0] + power[-1])
        excess += 2 * _harmonic_excess(freqs, power, n, float(pitch))
    return min(max(excess / total, 0.0), 1.0) if total > 0 else 0.0
