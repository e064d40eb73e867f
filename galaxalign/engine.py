"""The training engine every loop in galaxalign runs on: the two-stage GalaxAlign trainer
(:class:`galaxalign.train.Trainer`), the supervised baselines (:func:`galaxalign.baselines.train_supervised`),
self-supervised pretraining (:func:`galaxalign.pretrain.pretrain`) and adaptation
(:func:`galaxalign.adapt.adapt_model`).

What they share lives here, once:

- **device and precision**: :func:`device_for` (``auto`` → the GPU when there is one) and
  :func:`amp_enabled` (bf16 autocast when asked for and native on the device,
  :func:`galaxalign.model.bf16_native`);
- **the step**: :class:`Engine` — AdamW, a warm-up + cosine schedule (or a constant rate), bf16 autocast
  around the forward pass and the loss, gradient clipping, and the optimiser and schedule state for a
  checkpoint to resume from;
- **early stopping**: :class:`EarlyStop` keeps the best weights by a validation score and says when
  ``patience`` epochs have not beaten it.

Each loop keeps only what is its own: its batches, its loss and its progress messages.
"""
from __future__ import annotations

import math
from typing import Callable, Iterable

import torch

from .model import bf16_native

__all__ = ["Engine", "EarlyStop", "cosine_schedule", "decay_groups", "device_for", "amp_enabled"]


def cosine_schedule(step: int, total: int, warmup: int) -> float:
    """The learning-rate factor at ``step``: linear warm-up over ``warmup`` steps, then a cosine to 0."""
    if step < warmup:
        return (step + 1) / max(1, warmup)
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def decay_groups(module: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Parameter groups by open_clip's rule: no weight decay on gains, biases, embeddings and the logit
    scale; ``weight_decay`` on the rest. Frozen parameters are left out."""
    decay, no_decay = [], []
    for n, p in module.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "bn" in n or "ln" in n or "bias" in n or "logit_scale" in n or "embedding" in n
         else decay).append(p)
    return [{"params": no_decay, "weight_decay": 0.0}, {"params": decay, "weight_decay": weight_decay}]


def device_for(name: str) -> torch.device:
    """``auto``: the GPU when there is one, else the CPU; anything else as torch names it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def amp_enabled(asked: bool, device: torch.device) -> bool:
    """bf16 autocast: when ``asked`` and the device runs bf16 natively (elsewhere it is slower than fp32)."""
    return bool(asked) and bf16_native(device)


class Engine:
    """One optimiser step at a time, the same way for every loop.

    ``params``: tensors or parameter groups (with their own ``weight_decay``); ``total_steps``: the length
    of the warm-up + cosine schedule (``None``: a constant learning rate); it may be changed while running
    (pretraining fits it to a time budget). ``amp``: bf16 autocast around the forward pass and the loss;
    ``grad_clip``: the gradient norm is clipped to this (``None``: not clipped), summed over
    ``clip_params`` (default: the optimised parameters; the order changes the last bits of the norm).
    """

    def __init__(self, params: Iterable, lr: float, *, weight_decay: float = 0.01,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, total_steps: int | None = None,
                 warmup_steps: int = 0, grad_clip: float | None = None, clip_params: Iterable | None = None,
                 amp: bool = False, device_type: str = "cpu"):
        self.opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, betas=betas, eps=eps)
        # the gradient norm is summed over these, in this order (default: the optimised parameters)
        self.params = list(clip_params) if clip_params is not None else \
            [p for group in self.opt.param_groups for p in group["params"]]
        self.total_steps, self.warmup_steps = total_steps, warmup_steps
        self.sched = None
        if total_steps is not None:
            self.sched = torch.optim.lr_scheduler.LambdaLR(
                self.opt, lambda s: cosine_schedule(s, self.total_steps, self.warmup_steps))
        self.grad_clip, self.amp, self.device_type = grad_clip, amp, device_type

    def step(self, compute: Callable[[], torch.Tensor | dict]) -> torch.Tensor | dict:
        """Run ``compute`` (the forward pass and the loss; a tensor, or a dict with ``"loss"``) under the
        engine's precision, then backward, clip, step the optimiser and the schedule. Returns what
        ``compute`` returned."""
        with torch.autocast(self.device_type, dtype=torch.bfloat16, enabled=self.amp):
            out = compute()
        loss = out["loss"] if isinstance(out, dict) else out
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.params, self.grad_clip)
        self.opt.step()
        if self.sched is not None:
            self.sched.step()
        return out

    @property
    def lr(self) -> float:
        return self.opt.param_groups[-1]["lr"]

    def state_dict(self) -> dict:
        """The optimiser and schedule state a checkpoint keeps to resume from."""
        return {"optimizer": self.opt.state_dict(),
                "scheduler": self.sched.state_dict() if self.sched is not None else None}

    def load_state_dict(self, state: dict) -> None:
        self.opt.load_state_dict(state["optimizer"])
        if self.sched is not None and state.get("scheduler") is not None:
            self.sched.load_state_dict(state["scheduler"])


class EarlyStop:
    """The best weights by a validation score, and when to stop: after ``patience`` epochs without a
    better score (``patience`` 0: never stop early, nothing is kept)."""

    def __init__(self, patience: int):
        self.patience = int(patience)
        self.score: float | None = None
        self.epoch = 0
        self._states: list[dict] | None = None

    def update(self, score: float, epoch: int, *modules: torch.nn.Module) -> bool:
        """Record ``score`` after ``epoch`` (1-based); keep the weights of ``modules`` when it is the best
        so far. True when training should stop."""
        if self.score is None or score > self.score:
            self.score, self.epoch = float(score), int(epoch)
            self._states = [{k: v.detach().clone() for k, v in m.state_dict().items()} for m in modules]
            return False
        return self.patience > 0 and epoch - self.epoch >= self.patience

    @property
    def kept(self) -> bool:
        return self._states is not None

    def restore(self, *modules: torch.nn.Module) -> None:
        """Load the best weights back into ``modules`` (in the order :meth:`update` was given them)."""
        if self._states is not None:
            for m, state in zip(modules, self._states):
                m.load_state_dict(state)
