"""Running a trained model over a survey: embeddings, class probabilities, evaluation.

>>> model = load_model("run")                                         # doctest: +SKIP
>>> emb = embed_images(model, survey, test_idx)                       # (n, D), L2-normalised
>>> probs = class_probabilities(model, emb)                           # (n, C), softmax over prompts
>>> evaluate_model(model, survey, test_idx)["accuracy"]               # doctest: +SKIP
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .data import Survey
from .fsutil import atomic_path
from .metrics import classification_report, retrieval_map
from .model import ModelError, TriModalCLIP, bf16_native
from .ood import MAX_REFERENCE, Familiarity
from .symbols import render_symbol

__all__ = ["embed_images", "class_prototypes", "class_probabilities", "evaluate_model", "embed_survey", "embed_rows",
           "load_embeddings", "familiarity_of", "calibrate_familiarity", "PROTOTYPES", "weights_key", "prediction_table"]

PROTOTYPES = ("text", "symbol", "fused")


def _dihedral_mean(model: TriModalCLIP, x: torch.Tensor) -> torch.Tensor:
    """The normalised mean embedding over the eight rotations by quarter turns and their mirror images:
    the sky has no up, so a galaxy's class does not change under them (test-time augmentation)."""
    z = 0
    for flip in (False, True):
        xf = torch.flip(x, dims=(-1,)) if flip else x
        for k in range(4):
            z = z + model.encode_image(torch.rot90(xf, k, dims=(-2, -1)), normalize=True)
    return torch.nn.functional.normalize(z, dim=-1)


PRECISIONS = ("fp32", "bf16", "auto")


def use_bf16(precision: str, device: torch.device) -> bool:
    """``bf16``: autocast the tower to bfloat16; ``auto``: only where it is native (a GPU, or a CPU with
    AVX-512 BF16 / AMX, where it runs faster; elsewhere it is emulated and slower); ``fp32``: never."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        return bf16_native(device)
    return precision == "bf16"


@torch.inference_mode()
def embed_images(model: TriModalCLIP, survey: Survey, indices=None, batch_size: int = 256,
                 progress: Callable[[int, int], None] | None = None, tta: bool = False,
                 precision: str = "fp32") -> np.ndarray:
    """L2-normalised image embeddings (n, D) float32 of ``indices`` (default: the whole survey);
    ``tta``: averaged over the eight quarter-turn rotations and flips of each image (8× the cost);
    ``precision``: the tower's arithmetic (:func:`use_bf16`), the embeddings are float32 either way."""
    model.eval()
    idx = np.arange(len(survey)) if indices is None else np.asarray(indices)
    device = next(model.parameters()).device
    bf16 = use_bf16(precision, device)
    out = []
    done = 0
    for _, imgs in survey.iter_batches(batch_size, idx):
        x = model.preprocess(imgs)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            z = _dihedral_mean(model, x) if tta else model.encode_image(x, normalize=True)
        out.append(torch.nn.functional.normalize(z.float(), dim=-1).cpu().numpy())
        done += len(imgs)
        if progress:
            progress(done, len(idx))
    return np.concatenate(out) if out else np.zeros((0, model.embed_dim), np.float32)


@torch.inference_mode()
def class_prototypes(model: TriModalCLIP, kind: str = "text") -> np.ndarray:
    """(C, D) unit vectors standing for each class: its prompt (``text``), its canonical symbol
    (``symbol``), or the normalised mean of both (``fused``)."""
    if not model.prompts:
        raise ModelError("the model carries no class prompts; train it on a labelled survey first")
    if kind not in PROTOTYPES:
        raise ValueError(f"prototype kind must be one of {PROTOTYPES}, got {kind!r}")
    model.eval()
    txt = model.encode_text(model.tokenize(model.prompts), normalize=True)
    if kind == "text":
        return txt.float().cpu().numpy()
    syms = np.stack([np.asarray(render_symbol(s, model.image_size)) for s in model.symbols])
    sym = model.encode_symbol(model.preprocess(syms), normalize=True)
    if kind == "symbol":
        return sym.float().cpu().numpy()
    return torch.nn.functional.normalize(txt + sym, dim=-1).float().cpu().numpy()


