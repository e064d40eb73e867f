"""Two-stage GalaxAlign fine-tuning (paper §3.2–3.3, appendix A.1).

Stage 1 (warm-up): galaxies and symbols share the image tower; loss = L(img, txt) + L(sym, txt).
Stage 2: ``begin_stage2()`` copies the image tower into a symbol tower; loss over all three pairs.

    galaxalign train --config configs/tiny-cpu.yaml --survey x.h5 --out run

or, from Python::

    cfg = load_config("configs/tiny-cpu.yaml")
    result = train(cfg, survey_path="x.h5", out_dir="run")

Text and symbols are per class, so each step encodes each distinct prompt and symbol of the batch
once and gathers them to the batch (``unique_encode``; the per-sample loop is kept for the benchmark).
Symbols are random variants of the class glyph (:func:`galaxalign.symbols.render_symbol`), drawn from a
bank rendered once. ``torchrun --nproc_per_node N -m galaxalign train …`` trains with DDP (gloo on
CPU, NCCL on GPU); rank 0 writes the run folder.

The run folder holds ``config.yaml`` (resolved), ``metrics.jsonl`` (one line per epoch and per
evaluation), ``last.pt`` (for ``--resume``) and ``model.pt`` + ``model.json`` (the result).
"""
from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
import yaml
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from .data import Survey, load_survey, stratified_split
from .engine import EarlyStop, Engine, amp_enabled, decay_groups, device_for
from .equivariant import turn
from .errors import GalaxalignError
from .fsutil import atomic_path
from .inference import calibrate_familiarity, class_probabilities, embed_images, evaluate_model
from .loss import STAGE1_PAIRS, STAGE2_PAIRS, GalaxAlignLoss, parse_pairs, vote_nll
from .model import ModelCfg, TriModalCLIP, create_model, load_model, save_model
from .symbols import render_symbol
from .taxonomy import AnswerMap, LabelSetError, make_prompt

__all__ = ["TrainCfg", "ConfigError", "load_config", "train", "stage_plan", "VARIANTS", "SymbolBank",
           "class_text_for", "encode_batch", "augment_images", "resolve_split",
           "epoch_order"]

VARIANTS = ("galaxalign", "clip", "v1", "v2", "v3", "scratch", "no_text")


class ConfigError(GalaxalignError):
    """A training config that cannot be used; the message names the file and the key."""


