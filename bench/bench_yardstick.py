"""A model on the yardsticks, as an analyst would meet it: real forgeries and authentic photos.

For each model (a model file; ``ela``, error level analysis with no training; ``centre``, a map
that is only the distance to the border, what a pure position prior scores; ``texture``, the
local grey-level spread, what busy content alone scores) and each
set of a yardstick folder (``scripts/build_yardsticks.py`` makes it; ``--extra`` adds labeled
sets such as the copy-move and removal sets), per image:

- forgeries: F1 at 0.5, best F1, the all-manipulated floor, pixel AUC, and the quiet F1: F1 at
  the threshold where the median authentic photo (all authentic sets together) has at most 5 %
  of its pixels flagged -- what the map localises once it stops marking untouched photos;
- authentic photos: the flagged area (pixels at or above 0.5), whether the calibrated finding
  fires (image score at or above the model's calibrated threshold; 0.5 when it has none), and
  the mean probability by distance to the border (the position prior);
- the image score, for the image AUC of forgeries against authentic photos.

Every mean comes with a 95 % bootstrap interval over images; with two models, the paired
bootstrap interval of their difference (the second minus the first) says whether a gain is
more than the noise. Per-image rows go to ``--json``, so any later comparison needs no rerun.

    .venv/bin/python bench/bench_yardstick.py --yard YARD --extra MORE_REAL/* \
        --models resources/models/ncl-starter.safetensors NEW.safetensors ela --json OUT.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ncl_core.analysis import image_score
from ncl_core.data.datasets import scan_dataset
from ncl_core.data.io import ImageReadError
from ncl_core.evaluation.artifacts import border_distance
from ncl_core.evaluation.evaluate import read_pair
from ncl_core.evaluation.metrics import (
    QUIET_BINS,
    _flat_pair,
    _pixel_metrics,
    bin_counts,
    f1_at_bin,
    image_metrics,
    quiet_bin,
)
from ncl_core.evidence.image import Evidence

from machine import cpu_name

# Held-out halves: A selects and calibrates, B is what is reported.
DEFAULT_SETS = (
    "nist16-B",
    "authentic-native-B",
    "authentic-published-B",
)
BORDER_BANDS = (0.0, 0.05, 0.15, 0.3, 0.5)  # distance to the nearest edge / shorter side


def border_profile(prob: np.ndarray) -> list[float]:
    """Mean probability in bands of distance to the nearest image edge (fraction of the
    shorter side): the outermost band first, the centre last."""
    dist = border_distance(*prob.shape) / min(prob.shape)
    out = []
    for lo, hi in zip(BORDER_BANDS[:-1], BORDER_BANDS[1:]):
        band = (dist >= lo) & (dist < hi)
        out.append(float(prob[band].mean()) if band.any() else math.nan)
    return out


class Scorer:
    """A model or a classic map: ``prob(image) -> (map, score)``."""

    def __init__(self, spec: str, mode: str, precision: str = "fp32") -> None:
        self.spec = spec
        self.predictor = None
        self.threshold = 0.5
        self.calibrated = False
        self.sha = None
        if spec == "centre":  # position alone: brighter the farther from the border
            self.view = None
            self.name = "centre prior (no image content)"
            return
        if spec == "texture":  # content alone: brighter where the image is busier
            self.view = None
            self.name = "texture (local grey-level spread)"
            return
        self.view_params: dict[str, Any] = {}
        name, _, weights = spec.partition("=")  # combined=WEIGHTS.json: other combiner weights
        if name in ("ela", "noise", "dq", "clone", "combined"):  # a view of ncl_core.views, by name
            from ncl_core.views import VIEWS

            self.view = VIEWS[name]
            self.name = "ELA" if name == "ela" else VIEWS[name].title
            if name == "combined":  # with the bundled model's map, as the app gives it
                from ncl_core.inference.predictor import Predictor

                self.model = Predictor.load(
                    "resources/models/ncl-starter.safetensors", device="cpu"
                )
                self.name += f" ({Path(weights).name})" if weights else ""
                self.view_params = {"weights_path": weights or None}
                from ncl_core.views.combined import load_weights

                cal = load_weights(weights or None)["with_model"].get("image_threshold")
                self.calibrated = cal is not None  # its finding: the image score's threshold
                self.threshold = float(cal) if cal is not None else 0.5
            return
        from ncl_core.inference.predictor import InferenceSettings, Predictor

        self.predictor = Predictor.load(spec, device="cpu")
        self.settings = InferenceSettings(mode=mode, precision=precision)
        eff = self.predictor.effective(self.predictor.resolve(self.settings))
        cal = eff.get("score_threshold")
        self.calibrated = cal is not None
        self.threshold = float(cal) if cal is not None else 0.5
        self.name = Path(spec).stem
        self.sha = self.predictor.model_sha256

    def __call__(self, image: np.ndarray, path: Path) -> tuple[np.ndarray, float]:
        if self.spec == "centre":
            h, w = image.shape[:2]
            prob = (2 * border_distance(h, w) / min(h, w)).astype(np.float32)
            return prob, image_score(prob)
        if self.spec == "texture":
            import cv2

            from ncl_core.data.synth.regions import local_texture

            h, w = image.shape[:2]
            spread = local_texture(cv2.resize(image, (256, 256), interpolation=cv2.INTER_AREA))
            prob = cv2.resize(spread / max(float(spread.max()), 1e-6), (w, h))
            return prob.astype(np.float32), image_score(prob)
        if self.predictor is None:
            # With the file's bytes, as the app and analyze give them (ELA reads a JPEG's
            # quantisation tables to choose its quality).
            from ncl_core.views import compute_view

            evidence = Evidence(image, path.read_bytes(), path.name, path=path)
            params = dict(self.view_params)
            if self.view.name == "combined":
                params["model_map"] = self.model.analyze(evidence).probability
            found = compute_view(self.view.name, evidence, **params)
            if found.map is None:  # not applicable (a DQ map of a PNG): a blank map
                prob = np.zeros(image.shape[:2], np.float32)
            else:
                prob = found.map.astype(np.float32)
            score = found.details.get("image_score")  # the view's own, where it has one
            return prob, float(score) if score is not None else image_score(prob)
        analysis = self.predictor.analyze(image, settings=self.settings)
        return analysis.probability, float(analysis.score)


def rows_for(scorer: Scorer, sets: dict[str, Path]) -> list[dict[str, Any]]:
    import cv2

    rows = []
    for set_name, root in sets.items():
        for sample in scan_dataset(root).samples:
            try:
                image, gt = read_pair(sample)
            except ImageReadError as exc:
                print(f"skipped {sample.image}: {exc}", file=sys.stderr)
                continue
            prob, score = scorer(image, sample.image)
            h, w = gt.shape
            if prob.shape != (h, w):
                prob = cv2.resize(prob, (w, h), interpolation=cv2.INTER_LINEAR)
            row: dict[str, Any] = {
                "set": set_name,
                "image": sample.image.name,
                "tampered": bool(gt.any()),
                "score": score,
                "flagged": float((prob >= 0.5).mean()),
            }
            p, g = _flat_pair(prob, gt)
            row["hist"] = bin_counts(p, g).tolist()  # every threshold, afterwards
            if row["tampered"]:
                m = _pixel_metrics(p, g, 0.5)
                row.update(f1=m.f1, best_f1=m.best_f1, floor=m.floor_f1, auc=m.auc, iou=m.iou)
            else:
                row["border"] = border_profile(prob)
            rows.append(row)
    return rows


def _boot(values: np.ndarray, stat, n: int = 2000, seed: int = 0) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(values), (n, len(values)))
    stats = np.array([stat(values[i]) for i in idx])
    return float(np.percentile(stats, 2.5)), float(np.percentile(stats, 97.5))


def summarize(rows: list[dict[str, Any]], threshold: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    # The quiet threshold: where the median authentic photo (every authentic set together) has
    # at most 5 % flagged; each forgery set's F1 there is its quiet F1.
    authentic_hists = [r["hist"] for r in rows if not r["tampered"]]
    quiet = quiet_bin(np.array(authentic_hists)) if authentic_hists else None
    if quiet is not None:
        out["quiet_threshold"] = quiet / QUIET_BINS
    for set_name in dict.fromkeys(r["set"] for r in rows):
        part = [r for r in rows if r["set"] == set_name]
        tampered = [r for r in part if r["tampered"]]
        auth = [r for r in part if not r["tampered"]]
        s: dict[str, Any] = {"n": len(part)}
        if tampered:
            for key in ("f1", "best_f1", "floor", "auc"):
                v = np.array([r[key] for r in tampered if not math.isnan(r[key])], float)
                s[key] = float(v.mean())
                if key in ("f1", "auc"):
                    s[key + "_ci"] = _boot(v, np.mean)
            if quiet is not None:
                for r in tampered:  # per image, for the paired comparison too
                    r["quiet_f1"] = f1_at_bin(np.array(r["hist"]), quiet)
                v = np.array([r["quiet_f1"] for r in tampered])
                s["quiet_f1"], s["quiet_f1_ci"] = float(v.mean()), _boot(v, np.mean)
        if auth:
            flagged = np.array([r["flagged"] for r in auth])
            alarms = np.array([r["score"] >= threshold for r in auth], float)
            s["flagged_median"] = float(np.median(flagged))
            s["flagged_median_ci"] = _boot(flagged, np.median)
            s["flagged_p90"] = float(np.percentile(flagged, 90))
            s["false_alarm"] = float(alarms.mean())
            s["false_alarm_ci"] = _boot(alarms, np.mean)
            s["border_profile"] = np.nanmean([r["border"] for r in auth], axis=0).tolist()
        out[set_name] = s
    forged = [r for r in rows if r["tampered"] and r["set"] == "nist16-B"]
    auth = [r for r in rows if not r["tampered"]]
    if forged and auth:
        scores = [r["score"] for r in forged + auth]
        labels = [True] * len(forged) + [False] * len(auth)
        out["image_auc"] = image_metrics(scores, labels)["auc"]
    return out


def paired(a: list[dict[str, Any]], b: list[dict[str, Any]], n: int = 2000) -> dict[str, Any]:
    """Paired bootstrap of b - a per set: pixel AUC and F1 (forgeries), flagged area (authentic)."""
    key = {(r["set"], r["image"]): r for r in a}
    out: dict[str, Any] = {}
    rng = np.random.default_rng(1)
    for set_name in dict.fromkeys(r["set"] for r in b):
        pairs = [(key[(r["set"], r["image"])], r) for r in b if r["set"] == set_name]
        pairs = [(x, y) for x, y in pairs if (x["set"], x["image"]) in key]
        if not pairs:
            continue
        res: dict[str, Any] = {}
        metrics = ("auc", "f1") if pairs[0][0]["tampered"] else ("flagged",)
        if "quiet_f1" in pairs[0][0] and "quiet_f1" in pairs[0][1]:
            metrics += ("quiet_f1",)
        for m in metrics:
            d = np.array(
                [y[m] - x[m] for x, y in pairs if not (math.isnan(x[m]) or math.isnan(y[m]))]
            )
            idx = rng.integers(0, len(d), (n, len(d)))
            means = d[idx].mean(axis=1)
            res[m] = {
                "mean_diff": float(d.mean()),
                "ci": [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))],
            }
        out[set_name] = res
    return out


def _fmt(v: Any) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--yard", type=Path, required=True, help="scripts/build_yardsticks.py output"
    )
    parser.add_argument("--sets", nargs="+", default=list(DEFAULT_SETS))
    parser.add_argument("--extra", nargs="*", default=[], help="more labeled sets (folders)")
    parser.add_argument(
        "--models",
        nargs="+",
        required=True,
        help="model files; 'ela' (error level analysis), 'noise', 'dq', 'clone' or 'combined' (those "
        "forensic views; a map a view cannot make scores as a blank one), 'centre' (a map of the distance to "
        "the border: what position alone scores) or 'texture' (local grey-level spread at 256 "
        "px: what busy content alone scores)",
    )
    parser.add_argument("--mode", default="auto")
    parser.add_argument(
        "--precision",
        default="fp32",
        choices=("auto", "fp32", "bf16"),
        help="the models' arithmetic (default fp32: figures that do not depend on the CPU)",
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    sets = {name: args.yard / name for name in args.sets}
    sets.update({Path(p).name: Path(p) for p in args.extra})
    results = {}
    t0 = time.perf_counter()
    for spec in args.models:
        scorer = Scorer(spec, args.mode, args.precision)
        rows = rows_for(scorer, sets)
        results[spec] = {
            "name": scorer.name,
            "sha256": scorer.sha,
            "threshold": scorer.threshold,
            "calibrated": scorer.calibrated,
            "summary": summarize(rows, scorer.threshold),
            "rows": rows,
        }
    print(f"{cpu_name()}; {time.perf_counter() - t0:.0f} s; mode {args.mode}")
    for r in results.values():
        s = r["summary"]
        print(
            f"\n== {r['name']} (finding threshold {r['threshold']:.3f}"
            f"{'' if r['calibrated'] else ', uncalibrated'}); image AUC {_fmt(s.get('image_auc'))}"
            f"; quiet threshold {_fmt(s.get('quiet_threshold'))}"
        )
        for set_name, m in s.items():
            if not isinstance(m, dict):
                continue
            if "auc" in m:
                print(
                    f"  {set_name:<24} n {m['n']:>4}  F1 {_fmt(m['f1'])} "
                    f"[{_fmt(m['f1_ci'][0])}, {_fmt(m['f1_ci'][1])}]  floor {_fmt(m['floor'])}  "
                    f"bestF1 {_fmt(m['best_f1'])}  AUC {_fmt(m['auc'])} "
                    f"[{_fmt(m['auc_ci'][0])}, {_fmt(m['auc_ci'][1])}]  quietF1 "
                    f"{_fmt(m.get('quiet_f1'))}"
                )
            if "flagged_median" in m:
                print(
                    f"  {set_name:<24} n {m['n']:>4}  flagged median {_fmt(m['flagged_median'])}"
                    f" p90 {_fmt(m['flagged_p90'])}  false alarms {_fmt(m['false_alarm'])}  "
                    f"border->centre {' '.join(_fmt(v) for v in m['border_profile'])}"
                )
    comparisons = {}
    specs = list(results)
    for other in specs[1:]:
        if {specs[0], other} & {"centre", "texture"}:
            continue
        comparisons[other] = paired(results[specs[0]]["rows"], results[other]["rows"])
        print(f"\n== {results[other]['name']} minus {results[specs[0]]['name']} (paired, 95 %)")
        for set_name, res in comparisons[other].items():
            cells = "  ".join(
                f"{m} {_fmt(v['mean_diff'])} [{_fmt(v['ci'][0])}, {_fmt(v['ci'][1])}]"
                for m, v in res.items()
            )
            print(f"  {set_name:<24} {cells}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "cpu": cpu_name(),
                    "mode": args.mode,
                    "sets": {k: str(v) for k, v in sets.items()},
                    "results": results,
                    "paired": comparisons,
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
