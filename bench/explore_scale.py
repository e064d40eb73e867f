"""Explore at survey scale: a survey of 10,000 / 100,000 / 1,000,000 galaxies taken through register →
embeddings → index → PCA map → the Explore page, with the time and peak memory of each step, and the
page's first render (server time under Streamlit's AppTest, caches cleared before each of 5 runs,
median) against the page before this change (git ``BASELINE``) on the same data in the same run.

    python bench/explore_scale.py                     # 10k, 100k, 1M (about 15 minutes on 2 cores)
    python bench/explore_scale.py --n 10000 100000

Stated plainly: the survey file holds the catalogue and HDF5 image chunks that were never written
(they read back as blank stamps; the map never reads pixels), and the embeddings are generated — 20
anisotropic clusters in 128 dimensions, as a trained model's sit — not computed by a model (embedding
speed is measured by ``bench/embed_speed.py``: a million galaxies take about 8 minutes in bf16 on these
cores). Everything after that is the product's own code: ``register_survey``, ``SimilarityIndex``,
``cached_projection``, the Explore page. Writes ``bench/results/explore_scale.json`` and the table in
BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from runlog import write_section

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "explore_scale.json"
BASELINE = "b62082f"  # the Explore page before the density map (every point up to 100,000, lists per row)


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def step(log: dict, name: str, fn):
    t0 = time.perf_counter()
    out = fn()
    log[name] = {"seconds": round(time.perf_counter() - t0, 2), "peak_mb": round(peak_mb())}
    print(f"  {name}: {log[name]['seconds']} s, peak {log[name]['peak_mb']} MB", flush=True)
    return out


def write_survey(path: Path, n: int, size: int = 64) -> None:
    """The catalogue in our HDF5 schema; image chunks allocated lazily (never written: blank stamps)."""
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        f.create_dataset("images", shape=(n, size, size, 3), dtype=np.uint8, chunks=(64, size, size, 3),
                         compression="gzip")
        f["ans"] = rng.integers(0, 10, n).astype(np.int64)
        f["ra"], f["dec"] = rng.uniform(0, 360, n), rng.uniform(-10, 60, n)
        f["id_str"] = np.char.add("g", np.arange(n).astype(str)).astype(h5py.string_dtype())


def embeddings(n: int, d: int = 128, k: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)).astype(np.float32) * 3
    scales = rng.uniform(0.3, 1.5, (k, d)).astype(np.float32)
    lab = rng.integers(0, k, n)
    z = np.empty((n, d), np.float32)
    for s in range(0, n, 200_000):
        b = lab[s:s + 200_000]
        z[s:s + 200_000] = centres[b] + rng.normal(size=(len(b), d)).astype(np.float32) * scales[b]
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    return z, lab % 10


def build(ws: Path, n: int, starter: Path) -> dict:
    """A workspace with an n-galaxy survey registered, embedded (generated), indexed and projected."""
    from galaxalign.data import load_survey
    from galaxalign.fsutil import atomic_path
    from galaxalign.index import SimilarityIndex
    from galaxalign.projection import cached_projection
    from galaxalign.store import activate_model, add_volunteer, open_store, register_model, register_survey, \
        set_model_embeddings
    from galaxalign.workspace import Workspace

    log: dict = {}
    w = Workspace(ws).create()
    path = w.surveys / "big.h5"
    step(log, "write survey file", lambda: write_survey(path, n))
    store = open_store(w.database_url)
    survey = step(log, "open survey", lambda: load_survey(path))
    step(log, "register", lambda: register_survey(store, survey, "big", known_fraction=0.0, gold_fraction=0.0))
    add_volunteer(store, "rosa", "researcher", "researcher-pw")
    shutil.copytree(starter, w.models / "starter")
    mid = register_model(store, "starter", str(w.models / "starter" / "model.pt"), {}, {}, survey="big")
    activate_model(store, mid)
    out = w.embeddings_of("starter", "big")
    out.mkdir(parents=True)
    z, pred = step(log, "embeddings (generated)", lambda: embeddings(n))

    def save():
        probs = np.full((n, 10), 0.02, np.float32)
        probs[np.arange(n), pred] = 0.82
        preds = pd.DataFrame({"id_str": survey.id_str, "pred": pred, "confidence": probs.max(1),
                              **{f"p_{k}": probs[:, k] for k in range(10)}})
        with atomic_path(out / "embeddings.npy") as tmp, open(tmp, "wb") as f:
            np.save(f, z)
        with atomic_path(out / "predictions.parquet") as tmp:
            preds.to_parquet(tmp, index=False)
    step(log, "write embeddings + predictions", save)
    idx = step(log, "index (auto)", lambda: SimilarityIndex.build(z, np.asarray(survey.id_str)))
    idx.save(out)
    log["index"] = idx.describe()
    step(log, "PCA map", lambda: cached_projection(out, z, "pca"))
    set_model_embeddings(store, mid, str(w.embeddings / "starter"))
    store.dispose()
    return log


def render_times(ws: Path, app: Path, repeats: int = 5) -> dict:
    """:func:`_render_times` in a fresh process whose ``common`` module is the one beside ``app``'s pages
    (the baseline's app is the baseline's, helpers included)."""
    r = subprocess.run([sys.executable, __file__, "--render", str(app), "--ws", str(ws), "--repeats", str(repeats)],
                       capture_output=True, text=True, cwd=ROOT / "bench")
    if r.returncode:
        return {"error": (r.stderr.strip().splitlines() or ["?"])[-1][:200]}
    return json.loads(r.stdout.strip().splitlines()[-1])


def _render_times(ws: Path, app: Path, repeats: int = 5) -> dict:
    """First render of ``app``'s Explore page as a signed-in researcher, caches cleared before each run:
    median, all, and the size of the map the browser is sent."""
    sys.path.insert(0, str(app.parent))
    page = app.parent / "views" / "explore.py"
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from galaxalign.store import get_volunteer, open_store
    from galaxalign.workspace import Workspace

    os.environ["GALAXALIGN_WORKSPACE"] = str(ws)
    store = open_store(Workspace(ws).database_url)
    rosa = get_volunteer(store, "rosa")
    store.dispose()
    times, spec = [], 0
    for k in range(repeats + 1):  # the first run warms the imports (the same for both pages) and is not counted
        st.cache_data.clear()
        st.cache_resource.clear()
        at = AppTest.from_file(str(page), default_timeout=600)
        at.session_state["user"] = {"id": rosa.id, "name": rosa.name, "role": rosa.role}  # signed in
        t0 = time.perf_counter()
        at.run()
        if k:
            times.append(time.perf_counter() - t0)
        if at.exception:
            raise RuntimeError(f"{page.name}: {at.exception}")
        spec = len(at.get("plotly_chart")[0].proto.spec)
    return {"median_s": round(float(np.median(times)), 2), "runs_s": [round(t, 2) for t in times],
            "map_mb": round(spec / 1e6, 2), "peak_mb": round(peak_mb())}


def browser_times(ws: Path, app: Path, repeats: int = 3) -> dict:
    """In Debian's Chromium: a fresh server each time (every cache cold), sign in, then the time from the
    click on *Explore* until the map is drawn and the app is idle; median of ``repeats``."""
    import importlib.util

    from playwright.sync_api import expect, sync_playwright

    spec = importlib.util.spec_from_file_location("browser_flow", ROOT / "tests" / "browser_flow.py")
    flow = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(flow)
    def explore_once(browser) -> float:
        page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        page.goto(f"{url}/signin")
        page.get_by_label("Name").fill("rosa")
        page.get_by_role("textbox", name="Password").fill("researcher-pw")
        page.get_by_role("textbox", name="Password").press("Enter")
        expect(page.get_by_role("link", name="Explore")).to_be_visible()
        page.wait_for_timeout(1000)
        t0 = time.perf_counter()
        page.get_by_role("link", name="Explore").click()
        expect(page.locator("[data-testid='stPlotlyChart'] .main-svg").first).to_be_visible()
        expect(page.get_by_test_id("stStatusWidget")).to_have_count(0)  # the run has finished
        took = time.perf_counter() - t0
        page.close()
        return took

    cold, warm = [], []
    expect.set_options(timeout=300_000)
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp, flow.streamlit_server(ws, Path(tmp) / "log", app) as url, \
                sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=flow.CHROMIUM, headless=True, args=flow.CHROMIUM_ARGS)
            cold.append(explore_once(browser))  # a fresh server: imports, files, caches all cold
            warm.append(explore_once(browser))  # the next researcher: the server's caches hold the survey
            browser.close()
    return {"median_s": round(float(np.median(cold)), 2), "runs_s": [round(t, 2) for t in cold],
            "warm_median_s": round(float(np.median(warm)), 2), "warm_runs_s": [round(t, 2) for t in warm]}


def baseline_app(tmp: Path) -> Path:
    """The app as it was at ``BASELINE`` (pages and their helpers), extracted into ``tmp``; its main script."""
    archive = subprocess.run(["git", "archive", BASELINE, "app"], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive, check=True)
    return tmp / "app" / "streamlit_app.py"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--browser", type=int, nargs="*", default=[100_000, 1_000_000],
                    help="sizes also timed in Chromium (3 cold starts each, new page and baseline)")
    ap.add_argument("--render", type=Path, help=argparse.SUPPRESS)  # one process's page timing (internal)
    ap.add_argument("--ws", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--report", action="store_true", help="only rewrite the tables from the saved results")
    a = ap.parse_args()
    if a.report:
        write_section(ROOT / "BENCHMARKS.md", "explore-scale", table(json.loads(RESULTS.read_text())))
        return
    if a.render:
        print(json.dumps(_render_times(a.ws, a.render, a.repeats)))
        return
    starter = ROOT / "workspace" / "models" / "starter"
    if not starter.exists():
        raise SystemExit("run `make demo` first: the page loads the demo's starter model for its search tab")
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for n in a.n:
        print(f"{n:,} galaxies", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            ws = Path(tmp) / "ws"
            log = build(ws, n, starter)
            old = baseline_app(Path(tmp))
            now = ROOT / "app" / "streamlit_app.py"
            log["explore"], log["explore_before"] = render_times(ws, now, a.repeats), render_times(ws, old, a.repeats)
            print(f"  Explore: {log['explore']}\n  before: {log['explore_before']}", flush=True)
            if n in a.browser:
                log["browser"], log["browser_before"] = browser_times(ws, now), browser_times(ws, old)
                print(f"  browser: {log['browser']}, before: {log['browser_before']}", flush=True)
        results[str(n)] = log
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=1))
    write_section(ROOT / "BENCHMARKS.md", "explore-scale", table(results))


def table(results: dict) -> str:
    rows = ["| galaxies | register s | index s (kind) | PCA s | page, server s | before | × | Chromium, new server, s "
            "| before | × | Chromium, warm server, s | before | × | map sent, MB (before) |",
            "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]

    def pair(new: dict | None, old: dict | None) -> str:
        if not new:
            return "– | – | –"
        if not old or "median_s" not in old:
            return f"{new['median_s']} | {(old or {}).get('error', '–')} | –"
        return f"{new['median_s']} | {old['median_s']} | {old['median_s'] / new['median_s']:.1f}"
    def warm(b: dict | None) -> dict | None:
        return {"median_s": b["warm_median_s"]} if b and "warm_median_s" in b else None
    for n, r in sorted(results.items(), key=lambda kv: int(kv[0])):
        new, old = r["explore"], r["explore_before"]
        rows.append(f"| {int(n):,} | {r['register']['seconds']} | {r['index (auto)']['seconds']} ({r['index'].split(', ', 1)[-1]}) "
                    f"| {r['PCA map']['seconds']} | {pair(new, old)} | {pair(r.get('browser'), r.get('browser_before'))} "
                    f"| {pair(warm(r.get('browser')), warm(r.get('browser_before')))} "
                    f"| {new['map_mb']} ({old.get('map_mb', '–')}) |")
    n, r = max(results.items(), key=lambda kv: int(kv[0]))
    rows += ["", f"The {int(n):,}-galaxy survey step by step (peak resident memory of the process so far; the page is timed in a process of its own):", "",
             "| step | s | peak MB |", "|---|---:|---:|"]
    for name, v in r.items():
        if isinstance(v, dict) and "peak_mb" in v and not name.endswith("_before"):
            rows.append(f"| {'Explore page (median of the runs)' if name == 'explore' else name} | "
                        f"{v.get('seconds', v.get('median_s'))} | {v['peak_mb']:,} |")
    return "\n".join(rows)


if __name__ == "__main__":
    main()
