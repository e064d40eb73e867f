import numpy as np
import pytest

from galaxalign.index import SearchError, SimilarityIndex
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


@pytest.mark.parametrize("method", ["pca", "tsne", "umap"])
def test_projections_keep_clusters_apart(clustered, method):
    z, labels, _ = clustered
    xy = project(z, method)
    assert xy.shape == (60, 2)
    centres = np.stack([xy[labels == c].mean(0) for c in range(3)])
    spread = np.mean([np.linalg.norm(xy[labels == c] - centres[c], axis=1).mean() for c in range(3)])
    gaps = [np.linalg.norm(centres[a] - centres[b]) for a in range(3) for b in range(a + 1, 3)]
    assert min(gaps) > spread


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
