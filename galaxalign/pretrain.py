"""Self-supervised pretraining of the image tower: our own foundation, since none can be fetched.

SimCLR (Chen et al. 2020; lightly's ``NTXentLoss`` and ``SimCLRProjectionHead``) on unlabelled
galaxies — a pool rendered from the diverse sky (:mod:`galaxalign.sky`) plus any survey given — with
views that change what the sky changes and keep what the morphology class is: any rotation and flips,
a small shift and zoom, PSF blur, dimming, noise and a small colour gain. No crop that could cut a
galaxy's arms off, no colour jitter that would turn a red elliptical blue, no grey-scale.

The result is an open_clip checkpoint (the whole CLIP: the pretrained image tower and the text tower
as initialised) that open_clip loads itself through ``pretrained=<file>`` — the path a tag from a
model hub would take — so ``model: {arch: galaxalign-tiny, pretrained: <file>}`` in a training config
starts from it. A JSON model card goes beside it.

>>> stats = pretrain(PretrainCfg(epochs=8), "models/pretrained/galaxalign-tiny-sky.pt")  # doctest: +SKIP
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .data import load_survey
from .errors import GalaxalignError
from .fsutil import atomic_path, file_sha256
from .model import ModelCfg, bf16_native, create_model
from .prepare import detect_for_survey
from .synth import synth_survey
from .engine import Engine, device_for

__all__ = ["PretrainCfg", "sky_views", "encode_views", "pretrain", "ssl_step", "SSLHead", "save_open_clip_checkpoint",
           "write_checkpoint"]


@dataclass
class PretrainCfg:
    arch: str = "galaxalign-tiny-rn"
    norm: str = "group"          # as the training config that will start from it (see ModelCfg.norm)
    epochs: int = 8
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_steps: int = 50
    temperature: float = 0.2
    n_synthetic: int = 10000     # galaxies rendered from the diverse sky for the pool
    synthetic_seed: int = 7
    image_size: int = 64
    surveys: list = field(default_factory=list)  # extra unlabelled surveys (paths), prepared as training would
    seed: int = 0
    amp: bool = False            # bf16 autocast: on a GPU, or a CPU with native bf16
    device: str = "auto"         # "auto": the GPU when there is one, else the CPU
    minutes: float = 0.0         # > 0: train for this long instead of ``epochs`` (the schedule is fitted
                                 # to the step rate measured in the first warm-up steps)
    workers: int = 0             # processes rendering the pool; 0: one per core

    @classmethod
    def from_dict(cls, d: dict) -> "PretrainCfg":
        known = {f.name for f in fields(cls)}
        bad = set(d) - known
        if bad:
            raise GalaxalignError(f"unknown pretraining option(s): {', '.join(sorted(bad))}")
        cfg = cls(**d)
        if cfg.minutes < 0 or cfg.workers < 0:
            raise GalaxalignError("pretraining minutes and workers must not be negative")
        for name in ("epochs", "batch_size", "n_synthetic"):
            if getattr(cfg, name) < (0 if name == "n_synthetic" else 1):
                raise GalaxalignError(f"pretraining {name} must be positive, got {getattr(cfg, name)}")
        if cfg.batch_size < 2:
            raise GalaxalignError("pretraining batch_size must be at least 2 (SimCLR contrasts within a batch)")
        return cfg


# --- views ---------------------------------------------------------------------------------------------

def _blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Per-image Gaussian blur (a wider PSF), ``sigma`` (B,) in pixels; 0 leaves the image alone."""
    r = 3
    t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t[None] / sigma.clamp(min=1e-3)[:, None]) ** 2)
    k = k / k.sum(1, keepdim=True)  # (B, 7)
    b, c, h, w = x.shape
    y = x.reshape(1, b * c, h, w)
    kx = k.repeat_interleave(c, 0)[:, None, None, :]
    ky = k.repeat_interleave(c, 0)[:, None, :, None]
    y = F.conv2d(F.pad(y, (r, r, 0, 0), mode="reflect"), kx, groups=b * c)
    y = F.conv2d(F.pad(y, (0, 0, r, r), mode="reflect"), ky, groups=b * c)
    return y.reshape(b, c, h, w)


