"""Similarity search at survey scale: the exact scan against the tuned inverted file and graph.

    python bench/index_scale.py                 # 100,000 and 1,000,000 × 128 (about 15 minutes here)
    python bench/index_scale.py --sizes 100000  # one size

For each size and each of three embedding clouds it builds ``SimilarityIndex`` of each kind through the package (the same code the
worker runs, tuned to recall@10 ≥ 0.95 on 200 of the index's own galaxies), then measures on 200
*other* queries, one query at a time: latency, recall@10 against the exact scan, the speed-up over
the exact scan in the same run, build time, file size, the memory-mapped load, and adding 1 % more
galaxies without a rebuild. Writes ``bench/results/index_scale.json`` and the table in BENCHMARKS.md.

The clouds, from the easiest to the hardest for an approximate index:

- *model*: drawn from a Gaussian mixture (10 components, full covariances) fitted to the real
  embeddings of the starter model on the demo survey (``workspace/embeddings/…/embeddings.npy``,
  made by ``make demo``): a million galaxies with the spectrum a trained tower gives (there, 95 % of
  the variance lies in 7 of the 128 directions). Rendering and embedding a million galaxies would take
  this machine about ten hours, so the points are generated; the mixture is fitted here, in the run.
- *clustered*: 20 anisotropic Gaussian clusters, each filling all 128 directions (74 directions
  for 95 % of the variance) — harder than any trained model's cloud we have seen;
- *uniform*: isotropic Gaussian directions, the worst case for every approximate index.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from runlog import write_section

from galaxalign.index import SimilarityIndex, recall_at_k

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "index_scale.json"
DIM, QUERIES, K = 128, 200, 10


MODEL_EMBEDDINGS = ROOT / "workspace" / "embeddings" / "starter" / "demo" / "embeddings.npy"
CLOUDS = ("model", "clustered", "uniform")


def model_cloud(n: int, seed: int = 0, source: Path = MODEL_EMBEDDINGS) -> np.ndarray:
    """``n`` points from a Gaussian mixture fitted to a trained model's own embeddings (unit norm)."""
    from sklearn.mixture import GaussianMixture

    if not source.is_file():
        raise SystemExit(f"{source}: no model embeddings to fit the 'model' cloud to; run `make demo` first")
    real = np.load(source).astype(np.float64)
    real /= np.linalg.norm(real, axis=1, keepdims=True)
    gmm = GaussianMixture(10, covariance_type="full", reg_covar=1e-6, random_state=seed).fit(real)
    gmm.random_state = np.random.RandomState(seed + 1)
    z = np.empty((n, real.shape[1]), np.float32)
    for start in range(0, n, 200_000):
        stop = min(n, start + 200_000)
        z[start:stop] = gmm.sample(stop - start)[0]
    return z