@dataclass
class TrainCfg:
    """Every training setting. Fields map one-to-one onto the YAML keys; ``model`` is a
    :class:`~galaxalign.model.ModelCfg` block.

    ``variant`` picks a schedule of stages (paper §4.6): ``galaxalign`` (stage 1 warm-up then stage 2),
    ``clip`` (bi-modal image–text fine-tuning, no symbols), ``v1`` (stage 1 only, warm-up length),
    ``v2`` (stage 2 only, from the start), ``v3`` (stage 1 only, full length), ``scratch``
    (``galaxalign`` without pretrained weights), ``no_text`` (image–symbol only).

    Augmentation (``augment``) respects the sky: ``rotation`` ``any`` (any angle, plus a flip),
    ``quarter`` (quarter turns and flips) or ``none``; a random shift of up to ``shift`` of the width;
    Gaussian noise up to ``noise`` (a fraction of full scale). ``split``: ``auto`` uses the survey's own
    train / valid / test split when it has one (``fixed`` demands it, ``random`` ignores it for the
    stratified 80/20 split). ``patience`` > 0 evaluates the valid split after every epoch of the last
    stage, keeps the best epoch's weights and stops after that many epochs without improvement.
    ``amp``: bf16 autocast on CUDA and on CPUs with native bf16 (AVX-512 BF16 or AMX). ``balanced``:
    each class equally likely in every epoch (:func:`epoch_order`). ``ema`` > 0: an exponential moving
    average of the weights over the steps of the last stage, with that decay per step
    (``torch.optim.swa_utils``); it is what the valid split scores, what early stopping keeps and what
    is saved — the average of many nearby iterates, steadier than any one of them.
    """

    model: ModelCfg = field(default_factory=ModelCfg)
    variant: str = "galaxalign"
    stage1_epochs: int = 4
    stage2_epochs: int = 8
    stage1_pairs: tuple[str, ...] = STAGE1_PAIRS
    stage2_pairs: tuple[str, ...] = STAGE2_PAIRS
    class_aware: bool = False
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.02
    warmup_steps: int = 20
    grad_clip: float = 1.0
    test_size: float = 0.2
    split_seed: int = 0
    seed: int = 0
    symbol_variants: int = 24
    unique_encode: bool = True
    augment: bool = True
    rotation: str = "quarter"  # the wave-1 default, kept so its figures reproduce; configs choose "any"
    shift: float = 0.0
    noise: float = 0.0
    split: str = "auto"
    balanced: bool = False
    patience: int = 0
    amp: bool = False
    ema: float = 0.0                  # > 0: the weights saved are this exponential moving average (per step)
    vote_concentration: float = 10.0  # A of the Dirichlet–multinomial vote term (training with vote counts)
    vote_weight: float = 1.0          # its weight beside the contrastive terms
    semi_threshold: float = 0.0       # > 0: FixMatch on unlabelled galaxies, pseudo-labels from this confidence
    semi_weight: float = 1.0          # the weight of that term
    eval_every_stage: bool = True
    device: str = "auto"

    @classmethod
    def from_dict(cls, d: dict, source: str = "config") -> "TrainCfg":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown key(s) {', '.join(unknown)}")
        d = dict(d)
        if "model" in d:
            try:
                d["model"] = ModelCfg.from_dict(d["model"] or {})
            except GalaxalignError as e:
                raise ConfigError(f"{source}: {e}") from None
        for k in ("stage1_pairs", "stage2_pairs"):
            if k in d:
                try:
                    d[k] = parse_pairs(d[k])
                except ValueError as e:
                    raise ConfigError(f"{source}: {k}: {e}") from None
        cfg = cls(**d)
        cfg.check(source)
        return cfg

    def check(self, source: str = "config") -> None:
        if self.variant not in VARIANTS:
            raise ConfigError(f"{source}: variant {self.variant!r} is not one of {', '.join(VARIANTS)}")
        for k in ("stage1_epochs", "stage2_epochs", "warmup_steps"):
            if getattr(self, k) < 0:
                raise ConfigError(f"{source}: {k} must be ≥ 0")
        if self.batch_size < 2:
            raise ConfigError(f"{source}: batch_size must be ≥ 2 (a contrastive batch needs negatives)")
        if not (0 < self.lr < 1):
            raise ConfigError(f"{source}: lr must be between 0 and 1, got {self.lr}")
        if not 0 < self.test_size < 1:
            raise ConfigError(f"{source}: test_size must be between 0 and 1")
        if self.rotation not in ("any", "quarter", "none"):
            raise ConfigError(f"{source}: rotation {self.rotation!r} must be any, quarter or none")
        if self.split not in ("auto", "fixed", "random"):
            raise ConfigError(f"{source}: split {self.split!r} must be auto, fixed or random")
        if not 0 <= self.shift <= 0.5 or not 0 <= self.noise <= 0.5:
            raise ConfigError(f"{source}: shift and noise must be between 0 and 0.5")
        if self.patience < 0:
            raise ConfigError(f"{source}: patience must be ≥ 0")
        if not 0 <= self.ema < 1:
            raise ConfigError(f"{source}: ema must be in [0, 1) (the decay per step; 0 = off), got {self.ema}")
        if not self.vote_concentration > 0 or self.vote_weight < 0:
            raise ConfigError(f"{source}: vote_concentration must be > 0 and vote_weight ≥ 0")
        if not 0 <= self.semi_threshold < 1 or self.semi_weight < 0:
            raise ConfigError(f"{source}: semi_threshold must be in [0, 1) and semi_weight ≥ 0")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["stage1_pairs"], d["stage2_pairs"] = list(self.stage1_pairs), list(self.stage2_pairs)
        return d


def read_settings(path: str | os.PathLike, missing: str = "no such config file") -> dict:
    """A YAML file of settings as a dict; a missing file, bad YAML or a non-mapping is one-line
    :class:`ConfigError` naming the file (``missing`` words the first case)."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: {missing}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of settings")
    return raw


def load_config(path: str | os.PathLike, **overrides) -> TrainCfg:
    """Read a YAML training config; ``overrides`` replace top-level keys (``model`` merges)."""
    path = Path(path)
    raw = read_settings(path)
    pre = (raw.get("model") or {}).get("pretrained") if isinstance(raw.get("model"), dict) else None
    if pre and (os.path.sep in pre or pre.endswith((".pt", ".pth"))) and not os.path.isabs(pre):
        # a local checkpoint named in a config is relative to the config file, wherever we run from
        raw["model"]["pretrained"] = str((path.parent / pre).resolve())
    for k, v in overrides.items():
        if v is None:
            continue
        if k == "model":
            raw["model"] = {**(raw.get("model") or {}), **v}
        else:
            raw[k] = v
    return TrainCfg.from_dict(raw, str(path))


@dataclass(frozen=True)
class StagePlan:
    stage: int
    epochs: int
    pairs: tuple[str, ...]


def stage_plan(cfg: TrainCfg) -> list[StagePlan]:
    """The stages a variant runs (paper §4.6). Total epochs are the same for every variant, so
    the ablations compare like with like."""
    e1, e2, total = cfg.stage1_epochs, cfg.stage2_epochs, cfg.stage1_epochs + cfg.stage2_epochs
    v = cfg.variant
    if v in ("galaxalign", "scratch"):
        plan = [StagePlan(1, e1, cfg.stage1_pairs), StagePlan(2, e2, cfg.stage2_pairs)]
    elif v == "clip":
        plan = [StagePlan(1, total, ("img_txt",))]
    elif v == "v1":
        plan = [StagePlan(1, e1, cfg.stage1_pairs)]
    elif v == "v2":
        plan = [StagePlan(2, total, cfg.stage2_pairs)]
    elif v == "v3":
        plan = [StagePlan(1, total, cfg.stage1_pairs)]
    else:  # no_text
        plan = [StagePlan(1, e1, ("img_sym",)), StagePlan(2, e2, ("img_sym",))]
    return [p for p in plan if p.epochs > 0]


def class_text_for(survey: Survey) -> tuple[list[str], list[str], list[str], str | None]:
    """``(class_names, prompts, symbols, label_set)`` of a survey. Classes outside the built-in label
    sets get the paper's prompt and the generic "features" symbol."""
    if survey.label_set is not None:
        ls = survey.label_set
        return ls.class_names, ls.prompts, ls.symbols, ls.name
    names = list(survey.class_names)
    return names, [make_prompt(n) for n in names], ["t01_features"] * len(names), None