def sky_views(images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """One random view of each image: (B, H, W, 3) uint8 → (B, 3, H, W) float in [0, 1].

    Any rotation and a flip, a shift of up to 6 % of the side and a zoom of 0.85–1.15 (one affine
    resampling, reflection at the border), a PSF blur of σ 0–1.2 px, dimming to 55–100 %, Gaussian
    noise of σ 0–0.05 and a per-band gain of ±8 %. ``gen`` lives on the images' device.
    """
    x = images.permute(0, 3, 1, 2).float() / 255.0
    b = x.shape[0]
    u = lambda *s: torch.rand(*s, generator=gen, device=x.device)  # noqa: E731
    ang = u(b) * 2 * math.pi
    flip = torch.where(u(b) < 0.5, -1.0, 1.0)
    zoom = 0.85 + 0.3 * u(b)
    cos, sin = torch.cos(ang) / zoom, torch.sin(ang) / zoom
    theta = torch.stack([torch.stack([cos * flip, -sin, (u(b) - 0.5) * 0.12], 1),
                         torch.stack([sin * flip, cos, (u(b) - 0.5) * 0.12], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    x = _blur(x, u(b) * 1.2)
    x = x * (0.55 + 0.45 * u(b))[:, None, None, None]
    x = x * (1 + (u(b, 3) - 0.5) * 0.16)[:, :, None, None]
    x = x + torch.randn(x.shape, generator=gen, device=x.device) * (u(b) * 0.05)[:, None, None, None]
    return x.clamp(0, 1)


class SSLHead(torch.nn.Module):
    """The image tower and a SimCLR projection head (the head is dropped after pretraining)."""

    def __init__(self, model, hidden: int = 256, out: int = 128):
        from lightly.models.modules import SimCLRProjectionHead

        super().__init__()
        self.model = model
        self.head = SimCLRProjectionHead(model.embed_dim, hidden, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, 3, H, W) in [0, 1]
        return self.head(encode_views(self.model, x))


def encode_views(model, x: torch.Tensor) -> torch.Tensor:
    """Image-tower features of views in [0, 1], resized to the model's input size when they differ."""
    if x.shape[-1] != model.image_size or x.shape[-2] != model.image_size:
        x = F.interpolate(x, size=(model.image_size, model.image_size), mode="bilinear", antialias=True,
                          align_corners=False)
    return model.encode_image((x - model.mean) / model.std)


def ssl_step(net: SSLHead, loss_fn, batch: torch.Tensor, gen: torch.Generator, amp: bool = False) -> torch.Tensor:
    """The SimCLR loss of one batch of uint8 images: two views each, contrasted within the batch.
    With ``amp`` only the tower runs in bf16: the views and the loss stay in fp32."""
    a, b = sky_views(batch, gen), sky_views(batch, gen)
    with torch.autocast(batch.device.type, dtype=torch.bfloat16, enabled=amp):
        za, zb = net(a), net(b)
    return loss_fn(za.float(), zb.float())


# --- data ------------------------------------------------------------------------------------------------

def pretraining_pool(cfg: PretrainCfg, workdir: Path, progress: bool = True) -> np.ndarray:
    """Unlabelled images (N, S, S, 3) uint8: the rendered diverse sky plus each survey in ``cfg.surveys``
    through its detected preparation (the same one an import would choose), its test split left out."""
    surveys = [load_survey(path) for path in cfg.surveys]  # a bad path fails now, not after the rendering
    parts = []
    if cfg.n_synthetic:
        pool = workdir / f"pool-{cfg.n_synthetic}-{cfg.image_size}-{cfg.synthetic_seed}.h5"
        if not pool.exists():
            workdir.mkdir(parents=True, exist_ok=True)
            synth_survey(pool, n=cfg.n_synthetic, size=cfg.image_size, seed=cfg.synthetic_seed, progress=progress,
                         workers=cfg.workers or os.cpu_count() or 1)
        s = load_survey(pool)
        parts.append(s.images(np.arange(len(s))))
    for s in surveys:
        prep, _ = detect_for_survey(s)
        prep = type(prep).from_dict({**prep.to_dict(), "size": cfg.image_size})
        s = s.with_preparation(prep)
        # a survey's own test split stays unseen, even unlabelled, so its test figure stays clean
        idx = np.flatnonzero(s.catalog["split"].to_numpy(str) != "test") if s.has_split else np.arange(len(s))
        parts.append(s.images(idx))
    if not parts:
        raise GalaxalignError("nothing to pretrain on: n_synthetic is 0 and no survey was given")
    return np.concatenate(parts)


# --- the run -------------------------------------------------------------------------------------------

def save_open_clip_checkpoint(clip: torch.nn.Module, path: Path, card: dict, half: bool = True) -> Path:
    """The CLIP state dict in the layout open_clip's ``load_checkpoint`` reads, fp16 to keep the file
    small, with its card (:func:`write_checkpoint`)."""
    sd = {k: (v.half() if half and v.is_floating_point() else v).detach().cpu().contiguous()
          for k, v in clip.state_dict().items()}
    return write_checkpoint(sd, path, card)


def write_checkpoint(state_dict: dict, path: Path, card: dict) -> Path:
    """``{"state_dict": …}`` to ``path`` and ``<name>.card.json`` beside it with the file's name, size
    and sha256, each written to a temporary name and renamed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save({"state_dict": state_dict}, tmp)
    card = {**card, "file": path.name, "bytes": path.stat().st_size, "sha256": file_sha256(path)}
    with atomic_path(path.with_suffix(".card.json")) as tmp:
        Path(tmp).write_text(json.dumps(card, indent=2, default=str) + "\n")
    return path


CALIBRATION = (5, 25)  # with ``minutes``: the step rate is measured between these steps (after warm-up)


def pretrain(cfg: PretrainCfg, out: str | os.PathLike, workdir: str | os.PathLike | None = None,
             progress: bool = True, report: Callable[[float, str], None] | None = None,
             command: str | None = None) -> dict:
    """Pretrain ``cfg.arch``'s image tower with SimCLR and write the open_clip checkpoint ``out``.

    On a GPU the pool, the views and the steps all stay on the device. With ``cfg.minutes`` the run
    lasts that long: the step rate is measured on the first steps and the cosine schedule is fitted to
    the number of steps that fits, so the learning rate still ends at zero."""
    from lightly.loss import NTXentLoss

    out = Path(out)
    workdir = Path(workdir) if workdir else out.parent / "pretrain-work"
    torch.manual_seed(cfg.seed)
    device = device_for(cfg.device)
    torch.backends.cudnn.benchmark = device.type == "cuda"  # fixed shapes: let cuDNN pick its kernels
    images = torch.from_numpy(pretraining_pool(cfg, workdir, progress)).to(device)
    model = create_model(ModelCfg(cfg.arch, image_size=cfg.image_size, norm=cfg.norm)).to(device).train()
    net = SSLHead(model).to(device)
    run = _SSLRun(cfg, net, NTXentLoss(temperature=cfg.temperature), images, device)
    history = run.train(progress, report)
    card = {"what": f"{cfg.arch} image tower pretrained with SimCLR (lightly NTXentLoss) on unlabelled galaxies",
            "command": command, "recipe": asdict(cfg), "n_images": int(len(images)), "steps": run.total,
            "loss_per_epoch": history, "seconds": run.seconds, "device": _device_name(device),
            "views_per_second": round(2 * cfg.batch_size * run.total / max(run.seconds, 1e-9), 1),
            "torch": torch.__version__,
            "load": f"model: {{arch: {cfg.arch}, norm: {cfg.norm}, pretrained: <this file>}} in a training config "
                    "(open_clip's pretrained= path; a GroupNorm tower through open_clip.load_checkpoint after "
                    "its conversion)"}
    save_open_clip_checkpoint(model.clip, out, card)
    return {"path": str(out), "seconds": run.seconds, "loss_per_epoch": history, "n_images": int(len(images)),
            "steps": run.total, "device": card["device"]}


def _device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


class _SSLRun:
    """The step loop of one pretraining run: optimiser, schedule, the generator of the views."""

    def __init__(self, cfg: PretrainCfg, net: SSLHead, loss_fn, images: torch.Tensor, device: torch.device):

        self.cfg, self.net, self.loss_fn, self.images, self.device = cfg, net, loss_fn, images, device
        self.params = list(net.model.clip.visual.parameters()) + list(net.head.parameters())
        self.steps_per_epoch = max(1, len(images) // cfg.batch_size)
        # with a time budget the length is unknown until the step rate is measured; the views' own bf16
        # (ssl_step) keeps the augmentations in fp32, so the engine adds no autocast of its own
        self.engine = Engine(self.params, cfg.lr, weight_decay=cfg.weight_decay, grad_clip=1.0,
                             total_steps=10 ** 9 if cfg.minutes else self.steps_per_epoch * cfg.epochs,
                             warmup_steps=cfg.warmup_steps)
        self.gen = torch.Generator(device=device).manual_seed(cfg.seed)
        self.amp = cfg.amp and bf16_native(device)
        self.seconds = 0.0

    @property
    def total(self) -> int:
        """Steps in the run: the schedule's length (fitted to the time budget once the rate is known)."""
        return self.engine.total_steps

    @total.setter
    def total(self, steps: int) -> None:
        self.engine.total_steps = steps

    def step(self, batch: torch.Tensor) -> torch.Tensor:
        return self.engine.step(lambda: ssl_step(self.net, self.loss_fn, batch, self.gen, self.amp)).detach()

    def _sync(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def _fit_to_budget(self, step: int, t0: float, t_cal: float) -> None:
        """Called at the end of the calibration: as many steps as fit in what is left of the budget."""
        now = self._sync()
        rate = (CALIBRATION[1] - CALIBRATION[0]) / max(now - t_cal, 1e-9)
        left = self.cfg.minutes * 60 - (now - t0)
        self.total = max(step + 1, step + round(left * rate))

    def train(self, progress: bool, report: Callable[[float, str], None] | None) -> list[float]:

        bs, n = self.cfg.batch_size, len(self.images)
        step, history, t0, t_cal = 0, [], self._sync(), 0.0
        bar = tqdm(total=None if self.cfg.minutes else self.total, desc="pretrain", unit="step", disable=not progress)
        while step < self.total:
            perm = torch.randperm(n, generator=self.gen, device=self.device)
            epoch_loss, done = torch.zeros((), device=self.device), 0
            for i in range(self.steps_per_epoch):
                if step >= self.total:
                    break
                epoch_loss += self.step(self.images[perm[i * bs:(i + 1) * bs]])
                step, done = step + 1, done + 1
                bar.update(1)
                if self.cfg.minutes and step == CALIBRATION[0]:
                    t_cal = self._sync()
                elif self.cfg.minutes and step == CALIBRATION[1]:
                    self._fit_to_budget(step, t0, t_cal)
                    bar.total = self.total
            history.append(round(float(epoch_loss) / max(1, done), 4))
            msg = f"pretrain epoch {len(history)} (step {step}/{self.total}): SimCLR loss {history[-1]:.4f}"
            bar.set_postfix(loss=f"{history[-1]:.3f}")
            if progress:
                tqdm.write(msg)
            if report:
                report(min(1.0, step / self.total), msg)
        bar.close()
        self.total, self.seconds = step, round(self._sync() - t0, 1)
        return history
