import numpy as np
import pytest

from galaxalign import index as index_module
from galaxalign.index import SearchError, SimilarityIndex, choose_kind, recall_at_k
from galaxalign.projection import cached_projection, grid_assignment, project


@pytest.fixture
def clustered():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 20)
    z = rng.normal(0, 0.3, (60, 16)) + 3 * np.eye(16)[labels]
    return z.astype(np.float32), labels, np.array([f"g{i:03d}" for i in range(60)])


def test_search_returns_nearest_galaxies_by_cosine(clustered, tmp_path):
    z, labels, ids = clustered
    idx = SimilarityIndex.build(z, ids)
    hits = idx.search_row("g005", k=5)
    assert len(hits) == 5 and "g005" not in [h.id_str for h in hits]
    assert all(labels[h.row] == labels[5] for h in hits)
    assert [h.score for h in hits] == sorted([h.score for h in hits], reverse=True)
    zn = z / np.linalg.norm(z, axis=1, keepdims=True)
    assert hits[0].score == pytest.approx(float(np.max(np.delete(zn @ zn[5], 5))), rel=1e-5)
    idx.save(tmp_path)
    again = SimilarityIndex.load(tmp_path)
    assert [h.id_str for h in again.search_row("g005", 5)] == [h.id_str for h in hits]
    approx = SimilarityIndex.build(z, ids, exact=False)
    assert [h.id_str for h in approx.search_row("g005", 3)] == [h.id_str for h in hits[:3]]


def test_search_errors_are_clear(clustered, tmp_path):
    z, _, ids = clustered
    idx = SimilarityIndex.build(z, ids)
    with pytest.raises(SearchError, match="'nope' is not in the index"):
        idx.search_row("nope")
    with pytest.raises(SearchError, match="has 3 dimensions; the index has 16"):
        idx.search(np.ones(3))
    with pytest.raises(SearchError, match="no similarity index"):
        SimilarityIndex.load(tmp_path)


@pytest.fixture(scope="module")
def many():
    """5,000 galaxies in 20 anisotropic clusters on the sphere, as embeddings of a trained model sit."""
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(20, 32))
    labels = rng.integers(0, 20, 5000)
    z = centres[labels] + rng.normal(size=(5000, 32)) * rng.uniform(0.3, 1.0, 32)
    return z.astype(np.float32), np.array([f"m{i:05d}" for i in range(5000)])


def _exact_neighbours(z, rows, k=10):
    zn = z / np.linalg.norm(z, axis=1, keepdims=True)
    s = zn[rows] @ zn.T
    s[np.arange(len(rows)), rows] = -np.inf  # the query itself left out, as search_row does
    return np.argsort(-s, 1)[:, :k]


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_an_approximate_index_is_tuned_to_the_recall_target(many, kind):
    z, ids = many
    idx = SimilarityIndex.build(z, ids, kind=kind, recall=0.95)
    assert idx.meta.kind == kind and idx.meta.tuned_on == 200 and idx.meta.recall_at_10 >= 0.95
    breadths = [b for b, _ in idx.meta.history]
    assert breadths == sorted(breadths) and idx.meta.history[-1][1] == idx.meta.recall_at_10
    if len(idx.meta.history) > 1:  # the narrower breadths tried first fell short of the target
        assert all(r < 0.95 for _, r in idx.meta.history[:-1])
    # on queries the tuning never saw, recall stays near the target
    rows = np.random.default_rng(7).choice(len(z), 100, replace=False)
    found = np.array([[h.row for h in idx.search_row(ids[r], 10)] for r in rows])
    assert recall_at_k(found, _exact_neighbours(z, rows)) >= 0.9
    assert idx.describe().startswith("5,000 galaxies, an ") and f"recall@10 {idx.meta.recall_at_10:.2f}" in idx.describe()


def test_auto_chooses_exact_up_to_the_limit_and_an_inverted_file_past_it(many, monkeypatch):
    z, ids = many
    assert choose_kind(200_000) == "exact" and choose_kind(200_001) == "ivf" and choose_kind(10, "hnsw") == "hnsw"
    monkeypatch.setattr(index_module, "EXACT_LIMIT", 1000)
    assert SimilarityIndex.build(z, ids).meta.kind == "ivf"
    with pytest.raises(SearchError, match="index kind 'annoy': not one of auto, exact, ivf, hnsw"):
        choose_kind(10, "annoy")


