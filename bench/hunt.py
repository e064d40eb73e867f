"""A rare-object hunt in simulation: purity and completeness over 5 rounds for a class that is ≤ 2 % of
the survey, through the real store (create_hunt, record_hunt_votes, hunt_votes) and galaxalign.hunt.

    python bench/hunt.py            # 3 seeds × 4 starts on the campaign benchmark's 1,000-galaxy sky (~4 min)
    python bench/hunt.py --report   # only rewrite the table and the figure

Per seed: a fresh workspace, the survey registered with 20 % of its labels known, a model trained by the
real re-training job (the campaign recipe), embedded. The hunt looks for *Cigar Shaped Smooth* galaxies
(19 of 1,000, 1.9 %). Starts: three known example galaxies; the class's prompt as a text; its symbol;
and, as the baseline, the classifier alone (candidates by the model's probability of the class, no
query, no feedback). Five grids of 24; one simulated volunteer confirms a true member 95 % of the time
and a non-member 3 % of the time. Completeness counts the members not given as examples.
"""
from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np

from campaign import RETRAIN, survey_file
from runlog import read_runs, write_section

from galaxalign.data import load_survey
from galaxalign.hunt import GRID, hunt_figures, next_grid, start_query
from galaxalign.inference import load_embeddings
from galaxalign.jobs import retrain
from galaxalign.model import load_model
from galaxalign.store import (active_model, add_volunteer, create_hunt, hunt_votes, open_store, record_hunt_votes,
                              register_survey, training_labels)
from galaxalign.workspace import Workspace

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "hunt"
RUNS = ROOT / "bench" / "results" / "hunt_runs.jsonl"
SEEDS = (0, 1, 2)
TARGET = 4  # Cigar Shaped Smooth
ROUNDS = 5
STARTS = ("examples", "text", "symbol", "classifier")


def one_seed(seed: int) -> list[dict]:
    root = OUT / f"ws-{seed}"
    shutil.rmtree(root, ignore_errors=True)
    ws = Workspace(root).create()
    store = open_store(ws.database_url)
    survey = load_survey(survey_file())
    register_survey(store, survey, "sim", workflow="flat", known_fraction=0.2, gold_fraction=0.0, seed=seed)
    t0 = time.perf_counter()
    retrain(store, ws, None, {"survey": "sim", "force_activate": True, "name": "hunter", **RETRAIN, "seed": seed})
    mv = active_model(store)
    emb, preds = load_embeddings(Path(mv.embeddings_path) / "sim")
    probs = preds[[c for c in preds.columns if c.startswith("p_")]].to_numpy()
    model = load_model(mv.checkpoint_path)
    truth = survey.labels
    known = np.flatnonzero(training_labels(store, "sim", len(survey))[0] == TARGET)  # the seed set's members
    rng = np.random.default_rng(seed)
    examples = sorted(rng.choice(known, min(3, len(known)), replace=False).tolist())
    ls = survey.label_set
    add_volunteer(store, "hunter", "volunteer", None)
    rows = []
    for start in STARTS:
        query = {"examples": [survey.id_str[i] for i in examples]} if start == "examples" else \
            {"text": ls[TARGET].prompt} if start == "text" else {"symbol": ls[TARGET].symbol} if start == "symbol" \
            else {"text": ls[TARGET].prompt}  # the classifier baseline stores a query but ranks by probability
        hid = create_hunt(store, "sim", f"h-{start}", {**query, "target_class": TARGET})
        q0 = start_query(emb, preds.id_str.to_numpy(), model, query)
        exclude0 = examples if start == "examples" else []
        for r in range(ROUNDS):
            v = hunt_votes(store, hid)
            decided = v.idx.to_numpy()
            if start == "classifier":
                score = probs[:, TARGET].copy()
                score[np.concatenate([decided, exclude0]).astype(int)] = -np.inf
                grid = np.argsort(-score, kind="stable")[:GRID]
            else:  # the Hunt page's own ranking: the examples and every decided galaxy left out
                grid = next_grid(emb, preds.id_str.to_numpy(), q0, probs, {**query, "target_class": TARGET}, v)
            member = truth[grid] == TARGET
            said = np.where(member, rng.random(len(grid)) < 0.95, rng.random(len(grid)) < 0.03)
            record_hunt_votes(store, hid, "hunter", {survey.id_str[i]: bool(x) for i, x in zip(grid, said)}, round=r)
        t = truth.copy()
        t[exclude0] = -1  # the examples were given, not found
        rows.append({"name": start, "seed": seed, "figures": hunt_figures(hunt_votes(store, hid), t, TARGET),
                     "n_members": int(np.sum(t == TARGET)), "examples": len(exclude0),
                     "seconds": round(time.perf_counter() - t0, 1)})
    store.dispose()
    shutil.rmtree(root, ignore_errors=True)
    return rows


def report() -> str:
    runs = read_runs(RUNS)
    if not runs:
        return "(no hunt runs yet)"
    lines = ["| start | seeds | " + " | ".join(f"round {r + 1}: purity / completeness" for r in range(ROUNDS)) + " |",
             "|---|---:|" + "---:|" * ROUNDS]
    for start in STARTS:
        rs = [r for (n, _), r in sorted(runs.items()) if n == start]
        if not rs:
            continue
        cells = []
        for r in range(ROUNDS):
            p = [x["figures"][r]["purity"] or 0.0 for x in rs]
            c = [x["figures"][r]["completeness"] for x in rs]
            cells.append(f"{np.mean(p):.2f} ± {np.std(p, ddof=1):.2f} / {np.mean(c):.2f} ± {np.std(c, ddof=1):.2f}"
                         if len(rs) > 1 else f"{np.mean(p):.2f} / {np.mean(c):.2f}")
        lines.append(f"| {start} | {len(rs)} | " + " | ".join(cells) + " |")
    _plot(runs)
    return "\n".join(lines)


def _plot(runs: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.3))
    for start, colour in zip(STARTS, ("C3", "C0", "C2", "C7")):
        rs = [r for (n, _), r in sorted(runs.items()) if n == start]
        if not rs:
            continue
        x = [GRID * (f["round"] + 1) for f in rs[0]["figures"]]
        for ax, key in zip(axes, ("purity", "completeness")):
            y = np.array([[f[key] or 0.0 for f in r["figures"]] for r in rs])
            ax.plot(x, y.mean(0), "o-", color=colour, label=start)
            ax.fill_between(x, y.mean(0) - y.std(0), y.mean(0) + y.std(0), color=colour, alpha=0.12)
    axes[0].set_title("purity of the confirmed list")
    axes[1].set_title("completeness (members found)")
    for ax in axes:
        ax.set_xlabel("candidates shown")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(ROOT / "docs" / "hunt_curves.png", dpi=120)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--report", action="store_true")
    a = ap.parse_args()
    if not a.report:
        for seed in SEEDS:
            if all((s, seed) in read_runs(RUNS) for s in STARTS):
                continue
            rows = one_seed(seed)
            RUNS.parent.mkdir(parents=True, exist_ok=True)
            with open(RUNS, "a") as f:
                for row in rows:
                    f.write(json.dumps(row) + "\n")
            for row in rows:
                print(f"{row['name']} seed {seed}: {json.dumps(row['figures'][-1])}", flush=True)
    body = report()
    write_section(ROOT / "BENCHMARKS.md", "hunt-tables", body)
    print(body)


if __name__ == "__main__":
    main()
