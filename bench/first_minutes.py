"""How long a newcomer waits: from `make run` (the install already done) to the first classifiable galaxy,
and to the first model proposal — the way `make run` does it now (starter queued as the worker's first
job) and the way it did before (starter trained before the app starts), on a fresh workspace each.

    python bench/first_minutes.py --survey demo --mode job      # make run now
    python bench/first_minutes.py --survey first --mode now     # make run before this change

"Classifiable" means what a visitor needs: the app answers its health check on its port, the survey is
registered and the queue serves a galaxy to a visitor. "Proposals" means an active model with predictions.
Every run is one JSON line in bench/results/first_minutes.jsonl; --report writes the table into
BENCHMARKS.md. All traffic stays on 127.0.0.1; every wait is bounded.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runlog import append_run, free_port, healthy, stop_groups  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
LOG = ROOT / "bench" / "results" / "first_minutes.jsonl"


def serves_a_galaxy(ws: Path) -> bool:
    from galaxalign.store import list_surveys, next_galaxy_for, open_store
    from galaxalign.workspace import Workspace

    db = Workspace(ws).root / "galaxalign.db"
    if not db.exists():
        return False
    store = open_store(Workspace(ws).database_url, upgrade=False)
    try:
        rows = list_surveys(store)
        return bool(rows) and next_galaxy_for(store, None, rows[0].id) is not None
    except Exception:  # noqa: BLE001 - the store is still being made
        return False
    finally:
        store.dispose()


def has_proposals(ws: Path) -> bool:
    from galaxalign.store import active_model, open_store
    from galaxalign.workspace import Workspace

    store = open_store(Workspace(ws).database_url, upgrade=False)
    try:
        return active_model(store) is not None
    except Exception:  # noqa: BLE001
        return False
    finally:
        store.dispose()


def run(survey: str, mode: str, limit: float) -> dict:
    ws = Path(tempfile.mkdtemp(prefix=f"first-minutes-{survey}-"))
    port = free_port()
    env = {**os.environ, "GALAXALIGN_WORKSPACE": str(ws)}
    env.pop("GALAXALIGN_DATABASE_URL", None)
    env.pop("GALAXALIGN_REDIS_URL", None)
    procs = []
    t0 = time.perf_counter()
    out = {"name": f"{survey}-{mode}", "seed": 0, "survey": survey, "mode": mode, "cores": os.cpu_count()}
    try:
        # what `make run` does after the install: the demo step, then the worker and the app
        subprocess.run([str(BIN / "galaxalign"), "demo", "--survey", survey, "--starter", mode], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=limit)
        out["demo_step_s"] = round(time.perf_counter() - t0, 1)
        procs.append(subprocess.Popen([str(BIN / "galaxalign"), "worker"], env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, start_new_session=True))
        procs.append(subprocess.Popen([str(BIN / "streamlit"), "run", str(ROOT / "app" / "streamlit_app.py"),
                                       "--server.port", str(port), "--server.address", "127.0.0.1",
                                       "--server.headless", "true", "--browser.gatherUsageStats", "false"],
                                      env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      start_new_session=True))
        while time.perf_counter() - t0 < limit:
            if "classifiable_s" not in out and healthy(port) and serves_a_galaxy(ws):
                out["classifiable_s"] = round(time.perf_counter() - t0, 1)
                print(f"{survey}/{mode}: classifiable after {out['classifiable_s']} s", flush=True)
            if "proposals_s" not in out and has_proposals(ws):
                out["proposals_s"] = round(time.perf_counter() - t0, 1)
                print(f"{survey}/{mode}: proposals after {out['proposals_s']} s", flush=True)
            if "proposals_s" in out and "classifiable_s" in out:
                break
            time.sleep(1.0)
    finally:
        stop_groups(procs)
        shutil.rmtree(ws, ignore_errors=True)
    return out


def report() -> str:
    """The Markdown table of bench/results/first_minutes.jsonl: each survey, the way before (starter
    trained first) and now (starter queued). A run that stopped at the proposals before the app answered
    (an early version of this script, for "now" runs) gives the proposals time as a lower bound."""
    import json

    rows = [json.loads(line) for line in LOG.read_text().splitlines()] if LOG.exists() else []
    out = ["| survey | `make run` | demo step | first classifiable galaxy | first model proposal |",
           "|---|---|---:|---:|---:|"]
    how = {"now": "before: starter trained, then the app", "job": "now: app at once, starter as the first job"}
    for r in sorted(rows, key=lambda r: (r["survey"], r["mode"] != "now")):
        cls = r.get("classifiable_s")
        cls = f"**{cls:.0f} s**" if cls is not None else (f"≥ {r['proposals_s']:.0f} s" if "proposals_s" in r else "–")
        prop = f"{r['proposals_s']:.0f} s" if "proposals_s" in r else "not waited for"
        out.append(f"| {r['survey']} | {how[r['mode']]} | {r['demo_step_s']:.0f} s | {cls} | {prop} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--survey", choices=["demo", "first"], default="demo")
    ap.add_argument("--mode", choices=["job", "now"], default="job")
    ap.add_argument("--limit", type=float, default=1800, help="seconds before giving up")
    ap.add_argument("--report", action="store_true", help="print the table of every run logged")
    a = ap.parse_args()
    if a.report:
        print(report())
        return
    row = run(a.survey, a.mode, a.limit)
    append_run(LOG, row)
    print(row)


if __name__ == "__main__":
    main()
