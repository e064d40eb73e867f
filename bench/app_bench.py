"""App responsiveness on the demo workspace (run `make demo` first), measured in one run:

1. Server time from a submitted vote to the next galaxy on screen: an AppTest click on the last
   answer of the tree re-runs the Classify page, which writes the vote, picks the next galaxy and
   draws it (median and p95 over 100 votes).
2. Time to first render of Explore for a 5,000-galaxy survey with cached projections.
3. Similarity query time: FAISS (exact inner product) against a brute-force NumPy scan, and a text
   query end to end (text tower + search).

    python bench/app_bench.py
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parent.parent

APP = str(ROOT / "app" / "streamlit_app.py")


def pct(xs, q):
    return float(np.percentile(np.asarray(xs) * 1000, q))


def signed_in(name, password):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=300).run()
    at.switch_page(str(Path(APP).parent / "views" / "signin.py")).run()  # visitors land on the home page
    at.text_input(key="signin_name").set_value(name)
    at.text_input(key="signin_password").set_value(password)
    at.button[0].click().run()
    at.switch_page(str(Path(APP).parent / "views" / "classify.py")).run()
    at._page_hash = ""  # then follow the pages the app switches to
    return at


def vote_latency(ws_root: Path, n: int = 100) -> list[float]:
    import streamlit as st

    from galaxalign.store import add_volunteer, open_store
    from galaxalign.workspace import Workspace

    store = open_store(Workspace(ws_root).database_url)
    add_volunteer(store, "benchvol", "volunteer", "bench-password")
    store.dispose()
    st.cache_resource.clear()
    at = signed_in("benchvol", "bench-password")
    times = []
    for _ in range(n):
        at.button(key="ans_t01_star").click()  # one-step path: the click that commits the vote
        t0 = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - t0)
        assert not at.exception, at.exception
    return times


def big_workspace(src: Path, dst: Path, n: int = 5000):
    """A 5,000-galaxy survey made by repeating the demo's images (the page's cost depends on N, not
    on what the galaxies look like), registered, embedded with the starter model, projected."""
    from galaxalign.data import load_survey
    from galaxalign.jobs import embed_version
    from galaxalign.projection import cached_projection
    from galaxalign.store import add_volunteer, open_store, register_model, register_survey, activate_model
    from galaxalign.workspace import Workspace

    w = Workspace(dst).create()
    with h5py.File(src / "surveys" / "demo.h5") as f:
        imgs, ans = f["images"][()], f["ans"][()]
    rep = -(-n // len(imgs))
    with h5py.File(w.demo_survey, "w") as f:
        f["images"] = np.concatenate([imgs] * rep)[:n]
        f["ans"] = np.concatenate([ans] * rep)[:n]
        f["id_str"] = np.array([f"big-{i:06d}" for i in range(n)], dtype="S")
    store = open_store(w.database_url)
    register_survey(store, load_survey(w.demo_survey), "demo")
    add_volunteer(store, "benchres", "researcher", "bench-password")
    mid = register_model(store, "starter", str(src / "models" / "starter"), {}, {})
    activate_model(store, mid)
    embed_version(store, w, None, {"survey": "demo", "model": mid})
    emb = np.load(w.embeddings_of("starter", "demo") / "embeddings.npy")
    for m in ("pca", "tsne", "umap"):
        cached_projection(w.embeddings_of("starter", "demo"), emb, m)
    store.dispose()
    return w, emb


def explore_first_render(ws_root: Path, repeats: int = 5) -> list[float]:
    import streamlit as st

    times = []
    for _ in range(repeats):
        st.cache_resource.clear()
        st.cache_data.clear()  # a cold app process: only the disk caches help
        at = signed_in("benchres", "bench-password")
        at.switch_page(str(ROOT / "app" / "views" / "explore.py"))
        t0 = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - t0)
        assert not at.exception and len(at.get("plotly_chart")) == 1
    return times


def query_times(w, emb):
    from galaxalign.index import SimilarityIndex

    index = SimilarityIndex.load(w.embeddings_of("starter", "demo"))
    z = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    rng = np.random.default_rng(0)
    qs = z[rng.choice(len(z), 200, replace=False)]
    t_faiss, t_numpy = [], []
    for q in qs:
        t0 = time.perf_counter()
        index.search(q, 12)
        t_faiss.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        np.argsort(-(z @ q))[:12]
        t_numpy.append(time.perf_counter() - t0)
    return t_faiss, t_numpy, index


def main() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    demo = Path(os.environ.get("GALAXALIGN_WORKSPACE", ROOT / "workspace")).resolve()
    if not (demo / "models" / "starter" / "model.pt").exists():
        sys.exit(f"{demo}: no starter model; run `make demo` first")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        small = tmp / "vote"
        shutil.copytree(demo, small)
        from galaxalign.store import open_store, relocate_paths

        st_ = open_store(f"sqlite:///{small / 'galaxalign.db'}")
        relocate_paths(st_, str(demo), str(small))
        st_.dispose()
        os.environ["GALAXALIGN_WORKSPACE"] = str(small)
        lat = vote_latency(small)
        print("## Vote → next galaxy (Classify page, server time, 100 votes)\n")
        print("| median (ms) | p95 (ms) | max (ms) |\n|---:|---:|---:|")
        print(f"| {pct(lat, 50):.0f} | {pct(lat, 95):.0f} | {pct(lat, 100):.0f} |\n")

        w, emb = big_workspace(demo, tmp / "big")
        os.environ["GALAXALIGN_WORKSPACE"] = str(w.root)
        ex = explore_first_render(w.root)
        print("## Explore, first render, 5,000 galaxies, projections cached on disk (cold app caches, 5 runs)\n")
        print("| median (s) | max (s) |\n|---:|---:|")
        print(f"| {np.median(ex):.2f} | {max(ex):.2f} |\n")

        t_faiss, t_numpy, index = query_times(w, emb)
        from galaxalign.index import query_text
        from galaxalign.model import load_model

        model = load_model(demo / "models" / "starter")
        t_text = []
        for k in range(50):
            t0 = time.perf_counter()
            index.search(query_text(model, f"A picture of a merging galaxy {k}"), 12)
            t_text.append(time.perf_counter() - t0)
        print("## Similarity query, 5,000 galaxies, top-12\n")
        print("| query | median (ms) | p95 (ms) | vs NumPy scan |\n|---|---:|---:|---:|")
        base = np.median(t_numpy)
        print(f"| NumPy brute force (baseline) | {pct(t_numpy, 50):.3f} | {pct(t_numpy, 95):.3f} | 1.00× |")
        print(f"| FAISS IndexFlatIP | {pct(t_faiss, 50):.3f} | {pct(t_faiss, 95):.3f} | "
              f"{base / np.median(t_faiss):.2f}× faster |")
        print(f"| text → text tower → FAISS | {pct(t_text, 50):.1f} | {pct(t_text, 95):.1f} | — |")


if __name__ == "__main__":
    main()
