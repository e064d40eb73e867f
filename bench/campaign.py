"""Simulated campaigns through the real loop (galaxalign.simulate): learning curves per queue strategy,
and the anchoring estimate against the habit given to the simulated volunteers.

    python bench/campaign.py            # 3 strategies (+ entropy with the gate open) × 3 seeds, 600 galaxies (~25 min)
    python bench/campaign.py --report   # only rewrite the table and the figure from finished runs

Each campaign: a fresh workspace, the survey registered with the flat workflow and 20 % of its labels
known (the experts' seed set), 7 simulated volunteers (2 skilled, 3 average, 1 careless, 1 spammer)
taking a shown proposal with probability 0.3, a 20 % blind control, 4 rounds of 150 votes, each
followed by the real re-training job (the starter recipe, 2 + 6 epochs, from the active model). Every
campaign appends one line to ``bench/results/campaign_runs.jsonl``; the figure is
``docs/campaign_curves.png``.
"""
from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np

from runlog import read_runs

from galaxalign.data import load_survey
from galaxalign.simulate import CampaignCfg, run_campaign
from galaxalign.store import open_store, register_survey
from galaxalign.synth import synth_survey
from galaxalign.workspace import Workspace

ROOT = Path(__file__).resolve().parent.parent

OUT = ROOT / "bench" / "out" / "campaign"
RUNS = ROOT / "bench" / "results" / "campaign_runs.jsonl"
STRATEGIES = ("entropy", "margin", "random")
# the same entropy campaign with the proposal gate opened: every proposal shown (but the blind 20 %), so
# that the anchoring estimate has wrong proposals to measure against the volunteers' habit
VARIANTS = {**{s: (s, None) for s in STRATEGIES},
            "entropy_gate_open": ("entropy", {"confidence_floor": 0.0, "ood_max": 1e9})}
SEEDS = (0, 1, 2)
N_GALAXIES = 600
HABIT = 0.3


def survey_file() -> Path:
    path = OUT / f"survey-{N_GALAXIES}.h5"
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        synth_survey(path, n=N_GALAXIES, size=64, seed=41)
    return path


def one(name: str, seed: int) -> dict:
    strategy, gate = VARIANTS[name]
    ws_root = OUT / f"ws-{name}-{seed}"
    shutil.rmtree(ws_root, ignore_errors=True)
    ws = Workspace(ws_root).create()
    store = open_store(ws.database_url)
    register_survey(store, load_survey(survey_file()), "sim", workflow="flat", known_fraction=0.2,
                    gold_fraction=0.05, seed=seed)
    cfg = CampaignCfg(rounds=4, votes_per_round=150, strategy=strategy, anchoring=HABIT, blind_fraction=0.2,
                      seed=seed, gate=gate, retrain={"config": str(ROOT / "configs" / "starter-cpu.yaml"),
                                                     "stage1_epochs": 2, "stage2_epochs": 6})
    t0 = time.perf_counter()
    res = run_campaign(store, ws, "sim", cfg, progress=False)
    store.dispose()
    shutil.rmtree(ws_root, ignore_errors=True)
    return {"name": name, "seed": seed, "seconds": round(time.perf_counter() - t0, 1), "rounds": res["rounds"],
            "anchoring": res["anchoring"]}


def report() -> str:
    rows = [json.loads(line) for line in RUNS.read_text().splitlines() if line.strip()] if RUNS.exists() else []
    if not rows:
        return "(no campaign runs yet)"
    lines = ["| queue | seeds | model accuracy, start | after 600 votes | retired | consensus accuracy | "
             "votes / retired | anchoring (habit 0.3) |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    ms = lambda v: f"{np.mean(v):.3f} ± {np.std(v, ddof=1):.3f}" if len(v) > 1 else f"{np.mean(v):.3f}"  # noqa: E731
    for strategy in VARIANTS:
        rs = [r for r in rows if r["name"] == strategy]
        if not rs:
            continue
        last = [r["rounds"][-1] for r in rs]
        anch = [r["anchoring"]["anchoring"] for r in rs if r["anchoring"]["anchoring"] is not None]
        lines.append(f"| {strategy} | {len(rs)} | {ms([r['rounds'][0]['model_accuracy'] for r in rs])} | "
                     f"{ms([x['model_accuracy'] for x in last])} | {np.mean([x['retired'] for x in last]):.0f} | "
                     f"{ms([x['consensus_accuracy'] or 0 for x in last])} | "
                     f"{np.mean([x['votes_per_retired'] or 0 for x in last]):.2f} | {ms(anch) if anch else '–'} |")
    _plot(rows)
    return "\n".join(lines)


def _plot(rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for strategy, colour in zip(VARIANTS, ("C0", "C1", "C7", "C3")):
        rs = [r for r in rows if r["name"] == strategy]
        if not rs:
            continue
        x = [p["human_votes"] for p in rs[0]["rounds"]]
        for ax, key in zip(axes, ("model_accuracy", "consensus_accuracy")):
            y = np.array([[p[key] if p[key] is not None else np.nan for p in r["rounds"]] for r in rs], float)
            m = np.nanmean(y, 0)
            ax.plot(x, m, "o-", color=colour, label=f"{strategy} ({len(rs)} seeds)")
            if len(rs) > 1:
                ax.fill_between(x, m - np.nanstd(y, 0), m + np.nanstd(y, 0), color=colour, alpha=0.15)
    axes[0].set_title("model accuracy (test split)")
    axes[1].set_title("consensus accuracy (retired galaxies)")
    for ax in axes:
        ax.set_xlabel("human votes")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(ROOT / "docs" / "campaign_curves.png", dpi=120)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--report", action="store_true", help="only rewrite the table and figure")
    a = ap.parse_args()
    if not a.report:
        done = read_runs(RUNS)
        for seed in SEEDS:
            for strategy in VARIANTS:
                if (strategy, seed) in done:
                    continue
                row = one(strategy, seed)
                RUNS.parent.mkdir(parents=True, exist_ok=True)
                with open(RUNS, "a") as f:
                    f.write(json.dumps(row, default=float) + "\n")
                print(f"{strategy} seed {seed}: {json.dumps(row['rounds'][-1])}", flush=True)
    print(report())


if __name__ == "__main__":
    main()
