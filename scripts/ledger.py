#!/usr/bin/env python3
"""The training ledger: one entry per training segment, in ``docs/training_log.json`` (the
record) and ``docs/TRAINING_LOG.md`` (rendered from it, never edited by hand).

    # after a segment: what it started from, what it ran, what it measured before and after
    .venv/bin/python scripts/ledger.py add --run RUN_DIR --model MODEL_FILE \\
        --before BENCH_BEFORE.json --after BENCH_AFTER.json --code-commit COMMIT \\
        --data "photo pool, 195 train photos" --decision "not shipped: ..." [--note TEXT] \\
        [--pretrain PRETRAIN_RUN_DIR]    # a from-scratch segment that began with `pretrain`
    # after averaging models of the line (ncl-forensics average, then calibrate)
    .venv/bin/python scripts/ledger.py average --model CALIBRATED_AVERAGE --start-sha SHA \\
        --before BENCH_BEFORE.json --after BENCH_AFTER.json --code-commit COMMIT --decision "..."
    .venv/bin/python scripts/ledger.py render

``BENCH_*.json`` are ``bench/bench_yardstick.py --json`` outputs holding the starting model
and the resulting one (found by their SHA-256). Steps, images seen and wall time come from
the run's ``events.jsonl``; the recipe from its ``config.json``. An *average* entry trains
nothing (no steps, no images): its recipe is the models averaged and their weights, read from
the averaged model file itself.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
LEDGER = REPO / "docs" / "training_log.json"
PAGE = REPO / "docs" / "TRAINING_LOG.md"
# The model card carries the same curve, between these two lines (rewritten by ``render``).
CARD = REPO / "resources" / "models" / "MODEL_CARD.md"
CURVE_BEGIN, CURVE_END = "<!-- curve: scripts/ledger.py render -->", "<!-- end of curve -->"
RECIPE_KEYS = (
    "size",
    "batch_size",
    "lr",
    "schedule_by_time",
    "time_limit_min",
    "synthetic_authentic",
    "synthetic_length",
    "seed",
    "ema_decay",
    "val_mode",
    "head_lr_mult",
    "freeze_bn",
    "freeze_backbone",
    "synthetic_options",
)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _figures(bench: dict[str, Any], model_sha: str) -> dict[str, Any]:
    """The summary figures of the model with this hash in a bench_yardstick JSON."""
    for result in bench["results"].values():
        if result.get("sha256") == model_sha:
            s = result["summary"]
            out: dict[str, Any] = {"image_auc": s.get("image_auc")}
            for name, m in s.items():
                if not isinstance(m, dict):
                    continue
                keep = ("f1", "floor", "best_f1", "auc", "flagged_median", "false_alarm")
                out[name] = {k: round(m[k], 4) for k in keep if k in m}
            return out
    raise SystemExit(f"no model with SHA-256 {model_sha[:12]}… in the benchmark file")


def run_summary(run: Path) -> dict[str, Any]:
    events = []
    for line in (run / "events.jsonl").read_text().splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue  # a line cut short when the run was killed (or its disk filled)
    start = next(e for e in events if e["type"] == "start")
    steps = [e for e in events if e["type"] == "step"]
    end = events[-1]
    t0 = dt.datetime.fromisoformat(start["time"])
    t1 = dt.datetime.fromisoformat(end["time"])
    config = json.loads((run / "config.json").read_text())
    last = steps[-1]["step"] if steps else 0
    first = steps[0]["step"] - 1 if steps else 0
    return {
        "started": start["time"],
        "ended": end["time"],
        # A run stopped from outside (the session's end, a kill) logs no end event.
        "how_it_ended": end["type"]
        if end["type"] in ("finished", "cancelled", "failed")
        else "stopped",
        "device": start.get("device"),
        "amp": start.get("amp"),
        "steps": last - first,
        "images_seen": (last - first) * config["batch_size"],
        "wall_min": round((t1 - t0).total_seconds() / 60, 1),
        "recipe": {
            **{k: config[k] for k in RECIPE_KEYS if k in config},  # a run's own settings
            "loss": config["loss"],
            "backbone": config["model"]["backbone"],
        },
    }


PRETRAIN_KEYS = ("crop", "batch_size", "lr", "tau", "hard_weight", "time_limit_min", "seed")


def pretrain_summary(run: Path, encoder: Path | None = None) -> dict[str, Any]:
    """The self-supervised stage a segment began with (``ncl-forensics pretrain``'s run
    folder): its settings from ``pretrain-config.json``; its steps and minutes from the
    summary inside the encoder it wrote (with the encoder's hash), else from the last line of
    ``pretrain.jsonl`` (logged every few steps)."""
    config = json.loads((run / "pretrain-config.json").read_text())
    rows = []
    for line in (run / "pretrain.jsonl").read_text().splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue  # a line cut short when the run was stopped
        if "step" in row:
            rows.append(row)
    last = rows[-1] if rows else {"step": 0, "elapsed_s": 0.0}
    steps, minutes = last["step"], last["elapsed_s"] / 60
    if encoder is not None:
        from safetensors import safe_open

        with safe_open(str(encoder), "pt") as fh:
            written = json.loads((fh.metadata() or {}).get("pretrain", "{}"))
        steps = written.get("steps", steps)
        minutes = written.get("cpu_or_gpu_minutes", minutes)
    out: dict[str, Any] = {
        "steps": steps,
        "crops_seen": steps * config["batch_size"] * 3,  # three crops a region
        "wall_min": round(minutes, 1),
        "recipe": {
            **{k: config[k] for k in PRETRAIN_KEYS if k in config},
            "noise_stem": config["model"]["noise_stem"],
        },
    }
    if encoder is not None:
        out["encoder_sha256"] = sha256(encoder)
    return out


def _append(entry: dict[str, Any]) -> None:
    """``entry`` as the ledger's next segment (its number is its place), the pages rendered."""
    ledger = json.loads(LEDGER.read_text()) if LEDGER.exists() else {"segments": []}
    ledger["segments"].append({"segment": len(ledger["segments"]), **entry})
    LEDGER.write_text(json.dumps(ledger, indent=1) + "\n")
    render()


def add(args: argparse.Namespace) -> None:
    run = run_summary(args.run)
    config = json.loads((args.run / "config.json").read_text())
    start_model = Path(config["base_model"]) if config.get("base_model") else None
    start_sha = args.start_sha or (sha256(start_model) if start_model else None)
    result_sha = sha256(args.model)
    before = json.loads(args.before.read_text())
    after = json.loads(args.after.read_text())
    pretrain = None
    if args.pretrain is not None:
        encoder = Path(config["init_encoder"]) if config.get("init_encoder") else None
        pretrain = pretrain_summary(args.pretrain, encoder)
    stage_min = pretrain["wall_min"] if pretrain else 0.0
    entry = {
        "start_model_sha256": start_sha,
        "result_model_sha256": result_sha,
        "code_commit": args.code_commit,
        "data": args.data,
        "cpu": after.get("cpu"),
        "cores": args.cores,
        "core_min": round((run["wall_min"] + stage_min) * args.cores, 1),
        **run,
        **({"pretrain": pretrain} if pretrain else {}),
        "before": _figures(before, start_sha) if start_sha else None,
        "after": _figures(after, result_sha),
        "decision": args.decision,
        "note": args.note,
    }
    _append(entry)


def add_average(args: argparse.Namespace) -> None:
    """An entry for a model made by averaging models of the line (``ncl-forensics average``):
    no training, so no steps or images; the ingredients from the model file's metadata."""
    from ncl_core.models.modelfile import read_model_info

    info = read_model_info(args.model)
    made_of = info.trained_on.get("average_of")
    if not made_of:
        raise SystemExit(f"{args.model}: not an average of models (no average_of in its metadata)")
    before = json.loads(args.before.read_text())
    after = json.loads(args.after.read_text())
    result_sha = sha256(args.model)
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    entry = {
        "kind": "average",
        "start_model_sha256": args.start_sha,
        "result_model_sha256": result_sha,
        "code_commit": args.code_commit,
        "data": args.data or f"no training: the weight average of {len(made_of)} models",
        "cpu": after.get("cpu"),
        "cores": 0,
        "core_min": 0,
        "started": now,
        "ended": now,
        "how_it_ended": "averaged",
        "device": None,
        "amp": None,
        "steps": 0,
        "images_seen": 0,
        "wall_min": 0,
        "recipe": {
            "average_of": [
                {"name": m.get("name"), "sha256": m.get("sha256"), "weight": m.get("weight")}
                for m in made_of
            ]
        },
        "before": _figures(before, args.start_sha),
        "after": _figures(after, result_sha),
        "decision": args.decision,
        "note": args.note,
    }
    _append(entry)


def _f(value: Any, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _row(figs: dict[str, Any] | None) -> str:
    if not figs:
        return "— | — | — | — | — | — | —"
    nist = figs.get("nist16-B", {})
    offcentre = figs.get("nist16-B-offcentre", {})
    native = figs.get("authentic-native-B", {})
    pub = figs.get("authentic-published-B", {})
    more = [
        figs.get(k, {}).get("auc")
        for k in ("copymove-comofod", "copymove-noso", "removal-inpainting")
    ]
    return " | ".join(
        [
            f"{_f(nist.get('f1'))} / {_f(nist.get('floor'))}",
            _f(nist.get("auc")),
            _f(offcentre.get("auc")),
            " / ".join(_f(v) for v in more),
            f"{_f(native.get('flagged_median'))} / {_f(pub.get('flagged_median'))}",
            f"{_f(native.get('false_alarm'), 2)} / {_f(pub.get('false_alarm'), 2)}",
            _f(figs.get("image_auc")),
        ]
    )


def render() -> None:
    ledger = json.loads(LEDGER.read_text())
    lines = [
        "# Training ledger",
        "",
        "Every training segment of the bundled model's line, in order: what it started from, what",
        "it ran, and what it measured before and after on the yardsticks, held-out halves only",
        "(NIST16 half B; the copy-move and removal sets; authentic photos at native resolution and",
        "as evidence arrives, half B). Rendered by `scripts/ledger.py render` from",
        "[training_log.json](training_log.json); figures by `bench/bench_yardstick.py` (resize",
        "mode, the model's default). F1 is at 0.5 beside the all-manipulated floor; *flagged* is",
        "the median share of an authentic photo marked at 0.5; *false alarms* the share of",
        "authentic photos whose calibrated finding says manipulation; *off-centre* is NIST16-B",
        "cropped at random (60 % of each side), where a position prior alone scores 0.49 (0.72",
        "on the whole images).",
        "",
        "## Segments",
        "",
    ]
    total_images = 0
    curve = []
    for s in ledger["segments"]:
        total_images += s.get("images_seen") or 0
        curve.append((total_images, s))
        lines += [
            f"### Segment {s['segment']}: {s['started'][:10]}, {s.get('how_it_ended', '')}",
            "",
            f"- start model `{(s.get('start_model_sha256') or '—')[:16]}`, result `"
            f"{s['result_model_sha256'][:16]}`; code {s.get('code_commit') or '—'}",
            f"- data: {s.get('data')}",
            f"- {s.get('steps')} steps, {s.get('images_seen')} images, {s.get('wall_min')} min wall "
            f"on {s.get('cpu')} ({s.get('device')}, {s.get('amp')}), {s.get('core_min')} core-min"
            if s.get("kind") != "average"
            else "- no training: the weights of the models below averaged",
            f"- recipe: `{json.dumps(s.get('recipe'), sort_keys=True)}`",
        ]
        if s.get("pretrain"):
            stage = s["pretrain"]
            lines.append(
                f"- first the self-supervised stage (`ncl-forensics pretrain`, counted in the "
                f"core-min): {stage['steps']} steps, {stage['crops_seen']} crops, "
                f"{stage['wall_min']} min; recipe `{json.dumps(stage['recipe'], sort_keys=True)}`"
            )
        lines += [
            f"- decision: {s.get('decision')}",
        ]
        if s.get("note"):
            lines.append(f"- note: {s['note']}")
        lines += [
            "",
            "| | NIST16-B F1 / floor | NIST16-B AUC | off-centre AUC | copy-move CoMoFoD / NoSo, "
            "removal AUC | flagged native / published | false alarms native / published "
            "| image AUC |",
            "|---|---|---|---|---|---|---|---|",
            f"| before | {_row(s.get('before'))} |",
            f"| after | {_row(s.get('after'))} |",
            "",
        ]
    table = [
        "| images seen | segment | NIST16-B F1 / floor | NIST16-B AUC | off-centre AUC | copy-move "
        "CoMoFoD / NoSo, removal AUC | flagged native / published | false alarms native / "
        "published | image AUC |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for images, s in curve:
        table.append(f"| {images:,} | {s['segment']} | {_row(s.get('after'))} |")
    lines += [
        "## The curve",
        "",
        "Images seen in training (all segments so far) against the figures after each segment.",
        "",
        *table,
    ]
    PAGE.write_text("\n".join(lines) + "\n")
    _write_card_curve(table)


def _write_card_curve(table: list[str]) -> None:
    """The curve in the model card, between its two marker lines (left alone without them)."""
    text = CARD.read_text()
    if CURVE_BEGIN not in text or CURVE_END not in text:
        print(f"{CARD.name}: no curve markers, left as it is", file=sys.stderr)
        return
    head, rest = text.split(CURVE_BEGIN, 1)
    _, tail = rest.split(CURVE_END, 1)
    CARD.write_text(head + CURVE_BEGIN + "\n" + "\n".join(table) + "\n" + CURVE_END + tail)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("add", help="record a finished segment")
    p.add_argument("--run", type=Path, required=True, help="the segment's run folder")
    p.add_argument("--model", type=Path, required=True, help="the model file it produced")
    p.add_argument("--before", type=Path, required=True)
    p.add_argument("--after", type=Path, required=True)
    p.add_argument("--start-sha", help="the starting model's SHA-256 (default: hash base_model)")
    p.add_argument("--code-commit", required=True)
    p.add_argument("--data", required=True, help="what it trained on, in words")
    p.add_argument("--cores", type=int, default=2, help="cores the segment held")
    p.add_argument("--decision", required=True)
    p.add_argument("--note")
    p.add_argument(
        "--pretrain",
        type=Path,
        help="the run folder of the self-supervised stage the segment began with",
    )
    p = sub.add_parser("average", help="record a model made by averaging models of the line")
    p.add_argument("--model", type=Path, required=True, help="the averaged model, calibrated")
    p.add_argument("--start-sha", required=True, help="the bundled model's SHA-256 before it")
    p.add_argument("--before", type=Path, required=True)
    p.add_argument("--after", type=Path, required=True)
    p.add_argument("--code-commit", required=True)
    p.add_argument("--data", help="in words (default: the weight average of N models)")
    p.add_argument("--decision", required=True)
    p.add_argument("--note")
    sub.add_parser("render", help="write docs/TRAINING_LOG.md from docs/training_log.json")
    args = parser.parse_args(argv)
    if args.command == "add":
        add(args)
    elif args.command == "average":
        add_average(args)
    else:
        render()
    return 0


if __name__ == "__main__":
    sys.exit(main())