def class_probabilities(model: TriModalCLIP, embeddings: np.ndarray, kind: str = "text",
                        prototypes: np.ndarray | None = None) -> np.ndarray:
    """Softmax over classes of s · cos(image, prototype), s the model's learnt logit scale: (n, C)."""
    protos = class_prototypes(model, kind) if prototypes is None else prototypes
    scale = float(model.logit_scale.detach())
    logits = scale * embeddings @ protos.T
    logits -= logits.max(1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(1, keepdims=True)


def evaluate_model(model: TriModalCLIP, survey: Survey, indices=None, batch_size: int = 256,
                   embeddings: np.ndarray | None = None, tta: bool = False) -> dict:
    """Accuracy and macro-F1 (text, symbol and fused prototypes), mAP@5 and mAP, confusion matrix.

    Evaluates the labelled galaxies among ``indices`` (default: all).
    """
    idx = np.arange(len(survey)) if indices is None else np.asarray(indices)
    idx = idx[survey.labels[idx] >= 0]
    if len(idx) == 0:
        raise ModelError(f"{survey.path}: no labelled galaxy to evaluate")
    y = survey.labels[idx]
    emb = embed_images(model, survey, idx, batch_size, tta=tta) if embeddings is None else embeddings
    names = model.class_names or survey.class_names
    report = classification_report(y, class_probabilities(model, emb, "text").argmax(1), names)
    out = {"n": int(len(idx)), "accuracy": report["accuracy"], "macro_f1": report["macro_f1"]}
    for kind in ("symbol", "fused"):
        pred = class_probabilities(model, emb, kind).argmax(1)
        rep = classification_report(y, pred, names)
        out[f"accuracy_{kind}"], out[f"macro_f1_{kind}"] = rep["accuracy"], rep["macro_f1"]
    try:
        out["map_at_5"] = retrieval_map(emb, y, k=5)
        out["map"] = retrieval_map(emb, y)
    except ValueError:  # every class has a single galaxy in this split: retrieval is undefined
        out["map_at_5"] = out["map"] = None
    out["recall"] = report["recall"]
    out["confusion"] = report["confusion"]
    return out


CHUNK = 8192  # images embedded between two progress marks of embed_survey (what a crash can lose)


def weights_key(model: TriModalCLIP) -> str:
    """A short fingerprint of the image tower's weights: a resumed embedding must come from the same ones."""
    params = list(model.clip.visual.parameters())
    h = hashlib.sha256()
    for p in (params[0], params[-1]):
        h.update(p.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def embed_survey(model: TriModalCLIP, survey: Survey, out: str | os.PathLike, batch_size: int = 256,
                 progress: bool = True, precision: str = "fp32", chunk: int | None = None) -> dict:
    """Embed and classify the whole survey; write ``embeddings.npy`` (N, D) float32 and
    ``predictions.parquet`` (``id_str``, ``pred``, ``confidence``, ``ood`` when the model carries its
    calibration, ``p_<class>``…) into folder ``out``.

    The embeddings stream to disk ``chunk`` images at a time (a memory-mapped ``.embeddings.partial.npy``
    and a mark of how far it got), so a survey larger than memory fits, and a run stopped part-way (a
    killed worker) resumes where it stopped — when the same weights, survey size and precision come
    back; anything else starts over. Both files are renamed into place at the end. Returns what it
    wrote (``"embeddings"``, memory-mapped, and ``"predictions"``) with ``{"n", "dim", "seconds",
    "images_per_second", "path", "resumed_from"}``, so that nobody reads it back."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    chunk = chunk or CHUNK
    n, dim = len(survey), int(model.embed_dim)
    partial, mark = out / ".embeddings.partial.npy", out / ".embeddings.partial.json"
    key = {"n": n, "dim": dim, "weights": weights_key(model), "precision": precision}
    done = 0
    if partial.exists() and mark.exists():
        try:
            state = json.loads(mark.read_text())
            done = int(state["done"]) if {k: state.get(k) for k in key} == key else 0
        except (OSError, ValueError, KeyError, TypeError):
            done = 0
    emb = (np.load(partial, mmap_mode="r+") if done else
           np.lib.format.open_memmap(partial, mode="w+", dtype=np.float32, shape=(n, dim)))
    resumed_from = done
    bar = tqdm(total=n, initial=done, desc="embedding", unit="img", disable=not progress)
    t0 = time.perf_counter()
    embed_rows(model, survey, emb, done, n, mark, key, batch_size, precision, chunk,
               on_chunk=lambda row: bar.update(row - bar.n))
    seconds = time.perf_counter() - t0
    bar.close()
    del emb
    partial.replace(out / "embeddings.npy")
    mark.unlink(missing_ok=True)
    emb = np.load(out / "embeddings.npy", mmap_mode="r")
    df = prediction_table(model, survey, emb)
    with atomic_path(out / "predictions.parquet") as tmp:
        df.to_parquet(tmp, index=False)
    embedded = n - resumed_from
    return {"n": n, "dim": dim, "seconds": round(seconds, 3), "resumed_from": resumed_from,
            "images_per_second": round(embedded / max(seconds, 1e-9), 1), "path": str(out),
            "embeddings": emb, "predictions": df}


def embed_rows(model: TriModalCLIP, survey: Survey, emb: np.ndarray, start: int, stop: int, mark: Path,
               mark_fields: dict | None = None, batch_size: int = 256, precision: str = "fp32",
               chunk: int | None = None, on_chunk=None) -> int:
    """Fill rows ``start``–``stop`` of the memory-mapped ``emb`` chunk by chunk; after each chunk the array
    is flushed and ``mark`` rewritten atomically as ``{**mark_fields, "done": row}``, so a run stopped
    part-way loses at most one chunk (:func:`embed_survey`, and every shard of
    :mod:`galaxalign.jobs.shards`). ``on_chunk(row)`` after each chunk. Returns ``stop``."""
    chunk = chunk or CHUNK
    done = start
    while done < stop:
        idx = np.arange(done, min(stop, done + chunk))
        emb[idx] = embed_images(model, survey, idx, batch_size, precision=precision)
        emb.flush()
        done = int(idx[-1]) + 1
        with atomic_path(mark) as tmp:
            Path(tmp).write_text(json.dumps({**(mark_fields or {}), "done": done}))
        if on_chunk is not None:
            on_chunk(done)
    return done


def head_disagreement(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """BALD-like disagreement of two heads' class probabilities, per row, 0–1: the mutual information
    between the answer and which head gives it, H(mean) − mean H — the Jensen–Shannon divergence of the
    two, divided by its maximum ln 2. 0 when the heads agree, 1 when they are sure of different classes."""
    def entropy(x):
        return -np.sum(np.where(x > 0, x * np.log(np.clip(x, 1e-30, None)), 0.0), axis=1)
    p, q = np.asarray(p, float), np.asarray(q, float)
    return np.clip((entropy((p + q) / 2) - (entropy(p) + entropy(q)) / 2) / np.log(2), 0.0, 1.0)


def prediction_table(model: TriModalCLIP, survey: Survey, emb: np.ndarray) -> pd.DataFrame:
    emb = np.asarray(emb)
    probs = class_probabilities(model, emb)
    df = pd.DataFrame({"id_str": survey.id_str, "pred": probs.argmax(1), "confidence": probs.max(1)})
    if model.symbols:  # the second head: the same galaxies against the classes' symbols
        df["disagreement"] = head_disagreement(probs, class_probabilities(model, emb, "symbol")).astype(np.float32)
    fam = familiarity_of(model)
    if fam is not None:  # unfamiliarity (> 1: out of distribution), see galaxalign.ood
        df["ood"] = fam.scores(emb).astype(np.float32)
    for c, name in enumerate(model.class_names):
        df[f"p_{c}"] = probs[:, c].astype(np.float32)
    return df


def familiarity_of(model: TriModalCLIP):
    """The checkpoint's out-of-distribution calibration (:class:`galaxalign.ood.Familiarity`), or
    ``None`` for a model saved before calibration existed."""
    d = getattr(model, "checkpoint_meta", {}).get("familiarity")
    return Familiarity.from_dict(d) if d else None


def calibrate_familiarity(model: TriModalCLIP, survey: Survey, labels: np.ndarray, train_idx: np.ndarray,
                          held_idx: np.ndarray, seed: int = 0):
    """Fit :class:`galaxalign.ood.Familiarity` for ``model``: up to ``MAX_REFERENCE`` training galaxies
    as reference, the labelled galaxies of ``held_idx`` (not trained on) for the limit and the floor."""
    train_idx = np.asarray(train_idx)
    ref = train_idx if len(train_idx) <= MAX_REFERENCE else np.sort(
        np.random.default_rng(seed).choice(train_idx, MAX_REFERENCE, replace=False))
    held = np.asarray(held_idx)
    held = held[labels[held] >= 0]
    held_emb = embed_images(model, survey, held)
    probs = class_probabilities(model, held_emb) if len(held) else np.zeros((0, 1))
    return Familiarity.fit(embed_images(model, survey, ref), held_emb, labels[held], probs, seed=seed)


def load_embeddings(folder: str | os.PathLike, mmap: bool = False):
    """``(embeddings (N, D), predictions DataFrame)`` written by :func:`embed_survey`; ``mmap``: the
    embeddings memory-mapped read-only (the app's shared copy)."""
    folder = Path(folder)
    try:
        return (np.load(folder / "embeddings.npy", mmap_mode="r" if mmap else None),
                pd.read_parquet(folder / "predictions.parquet"))
    except FileNotFoundError as e:
        raise ModelError(f"{e.filename}: no embeddings there; run `galaxalign embed` first") from None
