import numpy as np
import pytest
from sklearn.metrics import average_precision_score, f1_score

from galaxalign.metrics import accuracy, average_precisions, classification_report, confusion, macro_f1, retrieval_map


def _sklearn_ap(z, labels, q):
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    others = np.arange(len(z)) != q
    return average_precision_score(labels[others] == labels[q], z[others] @ z[q])


def test_map_agrees_with_sklearn_average_precision():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 60)
    z = rng.normal(size=(60, 8)) + 1.5 * np.eye(8)[labels]  # class-dependent signal
    ours = average_precisions(z, labels)
    ref = np.array([_sklearn_ap(z, labels, q) for q in range(60)])
    assert np.allclose(ours, ref, atol=1e-6)
    assert retrieval_map(z, labels) == pytest.approx(ref.mean())


def test_ap_at_k_by_hand():
    # query 0 (class 0); ranking of others: [1 (rel), 2 (not), 3 (rel)], R = 2
    z = np.array([[1.0, 0.0], [0.99, 0.14], [0.9, 0.43], [0.5, 0.86]])
    labels = np.array([0, 0, 1, 0])
    ap = average_precisions(z, labels, k=2)[0]
    assert ap == pytest.approx((1 / 2) * (1.0 * 1))  # P@1·1 + P@2·0, over min(2, R=2)
    ap_full = average_precisions(z, labels)[0]
    assert ap_full == pytest.approx((1.0 + 2 / 3) / 2)
    ap1 = average_precisions(z, labels, k=1)[0]
    assert ap1 == pytest.approx(1.0)


def test_perfect_and_hopeless_retrieval():
    labels = np.repeat(np.arange(3), 5)
    assert retrieval_map(np.eye(3)[labels], labels, k=5) == pytest.approx(1.0)
    assert retrieval_map(np.eye(3)[labels], labels) == pytest.approx(1.0)
    # a singleton class has no relevant galaxy: it is left out of the mean, not counted as zero
    labels2 = np.array([0, 0, 1])
    assert np.isnan(average_precisions(np.eye(2)[[0, 0, 1]], labels2)[2])
    with pytest.raises(ValueError, match="no query"):
        retrieval_map(np.eye(3), np.array([0, 1, 2]))


def test_classification_metrics_match_sklearn():
    y = np.array([0, 0, 1, 1, 2, 2, 2])
    p = np.array([0, 1, 1, 1, 2, 0, 2])
    assert accuracy(y, p) == pytest.approx(5 / 7)
    assert macro_f1(y, p) == pytest.approx(f1_score(y, p, average="macro"))
    m = confusion(y, p, 3)
    assert m.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 2]]
    rep = classification_report(y, p, ["a", "b", "c"])
    assert rep["recall"]["c"] == pytest.approx(2 / 3) and rep["confusion"] == m.tolist()
    with pytest.raises(ValueError):
        accuracy([], [])
