"""What each kind of job is asked to do: a typed, frozen parameter object per kind, checked when the job
is **queued** (the Admin page, the CLI and job-to-job alike), so a bad request is refused at the door
with one line instead of failing later in the worker.

The job row keeps the plain dict (:meth:`JobParams.to_dict`); the worker reads it back through
:meth:`JobParams.from_dict`, the same check. Types come from the field annotations (``int``, ``float``,
``str``, ``bool``, unions with ``None``); ranges and choices from the field's metadata.
"""
from __future__ import annotations

import typing
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any, ClassVar

from ..errors import GalaxalignError
from ..validate import check_name

__all__ = ["JobParams", "RetrainParams", "EmbedParams", "EmbedShardParams", "AdaptParams", "ProjectParams",
           "RefreshParams", "PARAMS", "ROLES", "JOB_KINDS", "ALIGN_CHOICES", "PROJECTION_METHODS", "LEARN_FROM"]

ALIGN_CHOICES = ("ot", "mmd", "none")
PROJECTION_METHODS = ("pca", "tsne", "umap")
LEARN_FROM = ("consensus", "votes")
_TYPES = {"int": int, "float": float, "str": str, "bool": bool, "None": type(None)}
_WORDS = {int: "a whole number", float: "a number", str: "a text", bool: "true or false"}


def _allowed(annotation: str) -> tuple[type, ...]:
    """``"int | None"`` → ``(int, NoneType)`` (annotations are strings under ``from __future__``)."""
    return tuple(_TYPES[t.strip()] for t in annotation.split("|"))


def _check_value(kind: str, name: str, value: Any, annotation: str, meta: typing.Mapping) -> None:
    allowed = _allowed(annotation)
    ok = any(isinstance(value, t) and not (t in (int, float) and isinstance(value, bool)) for t in allowed)
    if not ok and float in allowed and isinstance(value, int) and not isinstance(value, bool):
        ok = True  # a whole number is a fine float
    want = " or ".join(_WORDS[t] for t in allowed if t is not type(None))
    if not ok:
        raise GalaxalignError(f"{kind}: {name} must be {want}, got {value!r}")
    if value is None or isinstance(value, bool):
        return
    if "choices" in meta and isinstance(value, str) and value not in meta["choices"]:
        raise GalaxalignError(f"{kind}: {name} must be one of {', '.join(meta['choices'])}, got {value!r}")
    if "range" in meta and isinstance(value, (int, float)):
        lo, hi = meta["range"]
        if not (lo <= value <= hi):
            raise GalaxalignError(f"{kind}: {name} must be {want} between {_num(lo)} and {_num(hi)}, got {value!r}")
    if isinstance(value, str) and not value.strip() and meta.get("nonempty", True):
        raise GalaxalignError(f"{kind}: {name} must not be empty")


def _num(x: float) -> str:
    return f"{x:g}" if isinstance(x, float) else f"{x:,}"


def _range(lo: float, hi: float, default: Any = None) -> Any:
    return field(default=default, metadata={"range": (lo, hi)})


def _choices(options: tuple[str, ...], default: Any = None) -> Any:
    return field(default=default, metadata={"choices": options})