def _check_trimodal(survey: Survey, model: TriModalCLIP) -> None:
    """A run with symbol terms needs a symbol and a prompt of its own for every class."""
    if survey.label_set is None:
        raise ConfigError(f"{survey.path}: its classes ({', '.join(survey.class_names)}) have no label set, so they "
                          "would share one generic symbol; give a label-set file (--labelset) or train --variant clip")
    try:
        survey.label_set.check_trimodal(model.tokenize)
    except LabelSetError as e:
        raise ConfigError(str(e)) from None


class SymbolBank:
    """Random variants of each class symbol, rendered once: ``(C, V, 3, S, S)`` preprocessed."""

    def __init__(self, model: TriModalCLIP, symbols: list[str], variants: int, seed: int):
        rng = np.random.default_rng(seed)
        imgs = np.stack([
            np.stack([np.asarray(render_symbol(s, model.image_size, rng if v else None)) for v in range(variants)])
            for s in symbols])  # (C, V, S, S, 3); variant 0 is the canonical glyph
        c, v = imgs.shape[:2]
        with torch.no_grad():
            self.tensor = model.preprocess(imgs.reshape(c * v, *imgs.shape[2:])).reshape(c, v, 3, model.image_size,
                                                                                       model.image_size)
        self.variants = v

    def sample(self, classes: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        pick = torch.randint(0, self.variants, (len(classes),), generator=gen)
        return self.tensor[classes.cpu(), pick]


def encode_batch(model, x: torch.Tensor, y: torch.Tensor, tokens: torch.Tensor, bank: "SymbolBank",
                 gen: torch.Generator, need_sym: bool = True, need_txt: bool = True, unique: bool = True,
                 all_classes: bool = False) -> dict:
    """Embeddings of one batch, every one aligned to the batch: ``{"img", "sym", "txt"}`` (B, D) + ``"scale"``.

    ``unique``: text and symbols are per class, so each distinct class of the batch is encoded once
    (U ≤ C encodings) and gathered back to the B samples; otherwise one encoding per sample (the
    naive loop, kept for the benchmark). ``all_classes``: every class's text and symbol is encoded, and
    ``"txt_all"`` (C, D) holds the class texts in class order. ``model`` may be the DDP wrapper.
    """
    if all_classes:  # every class once (the vote term needs all of them)
        classes, inv = torch.arange(len(tokens), device=y.device), y
    elif unique:
        classes, inv = torch.unique(y, return_inverse=True)
    else:
        classes, inv = y, torch.arange(len(y), device=x.device)
    sym_in = bank.sample(classes, gen).to(x.device) if need_sym else None
    txt_in = tokens[classes] if need_txt else None
    z = model(image=x, symbol=sym_in, text=txt_in)
    out = {k: (v[inv] if k in ("sym", "txt") else v) for k, v in z.items()}  # (U, D) → (B, D)
    if all_classes and "txt" in z:
        out["txt_all"] = z["txt"]
    return out


def turn_images(x: torch.Tensor, angle: torch.Tensor, flip: torch.Tensor | None = None,
                shift: torch.Tensor | None = None) -> torch.Tensor:
    """(B, H, W, 3) uint8 turned by ``angle`` (B,) radians, mirrored where ``flip`` (B,) is -1 and moved by
    ``shift`` (B, 2) in units of half the width (:func:`galaxalign.equivariant.turn`, rounded back to uint8)."""
    f = turn(x.permute(0, 3, 1, 2).float(), angle, flip, shift)
    return f.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def augment_images(x: torch.Tensor, gen: torch.Generator, rotation: str = "any", shift: float = 0.0,
                   noise: float = 0.0) -> torch.Tensor:
    """Augmentations that keep the class of a galaxy, per image: (B, H, W, 3) uint8 → same.

    A galaxy has no up and no handedness that its class depends on: any rotation (``any``; bilinear,
    edges extended so no black corners appear) or quarter turns (``quarter``, exact), and a mirror
    flip; a shift of up to ``shift`` of the width (catalog centres are not exact); Gaussian noise of a
    random level up to ``noise`` of full scale (depth varies across a survey).
    """
    if rotation == "quarter":
        x = _augment(x, gen)
    elif rotation == "any" or shift > 0:
        b = x.shape[0]
        ang = torch.rand(b, generator=gen) * (2 * math.pi if rotation == "any" else 0.0)
        flip = torch.where(torch.rand(b, generator=gen) < 0.5, -1.0, 1.0)
        t = (torch.rand(b, 2, generator=gen) * 2 - 1) * 2 * shift
        x = turn_images(x, ang, flip, t)
    if noise > 0:
        level = torch.rand(x.shape[0], 1, 1, 1, generator=gen) * noise * 255
        n = torch.randn(x.shape, generator=gen) * level
        x = (x.float() + n).round_().clamp_(0, 255).to(torch.uint8)
    return x


def epoch_order(train_idx: np.ndarray, labels: np.ndarray, seed: int, epoch: int, balanced: bool = False) -> np.ndarray:
    """The training galaxies of one epoch, in order. ``balanced``: as many draws as there are galaxies,
    each class equally likely (with replacement inside a class) — for a survey whose training split is
    imbalanced but whose valid and test splits are balanced (FIRST: 824 FRII of 1,758, 50 per class in
    test), so that the model's prior matches the one it is judged under."""
    rng = np.random.default_rng([seed, epoch])
    if not balanced:
        return rng.permutation(train_idx)
    y = labels[train_idx]
    classes, counts = np.unique(y, return_counts=True)
    w = (1.0 / counts)[np.searchsorted(classes, y)]
    return rng.choice(train_idx, size=len(train_idx), replace=True, p=w / w.sum())


def resolve_split(survey: Survey, cfg: "TrainCfg", labels: np.ndarray | None = None):
    """``(train, valid, test)`` indices: the survey's own split under ``split: auto|fixed`` when it has
    one, else a stratified random split (``test_size``, ``split_seed``) with no valid part."""
    labels = survey.labels if labels is None else labels
    if cfg.split == "fixed" and not survey.has_split:
        raise ConfigError(f"{survey.path}: split 'fixed' asked for, but the survey has no split column")
    if cfg.split != "random" and survey.has_split:
        return survey.split_indices("train"), survey.split_indices("valid"), survey.split_indices("test")
    tr, te = stratified_split(labels, cfg.test_size, cfg.split_seed)
    return tr, np.zeros(0, np.int64), te


def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Flips and quarter turns, per image: a galaxy has no up (B, H, W, 3) uint8 → same."""
    b = x.shape[0]
    flip = torch.rand(b, generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(2), x)
    k = torch.randint(0, 4, (b,), generator=gen)
    out = x.clone()
    for r in (1, 2, 3):
        m = k == r
        if m.any():
            out[m] = torch.rot90(x[m], r, dims=(1, 2))
    return out


def _dist_info() -> tuple[int, int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0))
    return 0, 1, 0


def _maybe_init_dist(device: torch.device) -> bool:
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        return True
    return False


def _write_jsonl(path: Path, row: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(row, default=float) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _atomic_torch_save(obj, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


class Trainer:
    """One training run; use :func:`train`. Holds the data in memory when it fits (≤ 1 GiB)."""

    def __init__(self, cfg: TrainCfg, survey: Survey, out_dir: Path, labels: np.ndarray | None = None,
                 train_idx: np.ndarray | None = None, test_idx: np.ndarray | None = None,
                 valid_idx: np.ndarray | None = None, init_from: str | None = None, progress: Callable[[float, str], None] | None = None,
                 show_bar: bool = True, votes: np.ndarray | None = None, vote_map: AnswerMap | None = None,
                 unlabelled_idx: np.ndarray | None = None):
        self.cfg, self.survey, self.out = cfg, survey, Path(out_dir)
        self.device = device_for(cfg.device)
        self.rank, self.world, _ = _dist_info()
        self.labels = survey.labels if labels is None else np.asarray(labels, np.int64)
        if len(self.labels) != len(survey):
            raise GalaxalignError(f"labels cover {len(self.labels)} galaxies; the survey has {len(survey)}")
        self.valid_idx = np.zeros(0, np.int64)
        if train_idx is None or test_idx is None:
            tr, va, te = resolve_split(survey, cfg, self.labels)
            train_idx = tr if train_idx is None else train_idx
            test_idx = te if test_idx is None else test_idx
            self.valid_idx = va[self.labels[va] >= 0]
        if valid_idx is not None:
            self.valid_idx = np.asarray(valid_idx, np.int64)
        # vote counts (n, K) over the columns of ``vote_map`` (default: one per class) — from
        # :func:`galaxalign.store.training_votes`: a galaxy with votes trains through the Dirichlet–multinomial
        # term even before it has a label; the contrastive terms keep to labelled rows
        self.votes = None if votes is None else np.asarray(votes, np.float32)
        if self.votes is not None:
            self.vote_map = vote_map or AnswerMap.flat(self.votes.shape[1])
            self.vote_implies = torch.as_tensor(self.vote_map.implies, device=self.device)
            if self.votes.shape != (len(survey), len(self.vote_map.columns)):
                raise GalaxalignError(f"vote counts {self.votes.shape} do not fit the survey's {len(survey)} galaxies "
                                      f"and {len(self.vote_map.columns)} answer columns")
        taught = self.labels >= 0 if self.votes is None else (self.labels >= 0) | (self.votes.sum(1) > 0)
        self.train_idx = np.asarray(train_idx)[taught[np.asarray(train_idx)]]
        # the class each row is paired with (its label, else the class its votes say most for): what balanced
        # epochs count and what an unlabelled row's symbol and text are drawn for
        self.pair_labels = self.labels if self.votes is None else np.where(
            self.labels >= 0, self.labels, (self.votes @ self.vote_map.implies.T).argmax(1))
        self.test_idx = np.asarray(test_idx)
        if len(self.train_idx) < cfg.batch_size:
            raise GalaxalignError(f"{survey.path}: {len(self.train_idx)} labelled training galaxies, fewer than "
                                  f"one batch ({cfg.batch_size})")
        # FixMatch (Sohn et al. 2020) over these galaxies when ``semi_threshold`` > 0: one process only
        self.unlabelled_idx = np.zeros(0, np.int64) if unlabelled_idx is None else np.asarray(unlabelled_idx, np.int64)
        self.semi = cfg.semi_threshold > 0 and len(self.unlabelled_idx) > 0 and self.world == 1
        self.progress, self.show_bar = progress, show_bar
        self.init_from = init_from
        self.ema: AveragedModel | None = None  # the weights' moving average in the last stage (``ema`` > 0)
        self._images = None
        if len(survey) * int(np.prod(survey.image_shape)) <= 1 << 30:
            self._images = torch.from_numpy(survey.images(np.arange(len(survey))))

    # -- data ---------------------------------------------------------------------------------
    def _batch_images(self, idx: np.ndarray) -> torch.Tensor:
        return self._images[idx] if self._images is not None else torch.from_numpy(self.survey.images(idx))

    def _epoch_batches(self, epoch: int) -> list[np.ndarray]:
        perm = epoch_order(self.train_idx, self.pair_labels, self.cfg.seed, epoch, self.cfg.balanced)
        perm = perm[self.rank::self.world]  # each rank its own shard, same number of steps everywhere
        n = len(self.train_idx) // self.world // self.cfg.batch_size
        return [perm[i * self.cfg.batch_size:(i + 1) * self.cfg.batch_size] for i in range(n)]

    # -- run ----------------------------------------------------------------------------------
    def run(self, resume: bool = False) -> dict:
        """Both stages (or the config's plan), with resume, early stopping on valid and the final
        evaluation and calibration; returns ``{"seconds", "epochs", "metrics", ...}``."""
        cfg = self.cfg
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        self.model = self._build_model()
        plan = stage_plan(cfg)
        if any("sym" in pair for sp in plan for pair in sp.pairs):
            _check_trimodal(self.survey, self.model)
        self.bank = SymbolBank(self.model, self.symbols, cfg.symbol_variants, cfg.seed)
        self.metrics_path = self.out / "metrics.jsonl"
        if self.rank == 0:
            self._write_run_config()
        start_stage, start_epoch, state = self._resume_point(plan, resume)
        self.gen = torch.Generator().manual_seed(cfg.seed * 1000 + self.rank)
        self.stopper = EarlyStop(cfg.patience)  # the best weights on valid, over the last stage
        evals, global_epoch = [], sum(sp.epochs for sp in plan[:start_stage])
        t_start = time.perf_counter()
        for si in range(start_stage, len(plan)):
            self._run_stage(plan, si, global_epoch, start_epoch if si == start_stage else 0,
                            state if si == start_stage else None)
            global_epoch += plan[si].epochs
            if cfg.eval_every_stage and self.rank == 0 and len(self.test_idx):
                ev = self.evaluate()
                evals.append(ev)
                _write_jsonl(self.metrics_path, {"eval": {k: v for k, v in ev.items() if k != "confusion"},
                                                 "after_stage": plan[si].stage, "global_epoch": global_epoch})
        result = {"seconds": round(time.perf_counter() - t_start, 2), "epochs": self._total(plan)}
        if self.rank == 0:
            result.update(self._finish(evals))
            result["model"] = self.model  # the trained model itself, for a caller that goes on with it
        if self.world > 1:
            dist.barrier()
        return result

    def _build_model(self) -> TriModalCLIP:
        """A fresh model from the config (its ``pretrained`` tower), or a finished one to re-train."""
        cfg = self.cfg
        if self.init_from:
            # re-training from a finished model: its towers (one or two) go on as they are
            model = load_model(self.init_from, self.device).train()
        else:
            model = create_model(replace(cfg.model, pretrained=None) if cfg.variant == "scratch" else cfg.model,
                                 self.device)
        names, prompts, self.symbols, label_set = class_text_for(self.survey)
        model.set_classes(names, prompts, self.symbols, label_set)
        self.tokens = model.tokenize(prompts)  # (C, L)
        return model

    def _write_run_config(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.out / "config.yaml") as tmp:
            tmp.write_text(yaml.safe_dump({**self.cfg.to_dict(), "survey": str(self.survey.path),
                                           "preparation": (self.survey.preparation.to_dict()
                                                           if self.survey.preparation else None),
                                           "n_train": int(len(self.train_idx)),
                                           "n_valid": int(len(self.valid_idx)), "n_test": int(len(self.test_idx)),
                                           "world_size": self.world}, sort_keys=False))

    def _resume_point(self, plan: list[StagePlan], resume: bool) -> tuple[int, int, dict | None]:
        """(stage index, epoch, saved state) to start from: ``last.pt`` when resuming, else the start."""
        last = self.out / "last.pt"
        if not (resume and last.exists()):
            if self.rank == 0 and self.metrics_path.exists():
                self.metrics_path.unlink()
            return 0, 0, None
        state = torch.load(last, map_location="cpu", weights_only=False)
        start_stage, start_epoch = state["stage_index"], state["epoch"] + 1
        if state["stage"] == 2 and self.model.stage == 1:
            self.model.begin_stage2()
        self.model.load_state_dict(state["model"])
        if start_epoch >= plan[start_stage].epochs:
            start_stage, start_epoch, state = start_stage + 1, 0, None
        return start_stage, start_epoch, state

    def _run_stage(self, plan: list[StagePlan], si: int, global_epoch: int, first_epoch: int,
                   state: dict | None) -> None:
        """One stage: its loss terms, optimiser and schedule, then its epochs (early stopping in the last)."""
        cfg, model, sp = self.cfg, self.model, plan[si]
        if sp.stage == 2 and model.stage == 1:
            model.begin_stage2()
            model.to(self.device)
        wrapped = model
        if self.world > 1:
            wrapped = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=True)
        engine = Engine(decay_groups(model, cfg.weight_decay), cfg.lr, betas=(0.9, 0.98), eps=1e-6,
                        total_steps=len(self._epoch_batches(0)) * sp.epochs, warmup_steps=cfg.warmup_steps,
                        grad_clip=cfg.grad_clip or None, clip_params=model.parameters(),
                        amp=amp_enabled(cfg.amp, self.device),
                        device_type=self.device.type)
        if state is not None and first_epoch > 0:
            engine.load_state_dict(state)
            self.gen.set_state(state["generator"])
        last_stage = si == len(plan) - 1
        self.ema = None
        if cfg.ema and last_stage:  # the average of the last stage's weights, one update per step
            # parameters only: a buffer is not averaged (the text tower's causal mask holds -inf, and a lerp
            # of -inf with -inf is NaN); the model's own buffers are copied in before the average is used
            self.ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema), use_buffers=False)
            if state is not None and first_epoch > 0 and "ema" in state:
                self.ema.load_state_dict(state["ema"])
        loss_fn = GalaxAlignLoss(sp.pairs, cfg.class_aware)
        total = max(1, self._total(plan))
        for epoch in range(first_epoch, sp.epochs):
            row = self._train_epoch(wrapped, sp, loss_fn, engine, global_epoch + epoch, epoch)
            self._after_epoch(row, sp, si, epoch, engine, (global_epoch + epoch + 1) / total)
            if cfg.patience and last_stage and len(self.valid_idx) and self.rank == 0 and self._stop_early(sp, epoch):
                break
        if self.ema is not None:  # the average is the model from here on (early stopping kept averages too)
            model.load_state_dict(self.scored_model().state_dict())
        if self.stopper.kept and last_stage:
            self.stopper.restore(model)
            _write_jsonl(self.metrics_path, {"selected_epoch": self.stopper.epoch, "valid_accuracy": self.stopper.score})

    @staticmethod
    def _total(plan: list[StagePlan]) -> int:
        return sum(p.epochs for p in plan)

    def _train_epoch(self, wrapped, sp: StagePlan, loss_fn, engine: Engine, order_epoch: int, epoch: int) -> dict:
        """The step loop of one epoch (each step :meth:`galaxalign.engine.Engine.step`); returns the epoch's
        row for ``metrics.jsonl``."""
        cfg, model = self.cfg, self.model
        need_sym = any("sym" in p for p in sp.pairs)
        need_txt = any("txt" in p for p in sp.pairs)
        model.train()
        t0 = time.perf_counter()
        sums: dict[str, float] = {}
        batches = self._epoch_batches(order_epoch)
        bar = tqdm(batches, desc=f"stage {sp.stage} epoch {epoch + 1}/{sp.epochs}", unit="step",
                   disable=not self.show_bar or self.rank != 0, leave=False)
        for bidx in bar:
            imgs = self._batch_images(bidx)
            if cfg.augment:
                imgs = augment_images(imgs, self.gen, cfg.rotation, cfg.shift, cfg.noise)
            y = torch.as_tensor(self.pair_labels[bidx], device=self.device)
            x = model.preprocess(imgs)

            def compute(x=x, y=y, bidx=bidx):
                if self.votes is None and not self.semi:
                    z = encode_batch(wrapped, x, y, self.tokens, self.bank, self.gen, need_sym, need_txt,
                                     cfg.unique_encode)
                    return loss_fn(z, z["scale"], y)
                return self._extended_step(wrapped, x, y, bidx, loss_fn, need_sym)
            terms = engine.step(compute)
            with torch.no_grad():
                model.clip.logit_scale.clamp_(0, math.log(100))
            if self.ema is not None:
                self.ema.update_parameters(model)
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach())
            bar.set_postfix(loss=f"{terms['loss'].item():.3f}")
        n = max(1, len(batches))
        return {"stage": sp.stage, "epoch": epoch + 1, "global_epoch": order_epoch + 1,
                **{k: v / n for k, v in sums.items()}, "lr": engine.lr,
                "logit_scale": model.logit_scale.item(), "seconds": round(time.perf_counter() - t0, 3), "steps": n}

    def _extended_step(self, wrapped, x: torch.Tensor, y: torch.Tensor, bidx: np.ndarray, loss_fn,
                       need_sym: bool) -> dict:
        """The loss terms of one batch beyond the paper's: the contrastive terms over its labelled rows (with
        vote counts, the rest have votes but no label yet), then

        - ``vote_weight`` × the mean Dirichlet–multinomial NLL of every row's vote counts under its class
          probabilities ``softmax(s · cos(image, class text))`` — the probabilities the model proposes with
          (:func:`galaxalign.inference.class_probabilities`);
        - ``semi_weight`` × FixMatch on a batch of unlabelled galaxies: the class the model gives a weakly
          augmented view (quarter turns and flips: exact) with confidence ≥ ``semi_threshold`` is the
          target of a strongly augmented view (any angle, a shift, noise — a galaxy has no up)."""
        cfg = self.cfg
        z = encode_batch(wrapped, x, y, self.tokens, self.bank, self.gen, need_sym, True, all_classes=True)
        hard = torch.as_tensor(self.labels[bidx] >= 0, device=x.device)
        if int(hard.sum()) >= 2:
            terms = loss_fn({k: v[hard] for k, v in z.items() if k in ("img", "sym", "txt")}, z["scale"], y[hard])
        else:  # too few labelled rows for a contrastive batch: only the votes teach this step
            terms = {"loss": z["img"].sum() * 0.0}
        txt = F.normalize(z["txt_all"], dim=-1)

        def class_logits(img: torch.Tensor) -> torch.Tensor:  # s · cos(image, class text), as proposals are made
            return z["scale"] * F.normalize(img, dim=-1) @ txt.t()

        if self.votes is not None:
            counts = torch.as_tensor(self.votes[bidx], device=x.device)
            terms["votes"] = vote_nll(class_logits(z["img"]), counts, self.vote_implies, self.vote_map.tasks,
                                      cfg.vote_concentration).mean()
            terms["loss"] = terms["loss"] + cfg.vote_weight * terms["votes"]
        if self.semi:
            pick = torch.randint(0, len(self.unlabelled_idx), (cfg.batch_size,), generator=self.gen).numpy()
            imgs = self._batch_images(np.sort(self.unlabelled_idx[pick]))
            weak = self.model.preprocess(augment_images(imgs, self.gen, "quarter"))
            strong = self.model.preprocess(augment_images(imgs, self.gen, "any", shift=0.08, noise=0.05))
            with torch.no_grad():
                conf, target = F.softmax(class_logits(wrapped(image=weak)["img"]), -1).max(1)
                keep = (conf >= cfg.semi_threshold).float()
            terms["semi"] = (F.cross_entropy(class_logits(wrapped(image=strong)["img"]), target, reduction="none")
                             * keep).mean()
            terms["semi_kept"] = keep.mean()
            terms["loss"] = terms["loss"] + cfg.semi_weight * terms["semi"]
        return terms

    def _after_epoch(self, row: dict, sp: StagePlan, si: int, epoch: int, engine: Engine, fraction: float) -> None:
        """Log the epoch, save ``last.pt`` (resume point) and report progress."""
        if self.rank == 0:
            _write_jsonl(self.metrics_path, row)
            _atomic_torch_save({"model": self.model.state_dict(), **engine.state_dict(), "generator": self.gen.get_state(),
                                "stage_index": si, "stage": self.model.stage, "epoch": epoch,
                                **({"ema": self.ema.state_dict()} if self.ema is not None else {})},
                               self.out / "last.pt")
            if self.show_bar:
                tqdm.write(f"stage {sp.stage} epoch {epoch + 1}/{sp.epochs}  loss {row['loss']:.4f}  "
                           f"({row['seconds']:.1f} s)")
        if self.progress:
            self.progress(fraction, f"stage {sp.stage} epoch {epoch + 1}/{sp.epochs} loss {row['loss']:.4f}")

    def _stop_early(self, sp: StagePlan, epoch: int) -> bool:
        """Score the valid split, keep the best weights; True when ``patience`` epochs have not beaten it."""
        acc = self._valid_accuracy()
        _write_jsonl(self.metrics_path, {"valid_accuracy": acc, "stage": sp.stage, "epoch": epoch + 1})
        stop = self.stopper.update(acc, epoch + 1, self.scored_model())
        if stop and self.show_bar:
            tqdm.write(f"early stop: valid accuracy {self.stopper.score:.3f} at epoch {self.stopper.epoch} not beaten "
                       f"for {self.cfg.patience} epochs")
        return stop

    def _finish(self, evals: list[dict]) -> dict:
        """Rank 0: final metrics on the held-out split, the proposal gate, and ``model.pt``."""
        final = evals[-1] if evals else (self.evaluate() if len(self.test_idx) else {})
        familiarity, held_on = self.calibrate()
        final = {**final, "proposal": {**familiarity.summary(), "calibrated_on": held_on}}
        out = {"metrics": final}
        if self.stopper.kept:
            out["selected_epoch"], out["valid_accuracy"] = self.stopper.epoch, self.stopper.score
        save_model(self.model, self.out, extra={"train_cfg": self.cfg.to_dict(), "metrics": final,
                                                "familiarity": {**familiarity.to_dict(), "calibrated_on": held_on},
                                                "survey": str(self.survey.path),
                                                "preparation": (self.survey.preparation.to_dict()
                                                                if self.survey.preparation else None),
                                                "init_from": self.init_from})
        return out

    def scored_model(self) -> TriModalCLIP:
        """The weights that are judged and kept: the moving average with ``ema`` (with the model's current
        buffers), else the model itself."""
        if self.ema is None:
            return self.model
        with torch.no_grad():
            for mine, theirs in zip(self.ema.module.buffers(), self.model.buffers()):
                mine.copy_(theirs)
        return self.ema.module

    def _valid_accuracy(self) -> float:
        model = self.scored_model()
        emb = embed_images(model, self.survey, self.valid_idx)
        pred = class_probabilities(model, emb).argmax(1)
        self.model.train()
        return float(np.mean(pred == self.labels[self.valid_idx]))

    def calibrate(self):
        """When the Classify page may pre-select this model's proposal (:mod:`galaxalign.ood`): the
        limit and the confidence floor from galaxies not trained on — the valid split, or the test
        split when the survey has no valid part."""
        held, held_on = (self.valid_idx, "valid") if len(self.valid_idx) else (self.test_idx, "test")
        return calibrate_familiarity(self.model, self.survey, self.labels, self.train_idx, held, self.cfg.seed), held_on

    def evaluate(self) -> dict:
        labelled = self.test_idx[self.survey.labels[self.test_idx] >= 0]
        if len(labelled) == 0:
            return {}
        return evaluate_model(self.model, self.survey, labelled)


def train(cfg: TrainCfg, survey_path: str | os.PathLike | None = None, out_dir: str | os.PathLike = "run",
          survey: Survey | None = None, resume: bool = False, **kwargs) -> dict:
    """Train per ``cfg`` on a survey (a path or a loaded :class:`Survey`); writes ``out_dir``.

    Returns ``{"seconds", "epochs", "metrics"}`` (metrics on the held-out split, rank 0 only).
    Extra keyword arguments go to :class:`Trainer` (``labels=``, ``train_idx=``, ``init_from=``,
    ``progress=``).
    """
    survey = survey or load_survey(survey_path)
    device = device_for(cfg.device)
    started = _maybe_init_dist(device)
    try:
        if device.type == "cuda" and dist.is_initialized():
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(device)
            cfg = replace(cfg, device=str(device))
        return Trainer(cfg, survey, Path(out_dir), **kwargs).run(resume=resume)
    finally:
        if started:
            dist.destroy_process_group()