def test_auto_falls_back_to_exact_where_an_inverted_file_would_scan_as_much(monkeypatch):
    """Directions with no structure (isotropic Gaussian in 64-d): the lists cannot narrow the search,
    recall needs most of them, so 'auto' searches exactly and says why; asked for, ivf is kept."""
    rng = np.random.default_rng(0)
    z = rng.standard_normal((4000, 64)).astype(np.float32)
    ids = np.array([f"u{i}" for i in range(4000)])
    monkeypatch.setattr(index_module, "EXACT_LIMIT", 1000)
    auto = SimilarityIndex.build(z, ids)
    assert auto.meta.kind == "exact" and "exact search instead" in auto.describe()
    forced = SimilarityIndex.build(z, ids, kind="ivf")
    assert forced.meta.kind == "ivf" and forced.meta.nprobe > forced.meta.nlist // 8


def test_an_inverted_file_persists_memory_mapped_and_grows_without_a_rebuild(many, tmp_path):
    z, ids = many
    idx = SimilarityIndex.build(z[:4000], ids[:4000], kind="ivf")
    idx.save(tmp_path)
    mapped = SimilarityIndex.load(tmp_path)
    assert mapped.read_only and mapped.meta.nprobe == idx.meta.nprobe == mapped.index.nprobe
    assert [h.id_str for h in mapped.search_row("m00042", 5)] == [h.id_str for h in idx.search_row("m00042", 5)]
    with pytest.raises(SearchError, match="memory-mapped .read-only.; load it with mmap=False to add"):
        mapped.add(z[4000:], ids[4000:])
    writable = SimilarityIndex.load(tmp_path, mmap=False)
    writable.add(z[4000:], ids[4000:])  # the trained lists take the new galaxies
    assert len(writable) == 5000
    hits = writable.search(z[4500], k=1)
    assert hits[0].id_str == "m04500" and hits[0].score == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(SearchError, match="galaxy 'm04500' is already in the index"):
        writable.add(z[4500:4501], ids[4500:4501])


def test_an_index_saved_before_its_metadata_existed_still_loads(clustered, tmp_path):
    z, _, ids = clustered
    SimilarityIndex.build(z, ids).save(tmp_path)
    (tmp_path / "index_meta.json").unlink()
    old = SimilarityIndex.load(tmp_path)
    assert old.meta.kind == "exact" and not old.read_only and len(old.search_row("g001", 3)) == 3
    assert old.describe() == "60 galaxies, exact search"


@pytest.mark.parametrize("method", ["pca", "tsne", "umap"])
def test_projections_keep_clusters_apart(clustered, method):
    z, labels, _ = clustered
    xy = project(z, method)
    assert xy.shape == (60, 2)
    centres = np.stack([xy[labels == c].mean(0) for c in range(3)])
    spread = np.mean([np.linalg.norm(xy[labels == c] - centres[c], axis=1).mean() for c in range(3)])
    gaps = [np.linalg.norm(centres[a] - centres[b]) for a in range(3) for b in range(a + 1, 3)]
    assert min(gaps) > spread


@pytest.mark.parametrize("method", ["tsne", "umap"])
def test_past_the_fit_limit_a_sample_is_fitted_and_the_rest_placed_into_its_map(method):
    """What the worker does for a large survey: fit on a sample, transform the others; the galaxies
    placed afterwards land by their own class, not anywhere."""
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(3, 32)) * 4
    labels = np.repeat(np.arange(3), 100)
    z = (centres[labels] + rng.normal(size=(300, 32))).astype(np.float32)
    xy = project(z, method, fit_limit=90)
    assert xy.shape == (300, 2) and np.isfinite(xy).all()
    fitted = np.zeros(300, bool)
    fitted[np.sort(np.random.default_rng(0).choice(300, 90, replace=False))] = True
    centre = np.stack([xy[fitted & (labels == c)].mean(0) for c in range(3)])  # the sample's clusters
    placed = ~fitted
    nearest = np.argmin(((xy[placed, None, :] - centre[None]) ** 2).sum(-1), axis=1)
    assert (nearest == labels[placed]).mean() > 0.95


def test_grid_assignment_puts_neighbours_side_by_side():
    # points on a line from left to right must fill the grid left to right
    xy = np.stack([np.linspace(0, 1, 16), np.zeros(16)], 1)
    cells = grid_assignment(xy, 1, 16)
    assert cells.tolist() == [list(range(16))]
    rng = np.random.default_rng(0)
    pts = rng.uniform(size=(200, 2))
    g = grid_assignment(pts, 6, 6)
    assert len(set(g.ravel())) == 36 and g.min() >= 0
    # top-left cell holds a point from the top-left of the cloud
    assert pts[g[0, 0], 0] < 0.35 and pts[g[0, 0], 1] > 0.65
    assert (grid_assignment(pts[:4], 3, 3) == -1).sum() == 5


def test_projection_cache_is_reused(clustered, tmp_path):
    z, _, _ = clustered
    a = cached_projection(tmp_path, z, "pca")
    np.save(tmp_path / "proj_pca_0.npy", a + 1)  # a cached file wins over recomputing
    assert np.allclose(cached_projection(tmp_path, z, "pca"), a + 1)