@dataclass(frozen=True)
class JobParams:
    """Base of every kind's parameters: strict construction from a dict, and back."""
    kind: ClassVar[str] = ""

    @classmethod
    def from_dict(cls, d: dict | None) -> "JobParams":
        d = dict(d or {})
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise GalaxalignError(f"{cls.kind}: unknown parameter(s) {', '.join(unknown)}; "
                                  f"known: {', '.join(known)}")
        missing = [n for n, f in known.items() if n not in d and f.default is MISSING]
        if missing:
            raise GalaxalignError(f"{cls.kind}: missing parameter(s) {', '.join(missing)}")
        for name, value in d.items():
            _check_value(cls.kind, name, value, known[name].type, known[name].metadata)
        return cls(**d)

    def to_dict(self) -> dict:
        """The dict the job row keeps: every value the job runs with (unset optional ones left out)."""
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class RetrainParams(JobParams):
    """``survey``: registered survey name (default: the first); ``config``: training YAML (default: the
    survey's own, else the starter's); epochs override the config's; ``from_scratch``: do not start
    from the active model; ``force_activate``: activate even if worse; ``tolerance``: how much worse
    (macro-F1) still counts as "not worse" (negative: the candidate must beat the active model by that
    much); ``lr_scale``: the config's lr is scaled by this when starting from the active model;
    ``name``: the model version's name (default: a time stamp); ``seed``: the training seed;
    ``learn_from``: ``consensus`` (one label per known or retired galaxy) or ``votes`` (every galaxy's
    vote counts as well, through a Dirichlet–multinomial term: :func:`galaxalign.store.training_votes`);
    ``semi``: the galaxies nobody has labelled or voted on yet join through FixMatch (pseudo-labels from a
    confidence of 0.95 unless the config sets ``semi_threshold``)."""
    kind: ClassVar[str] = "retrain"
    survey: str | None = None
    config: str | None = None
    stage1_epochs: int | None = _range(0, 10_000)
    stage2_epochs: int | None = _range(0, 10_000)
    from_scratch: bool = False
    force_activate: bool = False
    tolerance: float = _range(-1.0, 1.0, 0.005)
    lr_scale: float = _range(1e-6, 10.0, 0.1)
    name: str | None = None
    seed: int | None = _range(0, 2**32 - 1)
    learn_from: str = _choices(LEARN_FROM, "consensus")
    semi: bool = False

    def __post_init__(self):  # a name the store would refuse is refused before an hour of training, not after
        if self.name is not None:
            check_name(self.name, "retrain: name", GalaxalignError)


@dataclass(frozen=True)
class RefreshParams(JobParams):
    """Refit the active model's proposals for ``survey`` (default: the first) on its stored embeddings
    (:mod:`galaxalign.heads`): ``heads`` linear heads, each on a bootstrap of the vote counts, tempered on
    the held-out split; predictions, the queue's uncertainty and the gate refreshed, no weights touched.
    ``pseudo``: confident unlabelled galaxies join as pseudo-votes (0 turns it off)."""
    kind: ClassVar[str] = "refresh"
    survey: str | None = None
    heads: int = _range(1, 32, 5)
    pseudo: float = _range(0.0, 1.0, 0.0)
    seed: int = _range(0, 2**32 - 1, 0)


@dataclass(frozen=True)
class EmbedParams(JobParams):
    """Embed, predict and index ``survey`` (default: the first) with model version ``model`` (name or id);
    ``shards``: split over the queue's workers (a number ≥ 1, or ``"auto"``: 50,000 galaxies each)."""
    kind: ClassVar[str] = "embed"
    model: str | int
    survey: str | None = None
    shards: int | str = 1

    def __post_init__(self):
        if not (self.shards == "auto" or (isinstance(self.shards, int) and self.shards >= 1)):
            raise GalaxalignError(f"embed: shards must be a whole number ≥ 1 or 'auto', got {self.shards!r}")


@dataclass(frozen=True)
class EmbedShardParams(JobParams):
    """One shard of a sharded embed job (queued by the embed job, never by hand)."""
    kind: ClassVar[str] = "embed_shard"
    survey: str
    model: str
    shard: int = _range(0, 1_000_000, 0)
    attempt: int = _range(1, 100, 1)


@dataclass(frozen=True)
class AdaptParams(JobParams):
    """Adapt ``model`` (default: the active one) to the registered ``survey``; ``align``: ``ot``, ``mmd``
    or ``none``; ``epochs``: passes over the target; ``name``: the candidate's name."""
    kind: ClassVar[str] = "adapt"
    survey: str
    model: str | int | None = None
    epochs: int | None = _range(1, 1000)
    align: str | None = _choices(ALIGN_CHOICES)
    align_weight: float | None = _range(0.0, 100.0)
    seed: int | None = _range(0, 2**32 - 1)
    name: str | None = None


@dataclass(frozen=True)
class ProjectParams(JobParams):
    """A t-SNE, UMAP or PCA map of ``survey``'s embeddings with ``model`` (default: the active one)."""
    kind: ClassVar[str] = "project"
    method: str = _choices(PROJECTION_METHODS, "tsne")
    survey: str | None = None
    model: str | int | None = None


PARAMS: dict[str, type[JobParams]] = {p.kind: p for p in (RetrainParams, EmbedParams, EmbedShardParams,
                                                             AdaptParams, ProjectParams, RefreshParams)}
JOB_KINDS = tuple(PARAMS)
# who may start a job of each kind from the app (default: admins); a map is a researcher's own view
ROLES = {"project": "researcher"}
