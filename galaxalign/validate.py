"""The one boundary for values that arrive from outside (the CLI, the app, the store API): each check
returns the value in its checked form or raises a :class:`~galaxalign.errors.GalaxalignError` subclass
whose message reads ``"<thing>: <problem>"``, the thing shortened when long (:func:`short`).

The store, the importer and the command line call these; nothing else re-implements them.
"""
from __future__ import annotations

import math
import numbers
import os
import re
import unicodedata
from pathlib import Path
from typing import Any

from .errors import GalaxalignError

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{1,39}")  # a whole name: fullmatch, so no trailing newline
NAME_RULE = "must be 2–40 letters, digits, '.', '_' or '-', starting with a letter or digit"
SHORT = 60


class InvalidValue(GalaxalignError, ValueError):
    """A value from outside that the package refuses."""


def short(value: Any, limit: int = SHORT) -> str:
    """``repr(value)``, cut in the middle when longer than ``limit`` characters and saying how long it was:
    a 10 MB name must not come back whole inside its own error message."""
    text = repr(value)
    if len(text) <= limit:
        return text
    n = len(value) if isinstance(value, (str, bytes, list, tuple)) else len(text)
    half = (limit - 1) // 2
    return f"{text[:half]}…{text[-half:]} ({n:,} characters)"


def check_name(name: Any, what: str = "name", error: type[GalaxalignError] = InvalidValue) -> str:
    """A volunteer, survey or model-version name: 2–40 plain characters, nothing after them."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise error(f"{what} {short(name)} {NAME_RULE}")
    return name


NAME_MAX = 40


def name_key(name: str) -> str:
    """The form two account names are compared in: NFKC (full-width ``Ａｄａ`` → ``Ada``) then casefold —
    ``Ada``, ``ada`` and ``Ａｄａ`` share one key, so they can be only one account."""
    return unicodedata.normalize("NFKC", name).casefold()


def check_volunteer_name(name: Any, error: type[GalaxalignError] = InvalidValue) -> str:
    """An account name as a person typed it, in its display form: NFKC-normalised, then held to :data:`NAME_RULE` (the form Talk's ``@mentions`` can name).
    Control characters and over-long names get their own message."""
    if not isinstance(name, str):
        raise error(f"name {short(name)}: must be text")
    display = unicodedata.normalize("NFKC", name)
    if not display:
        raise error("name: must not be empty")
    if any(unicodedata.category(ch).startswith("C") for ch in display):
        raise error(f"name {short(display)}: must not contain control or invisible characters")
    if len(display) > NAME_MAX:
        raise error(f"name {short(display)}: too long; at most {NAME_MAX} characters")
    if not NAME_RE.fullmatch(display):
        raise error(f"name {short(display)} {NAME_RULE}")
    return display


def is_integer(x: Any) -> bool:
    """An integer that is not a bool (``True`` is an ``int`` in Python, never a class index here)."""
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _is_real(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def check_seconds(seconds: Any, error: type[GalaxalignError] = InvalidValue) -> float | None:
    """Time a volunteer took: None, or a finite number ≥ 0."""
    if seconds is None:
        return None
    if not _is_real(seconds) or not math.isfinite(float(seconds)) or float(seconds) < 0:
        raise error(f"seconds {short(seconds)}: time taken must be a finite number of seconds ≥ 0")
    return float(seconds)


def check_proposal(proposal: Any, n_classes: int, error: type[GalaxalignError] = InvalidValue
                   ) -> tuple[int, float] | None:
    """The model's pre-selected ``(class, confidence)``: a class index of this survey and a confidence in [0, 1]."""
    if proposal is None:
        return None
    if isinstance(proposal, (str, bytes)) or not hasattr(proposal, "__len__") or len(proposal) != 2:
        raise error(f"proposal {short(proposal)}: expected (class index, confidence)")
    k, c = proposal
    if not is_integer(k) or not 0 <= int(k) < n_classes:
        raise error(f"proposal class {short(k)}: not a class index of this survey (0–{n_classes - 1})")
    if not _is_real(c) or not 0.0 <= float(c) <= 1.0:  # NaN fails both comparisons
        raise error(f"proposal confidence {short(c)}: must be a number in [0, 1]")
    return int(k), float(c)


def check_fraction(x: Any, what: str, error: type[GalaxalignError] = InvalidValue) -> float:
    """A number in [0, 1] (thresholds, floors)."""
    if not _is_real(x) or not 0.0 <= float(x) <= 1.0:
        raise error(f"{what} {short(x)}: must be a number in [0, 1]")
    return float(x)


def check_output_file(path: str | os.PathLike, suffixes: tuple[str, ...] | None = None,
                      error: type[GalaxalignError] = InvalidValue) -> Path:
    """A file about to be written: the right kind, not an existing folder, under a folder (or nothing)
    rather than under a regular file. Checked before any work is done, so that nothing is left half-made."""
    path = Path(path)
    if suffixes and path.suffix.lower() not in suffixes:
        raise error(f"{path}: the file must end in {' or '.join(suffixes)}")
    if path.is_dir():
        raise error(f"{path}: is a folder; give a file name")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise error(f"{path}: {parent} is a file, not a folder")
            if not os.access(parent, os.W_OK):
                raise error(f"{path}: folder {parent} is not writable")
            break
    return path
