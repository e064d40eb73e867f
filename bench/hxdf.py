"""What can be measured on the Hubble eXtreme Deep Field, which has no labels: `python bench/hxdf.py`
after `galaxalign demo --survey hxdf --starter now` (GALAXALIGN_WORKSPACE=workspace-hxdf).

For the starter (trained on our diverse simulated sky) and its adaptation to the field's galaxies: the
domain AUC between the demo sky and the field (0.5: the model cannot tell them apart), the share of the
field's galaxies whose proposal the gate shows, and the unfamiliarity distribution (1 = the limit
calibrated on held-out simulated galaxies). What it cannot show: whether a proposal is right. Writes
bench/results/hxdf.json and the table in BENCHMARKS.md.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from runlog import write_section

from galaxalign.gate import proposal_decision
from galaxalign.inference import load_embeddings
from galaxalign.store import list_model_versions, open_store
from galaxalign.workspace import Workspace

ROOT = Path(__file__).resolve().parent.parent


def model_row(ws: Workspace, mv) -> dict:
    _, preds = load_embeddings(ws.embeddings_of(mv.name, "hxdf"))
    gate = (mv.metrics or {}).get("proposal")
    ood = preds.ood.to_numpy(float) if "ood" in preds else np.full(len(preds), np.nan)
    shown = [proposal_decision(float(c), None if np.isnan(o) else float(o), gate)[0]
             for c, o in zip(preds.confidence, ood)]
    counts = preds.pred.value_counts(normalize=True)
    return {"model": mv.name, "galaxies": int(len(preds)), "shown": float(np.mean(shown)),
            "ood_quantiles": [round(float(q), 2) for q in np.nanquantile(ood, [0.1, 0.5, 0.9])],
            "familiar": float(np.nanmean(ood <= (gate or {}).get("ood_max", 1.0))),
            "top_classes": {str(k): round(float(v), 3) for k, v in counts.head(3).items()},
            "domain_auc_before": (mv.metrics or {}).get("domain_auc_before"),
            "domain_auc_after": (mv.metrics or {}).get("domain_auc_after")}


def main() -> None:
    ws = Workspace(os.environ.get("GALAXALIGN_WORKSPACE", ROOT / "workspace-hxdf"))
    store = open_store(ws.database_url, upgrade=False)
    rows = [model_row(ws, mv) for mv in list_model_versions(store)
            if mv.embeddings_path and ws.embeddings_of(mv.name, "hxdf").exists()]
    store.dispose()
    lines = ["| model | HXDF galaxies | proposals the gate shows | familiar (unfamiliarity ≤ limit) | "
             "unfamiliarity 10 / 50 / 90 % | domain AUC demo sky vs field |", "|---|---|---|---|---|---|"]
    for r in rows:
        auc = (f"{r['domain_auc_before']:.3f} → {r['domain_auc_after']:.3f}" if r["domain_auc_after"] is not None
               else "–")
        q = r["ood_quantiles"]
        lines.append(f"| {r['model']} | {r['galaxies']} | {r['shown']:.1%} | {r['familiar']:.1%} | "
                     f"{q[0]} / {q[1]} / {q[2]} | {auc} |")
    text = "\n".join(lines)
    (ROOT / "bench" / "results").mkdir(parents=True, exist_ok=True)
    (ROOT / "bench" / "results" / "hxdf.json").write_text(json.dumps(rows, indent=1) + "\n")
    write_section(ROOT / "BENCHMARKS.md", "hxdf", text)
    print(text)


if __name__ == "__main__":
    main()
