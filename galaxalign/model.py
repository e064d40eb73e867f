"""TriModalCLIP: GalaxAlign's three encoders on an open_clip model.

- ``encode_image``  — E_img, the CLIP image tower.
- ``encode_text``   — E_txt, the CLIP text tower.
- ``encode_symbol`` — stage 1: the image tower (symbols and galaxies share E_img); after
  :meth:`TriModalCLIP.begin_stage2`: E_sym, a copy of E_img that then trains on its own (paper §3.3).

Any open_clip architecture works, with a pretrained tag or a local checkpoint file::

    create_model(ModelCfg("ViT-B-16", pretrained="datacomp_xl_s13b_b90k"))     # paper, ViT-16
    create_model(ModelCfg("convnext_base_w", pretrained="laion2b_s13b_b82k"))    # paper, ConvNeXt
    create_model(ModelCfg("galaxalign-tiny"))                                     # CPU default, from scratch
    create_model(ModelCfg("galaxalign-tiny", pretrained="weights/tiny.pt"))      # local open_clip checkpoint

Our own architectures are JSON files in ``galaxalign/model_configs/`` registered with open_clip's
``add_model_config``; add yours with :func:`add_model_config`. A galaxalign checkpoint carries its
:class:`ModelCfg`, stage and class prompts, so ``load_model(path)`` rebuilds the model from the file.
"""
from __future__ import annotations

import copy
import json
import logging
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .fsutil import atomic_path, file_sha256
from .errors import GalaxalignError

__all__ = ["ModelCfg", "TriModalCLIP", "ModelError", "create_model", "load_model", "save_model",
           "add_model_config", "list_models", "CHECKPOINT_NAME", "cpu_has_bf16", "bf16_native"]

CONFIG_DIR = Path(__file__).resolve().parent / "model_configs"
CHECKPOINT_NAME = "model.pt"
FORMAT = "galaxalign-checkpoint/1"
_registered = False


class ModelError(GalaxalignError):
    """A model that cannot be built or loaded."""


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX-512 BF16 or AMX); elsewhere bf16 is emulated and slow."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def bf16_native(device: torch.device) -> bool:
    """Whether bf16 arithmetic is native on ``device``: a GPU, or a CPU with AVX-512 BF16 / AMX."""
    return device.type == "cuda" or (device.type == "cpu" and cpu_has_bf16())


def _open_clip():
    """Import open_clip once and register our architecture configs with it."""
    global _registered
    import open_clip

    if not _registered:
        open_clip.add_model_config(CONFIG_DIR)
        _registered = True
    return open_clip


def add_model_config(path: str | os.PathLike) -> None:
    """Register an extra open_clip model-config JSON file (or a folder of them)."""
    _open_clip().add_model_config(Path(path))


def list_models() -> list[str]:
    """Architecture names open_clip knows, ours included (``galaxalign-tiny``, ``ViT-B-16``…)."""
    return _open_clip().list_models()


@dataclass
class ModelCfg:
    """How to build a model. Fields map one-to-one onto the ``model:`` block of a training config.

    ``arch``: an open_clip architecture name. ``pretrained``: an open_clip tag (``"laion2b_s13b_b82k"``)
    or the path of a local checkpoint file, or ``None`` for random initialisation.
    """

    arch: str = "galaxalign-tiny"
    pretrained: str | None = None
    image_size: int | None = None  # None: the architecture's own
    norm: str = "default"  # "group": BatchNorm → GroupNorm in the image tower (see create_model)
    # "d4": the architecture's image tower replaced by a D4-equivariant CNN of this width
    # (galaxalign.equivariant.D4Tower: no quarter turn or mirror of a galaxy changes its embedding)
    tower: str = "default"
    tower_width: int = 4
    # tower d4 only: also pool over the galaxy turned by 90° / tower_turns, 2 × 90° / tower_turns, …
    # (2: the 45° turns too, the group D8 with them interpolated; at tower_turns times the arithmetic)
    tower_turns: int = 1

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelCfg":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ModelError(f"unknown model option(s): {', '.join(sorted(unknown))} (known: {', '.join(sorted(known))})")
        if d.get("norm", "default") not in ("default", "group"):
            raise ModelError(f"model norm {d['norm']!r} must be 'default' or 'group'")
        if d.get("tower", "default") not in ("default", "d4"):
            raise ModelError(f"model tower {d['tower']!r} must be 'default' or 'd4'")
        width = d.get("tower_width", 4)
        if not isinstance(width, int) or isinstance(width, bool) or not 1 <= width <= 64:
            raise ModelError(f"model tower_width {width!r} must be a whole number from 1 to 64")
        turns = d.get("tower_turns", 1)
        if not isinstance(turns, int) or isinstance(turns, bool) or not 1 <= turns <= 8:
            raise ModelError(f"model tower_turns {turns!r} must be a whole number from 1 to 8")
        if turns > 1 and d.get("tower", "default") != "d4":
            raise ModelError(f"model tower_turns {turns} needs tower 'd4' (the turned copies are pooled by its "
                             "orientation pooling)")
        return cls(**d)