def cloud(kind: str, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "model":
        return model_cloud(n, seed)
    if kind == "uniform":
        return rng.standard_normal((n, DIM), dtype=np.float32)
    centres = rng.standard_normal((20, DIM), dtype=np.float32) * 2
    scale = rng.uniform(0.3, 1.2, (20, DIM)).astype(np.float32)
    lab = rng.integers(0, 20, n)
    z = np.empty((n, DIM), np.float32)
    for start in range(0, n, 200_000):  # in chunks: bounded temporary memory
        sl = slice(start, min(n, start + 200_000))
        z[sl] = centres[lab[sl]] + rng.standard_normal((sl.stop - sl.start, DIM), dtype=np.float32) * scale[lab[sl]]
    return z


def one_at_a_time(idx: SimilarityIndex, z: np.ndarray, rows: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean milliseconds per single query and the rows found (each query's own row left out)."""
    found = []
    t0 = time.perf_counter()
    for r in rows:
        found.append([h.row for h in idx.search(z[r], K, exclude_row=int(r))])
    return (time.perf_counter() - t0) * 1000 / len(rows), np.array(found)


def run_size(n: int, cloud_kind: str) -> list[dict]:
    z = cloud(cloud_kind, n)
    ids = np.char.add("g", np.arange(n).astype(str))
    rows = np.random.default_rng(123).choice(n, QUERIES, replace=False)  # not the tuning queries (seed 0)
    out = []
    exact = SimilarityIndex.build(z, ids, kind="exact")
    exact_ms, truth = one_at_a_time(exact, z, rows)
    out.append({"n": n, "cloud": cloud_kind, "kind": "exact", "ms_per_query": round(exact_ms, 3), "recall_at_10": 1.0,
                "speedup": 1.0, "build_s": exact.meta.build_seconds, "bytes": int(n * DIM * 4)})
    print(out[-1], flush=True)
    del exact
    for kind in ("ivf", "hnsw"):
        t0 = time.perf_counter()
        idx = SimilarityIndex.build(z, ids, kind=kind)
        build_s = time.perf_counter() - t0
        ms, found = one_at_a_time(idx, z, rows)
        row = {"n": n, "cloud": cloud_kind, "kind": kind, "ms_per_query": round(ms, 3),
               "recall_at_10": round(recall_at_k(found, truth, K), 4), "speedup": round(exact_ms / ms, 1),
               "build_s": round(build_s, 1), "index_build_s": idx.meta.build_seconds,
               "breadth": idx.meta.nprobe or idx.meta.ef_search, "nlist": idx.meta.nlist,
               "tuned_recall": idx.meta.recall_at_10, "tuning": idx.meta.history}
        with tempfile.TemporaryDirectory() as d:
            idx.save(d)
            row["bytes"] = sum(f.stat().st_size for f in Path(d).iterdir())
            t0 = time.perf_counter()
            loaded = SimilarityIndex.load(d)
            row["load_s"] = round(time.perf_counter() - t0, 2)
            row["loaded_mmap"] = loaded.read_only
            row["ms_per_query_loaded"] = round(one_at_a_time(loaded, z, rows[:50])[0], 3)
            del loaded
        extra = cloud(cloud_kind, n // 100, seed=1)
        t0 = time.perf_counter()
        idx.add(extra, np.char.add("new", np.arange(len(extra)).astype(str)))
        row["add_1pct_s"] = round(time.perf_counter() - t0, 2)
        out.append(row)
        print({k: v for k, v in row.items() if k != "tuning"}, flush=True)
        del idx
    return out


def table(rows: list[dict]) -> str:
    lines = ["| galaxies | cloud | index | breadth (tuned) | recall@10 | ms / query | × exact | build s | "
             "file MB | load s (mmap) | +1 % s |", "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        mm = f"{r['load_s']} ({'yes' if r['loaded_mmap'] else 'no'})" if "load_s" in r else "–"
        breadth = {"ivf": f"nprobe {r.get('breadth')} of {r.get('nlist')}", "hnsw": f"efSearch {r.get('breadth')}"}
        lines.append(f"| {r['n']:,} | {r['cloud']} | {r['kind']} | {breadth.get(r['kind'], '–')} | "
                     f"{r['recall_at_10']:.3f} | {r['ms_per_query']:.2f} | {r['speedup']:.0f} | {r['build_s']:.1f} | "
                     f"{r['bytes'] / 2**20:.0f} | {mm} | {r.get('add_1pct_s', '–')} |")
    return "\n".join(lines)


def write_report(rows: list[dict]) -> None:
    body = table(rows)
    write_section(ROOT / "BENCHMARKS.md", "index-scale", body)
    print(body)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--report", action="store_true", help="only rewrite the table from the saved results")
    a = ap.parse_args()
    if not a.report:
        rows = []
        for n in a.sizes:
            for c in CLOUDS:
                rows += run_size(n, c)
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps({"machine": f"{platform.processor() or platform.machine()}, "
                                                  f"{os.cpu_count()} cores", "rows": rows}, indent=1) + "\n")
    write_report(json.loads(RESULTS.read_text())["rows"])


if __name__ == "__main__":
    main()
