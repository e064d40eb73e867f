"""The last step of every embedding (an embed job, or the shard that completes a sharded one)."""
from __future__ import annotations

from ..index import SimilarityIndex
from ..projection import cached_projection
from ..store import set_model_embeddings, store_predictions
from ..workspace import Workspace

__all__ = ["publish_embeddings"]


def publish_embeddings(store, workspace: Workspace, row, mv, emb, preds) -> None:
    """After a survey is embedded (whole, or its last shard): predictions into the store, the FAISS
    index and the PCA map beside the embeddings, and the model version pointed at them."""
    out = workspace.embeddings_of(mv.name, row.name)
    probs = preds[[c for c in preds.columns if c.startswith("p_")]].to_numpy()
    store_predictions(store, mv.id, row.name, probs, ood=preds["ood"].to_numpy() if "ood" in preds else None,
                      disagreement=preds["disagreement"].to_numpy() if "disagreement" in preds else None)
    SimilarityIndex.build(emb, preds["id_str"].to_numpy()).save(out)
    cached_projection(out, emb, "pca")  # Explore's first map is read from disk, never computed in the page
    set_model_embeddings(store, mv.id, str(workspace.embeddings / mv.name))