class TriModalCLIP(nn.Module):
    """Image, symbol and text encoders sharing one embedding space and one learnable temperature."""

    def __init__(self, clip: nn.Module, cfg: ModelCfg, mean: Sequence[float], std: Sequence[float],
                 image_size: int, tokenizer=None):
        super().__init__()
        self.clip = clip
        self.cfg = cfg
        self.symbol_visual: nn.Module | None = None
        self.image_size = int(image_size)
        self.tokenizer = tokenizer
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        # class metadata travels with the weights so a checkpoint can classify on its own
        self.class_names: list[str] = []
        self.prompts: list[str] = []
        self.symbols: list[str] = []
        self.label_set: str | None = None

    # -- stages ---------------------------------------------------------------------------------
    @property
    def stage(self) -> int:
        return 1 if self.symbol_visual is None else 2

    def begin_stage2(self) -> None:
        """E_sym ← E_img: the symbol tower starts as an exact copy of the shared image tower."""
        if self.symbol_visual is not None:
            raise ModelError("the model is already in stage 2")
        self.symbol_visual = copy.deepcopy(self.clip.visual)

    # -- encoders -------------------------------------------------------------------------------
    def forward(self, image: torch.Tensor | None = None, symbol: torch.Tensor | None = None,
                text: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Embeddings (unnormalised) of whatever is given: ``{"img": (B, D), "sym": (U, D), "txt": (T, D)}``,
        plus ``"scale"``, the logit scale.

        Training calls this (not the ``encode_*`` methods) so that DDP sees one forward per step and
        every parameter the loss touches, the temperature included, comes out of it.
        """
        z = {"scale": self.logit_scale}
        if image is not None:
            z["img"] = self.encode_image(image)
        if symbol is not None:
            z["sym"] = self.encode_symbol(symbol)
        if text is not None:
            z["txt"] = self.encode_text(text)
        return z

    def preprocess(self, images: np.ndarray | torch.Tensor) -> torch.Tensor:
        """(B, H, W, 3) uint8 → (B, 3, S, S) float, resized to the tower's size and CLIP-normalised."""
        x = images if isinstance(images, torch.Tensor) else torch.from_numpy(np.array(images, dtype=np.uint8))
        if x.ndim != 4 or x.shape[-1] != 3:
            raise ModelError(f"images must be (B, H, W, 3) uint8, got shape {tuple(x.shape)}")
        x = x.to(self.mean.device).permute(0, 3, 1, 2).float().div_(255.0)
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", antialias=True,
                              align_corners=False)
        return (x - self.mean) / self.std

    def tokenize(self, texts: Sequence[str]) -> torch.Tensor:
        return self.tokenizer(list(texts)).to(self.mean.device)

    def encode_image(self, x: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        z = self.clip.encode_image(x)  # (B, D)
        return F.normalize(z, dim=-1) if normalize else z

    def encode_symbol(self, x: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        z = self.clip.encode_image(x) if self.symbol_visual is None else self.symbol_visual(x)
        return F.normalize(z, dim=-1) if normalize else z

    def encode_text(self, tokens: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        z = self.clip.encode_text(tokens)
        return F.normalize(z, dim=-1) if normalize else z

    @property
    def logit_scale(self) -> torch.Tensor:
        """exp of the learnable log-scale: 1/τ, capped at 100 as in CLIP."""
        return self.clip.logit_scale.exp().clamp(max=100.0)

    def set_classes(self, class_names: Sequence[str], prompts: Sequence[str], symbols: Sequence[str],
                    label_set: str | None) -> None:
        self.class_names, self.prompts, self.symbols = list(class_names), list(prompts), list(symbols)
        self.label_set = label_set

    @property
    def embed_dim(self) -> int:
        with torch.no_grad():
            return int(self.encode_text(self.tokenize(["a"])).shape[-1])


def create_model(cfg: ModelCfg, device: str | torch.device = "cpu") -> TriModalCLIP:
    """Build a :class:`TriModalCLIP` from an open_clip architecture and its weights (see module doc).

    Pretrained tags are fetched by open_clip from its hub; on a machine without the hub that fails
    with a :class:`ModelError` saying so. A local file is loaded by open_clip itself.
    """
    oc = _open_clip()
    if cfg.arch not in oc.list_models():
        raise ModelError(f"unknown architecture {cfg.arch!r}; e.g. galaxalign-tiny, ViT-B-16, convnext_base_w")
    pretrained = cfg.pretrained
    if pretrained:
        is_file = os.path.sep in pretrained or pretrained.endswith((".pt", ".pth", ".bin", ".safetensors"))
        if is_file and not Path(pretrained).is_file():
            raise ModelError(f"{pretrained}: pretrained checkpoint file not found")
        if not is_file and pretrained not in oc.list_pretrained_tags_by_model(cfg.arch):
            raise ModelError(f"{cfg.arch} has no pretrained tag {pretrained!r}; "
                             f"known: {', '.join(oc.list_pretrained_tags_by_model(cfg.arch)) or 'none'}")
    if cfg.tower == "d4" and pretrained:
        raise ModelError(f"{cfg.arch}: tower 'd4' is trained from scratch; pretrained weights {pretrained!r} "
                         "are for the architecture's own tower")
    kwargs = {"force_image_size": cfg.image_size} if cfg.image_size else {}
    quiet = _DropMessage("No pretrained weights loaded")  # we asked for none; open_clip warns anyway
    logging.getLogger().addFilter(quiet)
    # A GroupNorm tower's own checkpoint (``galaxalign pretrain``) fits only after the conversion: build,
    # convert, then load with open_clip's loader — the function its ``pretrained=`` path calls.
    grouped_file = bool(pretrained) and cfg.norm == "group" and os.path.isfile(pretrained)
    try:
        clip = oc.create_model(cfg.arch, pretrained=None if grouped_file else (pretrained or None),
                               load_weights=bool(pretrained) and not grouped_file, device=device, **kwargs)
        if grouped_file:
            _batchnorm_to_groupnorm(clip.visual)
            oc.load_checkpoint(clip, pretrained)
    except RuntimeError as e:
        msg = str(e).splitlines()[0]
        if pretrained and not os.path.exists(pretrained):
            raise ModelError(f"cannot fetch pretrained weights {cfg.arch}/{pretrained} (no model hub reachable?): "
                             f"{msg}") from None
        raise ModelError(f"{pretrained or cfg.arch}: cannot build the model: {msg}") from None
    finally:
        logging.getLogger().removeFilter(quiet)
    size = cfg.image_size or _image_size(clip)
    if cfg.tower == "d4":
        from .equivariant import D4Tower

        if size % 8:
            raise ModelError(f"{cfg.arch}: image size {size} must be a multiple of 8 for tower 'd4' (its three "
                             "2 × 2 poolings keep quarter turns exact only on even sizes)")
        with torch.no_grad():  # the embedding's width, whatever the architecture calls it
            dim = int(clip.visual.eval()(torch.zeros(1, 3, size, size, device=device)).shape[-1])
        clip.visual = D4Tower(cfg.tower_width, dim, size, norm="group" if cfg.norm == "group" else "batch",
                              turns=cfg.tower_turns).to(device)
    elif cfg.norm == "group" and not grouped_file:
        if pretrained:
            raise ModelError(f"{cfg.arch}: norm 'group' replaces BatchNorm layers; it starts only from a checkpoint "
                             "made with GroupNorm (galaxalign pretrain), not from hub weights")
        _batchnorm_to_groupnorm(clip.visual)
        clip.to(device)
    pp = getattr(clip.visual, "preprocess_cfg", {}) or {}
    mean = pp.get("mean", (0.48145466, 0.4578275, 0.40821073))
    std = pp.get("std", (0.26862954, 0.26130258, 0.27577711))
    model = TriModalCLIP(clip, cfg, mean, std, size, oc.get_tokenizer(cfg.arch))
    return model.to(device)


def _batchnorm_to_groupnorm(module: nn.Module) -> int:
    """Replace every BatchNorm2d under ``module`` by a GroupNorm over the same channels (8 groups where
    they divide). A CNN tower that encodes galaxies and symbols in separate batches (GalaxAlign's
    stage 1) would otherwise mix two very different distributions in its running statistics, and a
    batch of a few symbols is too small for batch statistics at all. Returns how many it replaced."""
    n = 0
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            c = child.num_features
            setattr(module, name, nn.GroupNorm(8 if c % 8 == 0 else 1, c))
            n += 1
        else:
            n += _batchnorm_to_groupnorm(child)
    return n


class _DropMessage(logging.Filter):
    def __init__(self, prefix: str):
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefix)


def _image_size(clip: nn.Module) -> int:
    s = getattr(clip.visual, "image_size", None)
    if s is None:
        s = (getattr(clip.visual, "preprocess_cfg", {}) or {}).get("size", 224)
    return int(s[0] if isinstance(s, (tuple, list)) else s)


def _without_arrays(obj):
    """The JSON sidecar's view of the checkpoint metadata: arrays (the familiarity reference) left out."""
    if isinstance(obj, dict):
        return {k: _without_arrays(v) for k, v in obj.items() if not isinstance(v, (np.ndarray, torch.Tensor))}
    return obj


def save_model(model: TriModalCLIP, path: str | os.PathLike, extra: dict | None = None) -> Path:
    """Write a self-describing checkpoint atomically (temp file + rename) with a JSON sidecar.

    ``path`` is a file or a run folder (then ``<folder>/model.pt``). Returns the file written.
    """
    path = Path(path)
    if path.suffix != ".pt":
        path = path / CHECKPOINT_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, "model_cfg": asdict(model.cfg), "stage": model.stage, "image_size": model.image_size,
            "class_names": model.class_names, "prompts": model.prompts, "symbols": model.symbols,
            "label_set": model.label_set, **(extra or {})}
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        torch.save({**meta, "state_dict": state}, tmp)
    with atomic_path(path.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps({**_without_arrays(meta), "sha256": file_sha256(path)}, indent=2, default=str))
    model.checkpoint_meta = meta  # the model in hand now describes itself as load_model would
    return path


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> TriModalCLIP:
    """Rebuild a model from a galaxalign checkpoint (a ``.pt`` file or a run folder) alone.

    The architecture comes from the file; no pretrained weights are fetched (the file has them all).
    """
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise ModelError(f"{path}: no model checkpoint there")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # torch raises many kinds for a damaged file
        raise ModelError(f"{path}: unreadable checkpoint ({e.__class__.__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ModelError(f"{path}: not a galaxalign checkpoint (expected format {FORMAT})")
    cfg = ModelCfg.from_dict({**ckpt["model_cfg"], "pretrained": None})
    model = create_model(cfg, device)
    model.cfg = ModelCfg.from_dict(ckpt["model_cfg"])
    if ckpt.get("stage", 1) == 2:
        model.begin_stage2()
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as e:
        raise ModelError(f"{path}: weights do not fit {cfg.arch} ({str(e).splitlines()[0]})") from None
    model.set_classes(ckpt.get("class_names", []), ckpt.get("prompts", []), ckpt.get("symbols", []),
                      ckpt.get("label_set"))
    model.checkpoint_meta = {k: v for k, v in ckpt.items() if k != "state_dict"}
    return model.eval()
