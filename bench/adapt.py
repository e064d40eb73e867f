"""Does ``galaxalign adapt`` carry a model across renderers? Source: the classic sky, labelled; target:
the diverse sky, unlabelled (its labels are used only to score). The sim → sim-other pair stands in
for sim → real: it is the failure measured from outside (a model of our first renderer at chance on
another simulator's galaxies), and here the target's truth is known.

    python bench/adapt.py            # 2 recipes × 3 seeds × (no adaptation, none, ot, mmd); resumable
    python bench/adapt.py --report   # only rewrite the BENCHMARKS section

For each recipe and seed a model is trained on 1,500 classic-sky galaxies (``bench/sky.py``'s
``train-classic`` survey), then adapted with :func:`galaxalign.adapt.adapt_model` (its defaults:
3 epochs, lr 2e-4) to the 1,500 unlabelled galaxies of ``train-diverse`` with each alignment term —
``none`` (self-supervised + keep the classes only), ``ot`` (exact optimal transport, POT), ``mmd`` —
each from the same trained weights. Scored on 500 fresh galaxies of each sky (``test-diverse``,
``test-classic``): accuracy, and the domain AUC the job reports (classic vs diverse features).

Recipes: ``wave1`` (``configs/tiny-cpu.yaml``: the first starter, tiny ViT from scratch) and
``starter`` (``configs/starter-cpu.yaml`` at 4 + 12 epochs: the CNN tower from our SimCLR checkpoint).
Every run appends one line to ``bench/results/adapt_runs.jsonl``.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from runlog import append_run, mean_std, read_runs, write_section
from sky import named

from galaxalign.adapt import ALIGN, AdaptCfg, adapt_model
from galaxalign.data import load_survey
from galaxalign.inference import evaluate_model
from galaxalign.model import load_model
from galaxalign.train import load_config, resolve_split, train

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "adapt"
RUNS = ROOT / "bench" / "results" / "adapt_runs.jsonl"
RECIPES = {"wave1": ROOT / "configs" / "tiny-cpu.yaml", "starter": ROOT / "configs" / "starter-cpu.yaml"}
OVERRIDES = {"starter": {"stage2_epochs": 12}}  # as measured (the starter config has 4 + 36 epochs since)
SEEDS = (0, 1, 2)


def survey(name: str):
    return load_survey(named(name))  # bench/sky.py's surveys, rendered there if missing


def record(row: dict) -> None:
    append_run(RUNS, row)
    print(json.dumps(row), flush=True)


def run_all() -> None:
    done = read_runs(RUNS)
    src, tgt = survey("train-classic"), survey("train-diverse")
    tests = {"diverse": survey("test-diverse"), "classic": survey("test-classic")}
    for seed in SEEDS:
        for recipe, path in RECIPES.items():
            names = [f"{recipe}-{a}" for a in ("before", *ALIGN)]
            if all((n, seed) in done for n in names):
                continue
            out = OUT / f"{recipe}-s{seed}"
            cfg = replace(load_config(path, **OVERRIDES.get(recipe, {})), seed=seed, split_seed=seed)
            t0 = time.perf_counter()
            if not (out / "model.pt").exists():
                train(cfg, src.path, out, show_bar=False)
            train_secs = round(time.perf_counter() - t0, 1)
            tr, _, _ = resolve_split(src, cfg)
            for align in (None, *ALIGN):
                name = f"{recipe}-{align or 'before'}"
                if (name, seed) in done:
                    continue
                model = load_model(out)
                t0 = time.perf_counter()
                row = {"name": name, "seed": seed, "train_seconds": train_secs}
                if align:
                    res = adapt_model(model, src, tr, tgt, AdaptCfg(align=align, seed=seed))
                    row.update(domain_auc_before=res["domain_auc_before"], domain_auc_after=res["domain_auc_after"],
                               adapt_seconds=round(time.perf_counter() - t0, 1))
                for sky, t in tests.items():
                    ev = evaluate_model(model, t)
                    row[f"{sky}_accuracy"] = round(ev["accuracy"], 4)
                    row[f"{sky}_macro_f1"] = round(ev["macro_f1"], 4)
                record(row)


def report() -> str:
    runs = read_runs(RUNS)
    lines = ["| recipe (trained on the classic sky) | adaptation to the diverse sky | seeds | domain AUC before → after "
             "| diverse test accuracy | classic test accuracy | adapt s |", "|---|---|---:|---:|---:|---:|---:|"]
    for recipe in RECIPES:
        for align in ("before", *ALIGN):
            rows = [r for (n, _), r in sorted(runs.items()) if n == f"{recipe}-{align}"]
            if not rows:
                continue
            auc = ("—" if align == "before" else
                   f"{mean_std([r['domain_auc_before'] for r in rows])} → {mean_std([r['domain_auc_after'] for r in rows])}")
            secs = "—" if align == "before" else f"{np.mean([r['adapt_seconds'] for r in rows]):.0f}"
            what = "not adapted" if align == "before" else f"adapt, align {align}"
            lines.append(f"| {recipe} | {what} | {len(rows)} | {auc} | {mean_std([r['diverse_accuracy'] for r in rows])} | "
                         f"{mean_std([r['classic_accuracy'] for r in rows])} | {secs} |")
    text = "\n".join(lines)
    write_section(ROOT / "BENCHMARKS.md", "adapt-tables", text)
    return text


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--report", action="store_true", help="only rewrite the tables from finished runs")
    a = ap.parse_args()
    if not a.report:
        run_all()
    print(report())
