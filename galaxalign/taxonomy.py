"""Label sets and the Galaxy Zoo 2 decision tree.

Three small concepts, after zoobot's ``Schema`` / ``Question`` / ``Answer``:

- :class:`Answer` and :class:`Task` make up the GZ2 tree (:data:`GZ2_TREE`), T01–T11, with the
  wording volunteers see and the ``next`` link of every answer.
- :class:`GalaxyClass` is one class of a :class:`LabelSet`: its name, the prompt in the paper's
  form ("A picture of a barred spiral galaxy"), the symbol that stands for it and the path through
  the tree that defines it.
- :class:`LabelSet` is an ordered list of classes (:data:`GALAXY10`, :data:`GALAXY_MNIST`) that can
  turn any completed path through the tree back into one of its classes (or ``None``).

>>> GALAXY10.class_names[5]
'Barred Spiral'
>>> GALAXY10[5].prompt
'A picture of a barred spiral galaxy'
>>> GALAXY10.resolve(GALAXY10[5].path)
5
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import yaml

from .errors import GalaxalignError
from .symbols import is_glyph

__all__ = [
    "Answer", "Task", "DecisionTree", "GalaxyClass", "LabelSet", "PathError",
    "GZ2_TREE", "GALAXY10", "GALAXY_MNIST", "FIRST", "LABEL_SETS", "get_label_set", "make_prompt",
    "load_label_set", "LabelSetError", "LABELSET_DIR", "AnswerMap",
]


class PathError(GalaxalignError, ValueError):
    """An answer path that is not a valid walk through the decision tree."""


@dataclass(frozen=True)
class Answer:
    """One answer of a GZ2 task.

    ``id`` is globally unique and doubles as the symbol name, e.g. ``Answer("t03_bar", "Bar",
    next=None, help="A straight bright band through the centre")``; ``next`` is the task that follows
    (``None`` for the end of the tree or for "go back to the caller's default" — see :class:`Task`).
    """

    id: str
    text: str
    next: str | None
    help: str = ""


@dataclass(frozen=True)
class Task:
    """One question of the tree: ``Task("T03", "Is there a sign of a bar…?", answers=(…))``.

    ``default_next`` is where an answer without its own ``next`` goes (T03 "Bar" and "No bar" both
    lead to T04).
    """

    id: str
    question: str
    answers: tuple[Answer, ...]
    default_next: str | None = None

    def answer(self, answer_id: str) -> Answer:
        for a in self.answers:
            if a.id == answer_id:
                return a
        raise PathError(f"task {self.id} has no answer {answer_id!r} "
                        f"(answers: {', '.join(a.id for a in self.answers)})")

    def next_task(self, answer_id: str) -> str | None:
        a = self.answer(answer_id)
        return a.next if a.next is not None else self.default_next


AnswerPath = tuple[tuple[str, str], ...]  # ((task_id, answer_id), ...) starting at the root


@dataclass(frozen=True)
class DecisionTree:
    """The GZ2 tree: ``tasks`` by id, walked from ``root``.

    >>> tree = GZ2_TREE
    >>> tree.validate([("T01", "t01_smooth"), ("T07", "t07_round"), ("T06", "t06_no")])
    (('T01', 't01_smooth'), ('T07', 't07_round'), ('T06', 't06_no'))
    """

    root: str
    tasks: dict[str, Task]

    def __getitem__(self, task_id: str) -> Task:
        try:
            return self.tasks[task_id]
        except KeyError:
            raise PathError(f"no task {task_id!r} in the decision tree") from None

    @property
    def answers(self) -> list[Answer]:
        """All answers, in task order (37 for GZ2)."""
        return [a for t in self.tasks.values() for a in t.answers]

    def get_answer(self, answer_id: str) -> tuple[Task, Answer]:
        for t in self.tasks.values():
            for a in t.answers:
                if a.id == answer_id:
                    return t, a
        raise PathError(f"no answer {answer_id!r} in the decision tree")

    def task_after(self, path: Sequence[Sequence[str]]) -> str | None:
        """The task asked after the (valid, partial) answer ``path``: the root for an empty path, ``None``
        when the path has reached the end of the tree."""
        return self.root if not path else self[path[-1][0]].next_task(path[-1][1])

    def validate(self, path: Iterable[Sequence[str]], complete: bool = True) -> AnswerPath:
        """Check that ``path`` walks the tree from the root; return it as a tuple of pairs.

        ``complete=True`` also demands that the walk ends where the tree ends. Raises
        :class:`PathError` with the step that broke.
        """
        steps: list[tuple[str, str]] = []
        expected: str | None = self.root
        for i, step in enumerate(path):
            if not isinstance(step, (tuple, list)) or len(step) != 2:
                raise PathError(f"step {i} of the answer path is not a (task, answer) pair: {step!r}")
            task_id, answer_id = str(step[0]), str(step[1])
            if expected is None:
                raise PathError(f"step {i} ({task_id}) comes after the end of the tree")
            if task_id != expected:
                raise PathError(f"step {i} answers {task_id} but the tree asks {expected} there")
            expected = self[task_id].next_task(answer_id)
            steps.append((task_id, answer_id))
        if not steps:
            raise PathError("the answer path is empty")
        if complete and expected is not None:
            raise PathError(f"the answer path stops before the end of the tree (next task: {expected})")
        return tuple(steps)

    def answers_of(self, path: AnswerPath) -> dict[str, str]:
        """``{task_id: answer_id}`` of a path."""
        return dict(path)

    def paths(self) -> Iterator[AnswerPath]:
        """Every complete path through the tree, root to end (1,265 for GZ2)."""
        def walk(task_id: str | None, prefix: AnswerPath) -> Iterator[AnswerPath]:
            if task_id is None:
                yield prefix
                return
            for a in self[task_id].answers:
                yield from walk(self[task_id].next_task(a.id), prefix + ((task_id, a.id),))
        yield from walk(self.root, ())


CLASS_TASK = "CLASS"  # the task of an AnswerMap whose answers are the classes themselves


@dataclass(frozen=True, eq=False)
class AnswerMap:
    """What each class of a label set says about the answers to each task: the columns of the vote counts
    training reads (one per ``(task, answer)``), ``implies`` (C, K) with 1 where every path that resolves
    to class c gives that answer at that task, and ``tasks``, the columns of each task.

    The first task is always the class itself (``CLASS``, one column per class, ``implies`` the identity):
    a vote whose whole path resolves to a class counts there, as in a flat workflow. With the GZ2 tree,
    a vote whose path resolves to *no* class still teaches, at every task of the tree where classes
    differ: "features, not edge-on, bar, spiral, …, odd: lens" names no Galaxy10 class, but says *bar* at
    T03 — evidence for Barred Spiral against the unbarred ones. Only answers some class implies (every
    path that resolves to it gives that answer there) are columns, and only tasks with two or more of
    them. Each vote counts once: in the class task or in the tree's.
    """

    columns: tuple[tuple[str, str], ...]
    implies: np.ndarray
    tasks: tuple[tuple[int, ...], ...]

    @classmethod
    def flat(cls, n_classes: int) -> "AnswerMap":
        return cls(tuple((CLASS_TASK, str(c)) for c in range(n_classes)), np.eye(n_classes, dtype=np.float32),
                   (tuple(range(n_classes)),))

    def column(self, task: str, answer: str) -> int | None:
        return self._index.get((str(task), str(answer)))

    @cached_property
    def _index(self) -> dict:
        return {c: k for k, c in enumerate(self.columns)}


def _t(id: str, question: str, answers: list[tuple[str, str, str | None, str]],
       default_next: str | None = None) -> Task:
    return Task(id, question, tuple(Answer(a, text, nxt, help) for a, text, nxt, help in answers),
                default_next)


GZ2_TREE = DecisionTree(root="T01", tasks={t.id: t for t in [
    _t("T01", "Is the galaxy simply smooth and rounded, with no sign of a disk?", [
        ("t01_smooth", "Smooth", "T07", "A smooth, featureless glow that fades outwards"),
        ("t01_features", "Features or disk", "T02", "Any structure: a disk, arms, a bar, clumps"),
        ("t01_star", "Star or artifact", None, "A point source with spikes, a satellite trail or bad data"),
    ]),
    _t("T02", "Could this be a disk viewed edge-on?", [
        ("t02_yes", "Yes", "T09", "A thin, needle-like disk seen from the side"),
        ("t02_no", "No", "T03", "A disk seen more or less face-on"),
    ]),
    _t("T03", "Is there a sign of a bar feature through the centre of the galaxy?", [
        ("t03_bar", "Bar", None, "A straight bright band crossing the centre"),
        ("t03_no_bar", "No bar", None, "No straight band through the centre"),
    ], default_next="T04"),
    _t("T04", "Is there any sign of a spiral arm pattern?", [
        ("t04_spiral", "Spiral", "T10", "Arms winding out from the centre"),
        ("t04_no_spiral", "No spiral", "T05", "A disk without arms"),
    ]),
    _t("T05", "How prominent is the central bulge, compared with the rest of the galaxy?", [
        ("t05_no_bulge", "No bulge", None, "No central concentration at all"),
        ("t05_just_noticeable", "Just noticeable", None, "A small bright centre"),
        ("t05_obvious", "Obvious", None, "A clear, round bright centre"),
        ("t05_dominant", "Dominant", None, "The bulge outshines the disk"),
    ], default_next="T06"),
    _t("T06", "Is there anything odd?", [
        ("t06_yes", "Yes", "T08", "A ring, an arc, a dust lane, a companion, a disturbance"),
        ("t06_no", "No", None, "Nothing unusual"),
    ]),
    _t("T07", "How rounded is it?", [
        ("t07_round", "Completely round", None, "A circle"),
        ("t07_in_between", "In between", None, "An oval"),
        ("t07_cigar", "Cigar shaped", None, "Long and thin, like a cigar"),
    ], default_next="T06"),
    _t("T08", "Is the odd feature a ring, or is the galaxy disturbed or irregular?", [
        ("t08_ring", "Ring", None, "A ring around the centre"),
        ("t08_lens", "Lens or arc", None, "A thin arc: a gravitational lens"),
        ("t08_disturbed", "Disturbed", None, "A galaxy pulled out of shape"),
        ("t08_irregular", "Irregular", None, "No regular form, clumpy"),
        ("t08_other", "Other", None, "Something else odd"),
        ("t08_merger", "Merger", None, "Two galaxies colliding, often with tidal tails"),
        ("t08_dust_lane", "Dust lane", None, "A dark band across the galaxy"),
    ]),
    _t("T09", "Does the galaxy have a bulge at its centre? If so, what shape?", [
        ("t09_rounded", "Rounded", None, "A round bulge at the centre of the edge-on disk"),
        ("t09_boxy", "Boxy", None, "A squarish bulge"),
        ("t09_no_bulge", "No bulge", None, "A flat, even needle"),
    ], default_next="T06"),
    _t("T10", "How tightly wound do the spiral arms appear?", [
        ("t10_tight", "Tight", None, "Arms wrapped close around the centre"),
        ("t10_medium", "Medium", None, "In between"),
        ("t10_loose", "Loose", None, "Open, sweeping arms"),
    ], default_next="T11"),
    _t("T11", "How many spiral arms are there?", [
        ("t11_1", "1", None, "One arm"),
        ("t11_2", "2", None, "Two arms"),
        ("t11_3", "3", None, "Three arms"),
        ("t11_4", "4", None, "Four arms"),
        ("t11_more", "More than four", None, "Five or more arms"),
        ("t11_cant_tell", "Can't tell", None, "The arms cannot be counted"),
    ], default_next="T05"),
]})


def make_prompt(class_name: str) -> str:
    """The paper's text label (§3.1): ``make_prompt("Barred Spiral")`` →
    ``'A picture of a barred spiral galaxy'``; "an" before a vowel."""
    name = class_name.replace("_", " ").strip().lower()
    if not name.endswith("galaxy"):
        name = f"{name} galaxy"
    article = "an" if name[0] in "aeiou" else "a"
    return f"A picture of {article} {name}"


class LabelSetError(GalaxalignError, ValueError):
    """A label-set file that cannot be used: the message names the file (or set) and the problem."""


@dataclass(frozen=True)
class GalaxyClass:
    """One class of a label set.

    ``GalaxyClass(index=5, name="Barred Spiral", slug="barred_spiral", label_set="galaxy10", path=((
    "T01", "t01_features"), …), description="Arms starting from the ends of a bar", prompt="A picture of
    a barred spiral galaxy", symbol="galaxy10/barred_spiral")``. ``symbol`` is a glyph name for
    :func:`galaxalign.symbols.render_symbol` or the absolute path of a PNG beside the label-set file;
    ``path`` is empty for a label set without a decision tree.
    """

    index: int
    name: str
    slug: str
    label_set: str
    path: AnswerPath
    description: str = ""
    prompt: str = ""
    symbol: str = ""

    @property
    def help(self) -> str:
        return self.description


@dataclass(frozen=True)
class LabelSet:
    """An ordered list of classes, read from a YAML file (:func:`load_label_set`), with the rules that
    map a GZ2 tree path to one of them when the set has a tree (``tree == "gz2"``)."""

    name: str
    classes: tuple[GalaxyClass, ...]
    _rules: tuple = field(repr=False, default=())
    title: str = ""
    question: str = "Which of these best describes the galaxy?"
    tree: str | None = None
    source: str | None = None  # the YAML file it was read from

    def __len__(self) -> int:
        return len(self.classes)

    def __getitem__(self, i: int) -> GalaxyClass:
        return self.classes[i]

    def __iter__(self):
        return iter(self.classes)

    @property
    def class_names(self) -> list[str]:
        return [c.name for c in self.classes]

    @property
    def prompts(self) -> list[str]:
        return [c.prompt for c in self.classes]

    @property
    def symbols(self) -> list[str]:
        return [c.symbol for c in self.classes]

    def resolve(self, path: Iterable[Sequence[str]]) -> int | None:
        """The class a completed tree path stands for, or ``None`` when the path describes no class
        of this set (a star, a featureless disk…). The first matching rule wins."""
        if self.tree is None:
            raise LabelSetError(f"label set {self.name!r} has no decision tree")
        answers = GZ2_TREE.answers_of(GZ2_TREE.validate(path))
        chosen = set(answers.values())
        for required, any_of, cls in self._rules:
            if required <= chosen and (not any_of or any_of & chosen):
                return cls
        return None

    def answer_map(self) -> AnswerMap:
        """The :class:`AnswerMap` of this set's classes on the GZ2 tree (computed once: every path of the
        tree resolved by the rules)."""
        return self._answer_map

    @cached_property
    def _answer_map(self) -> AnswerMap:
        if self.tree is None:
            raise LabelSetError(f"label set {self.name!r} has no decision tree")
        sure: list[dict[str, str]] = []
        by_class: dict[int, list[dict[str, str]]] = {}
        for path in GZ2_TREE.paths():
            c = self.resolve(path)
            if c is not None:
                by_class.setdefault(c, []).append(dict(path))
        for c in range(len(self.classes)):
            paths = by_class.get(c, [])
            common = {t: a for t, a in paths[0].items() if all(p.get(t) == a for p in paths)} if paths else {}
            sure.append(common)
        answers_by_task: dict[str, set[str]] = {}
        for common in sure:
            for t, a in common.items():
                answers_by_task.setdefault(t, set()).add(a)
        tree = tuple((t, a) for t in GZ2_TREE.tasks for a in (x.id for x in GZ2_TREE[t].answers)
                     if len(answers_by_task.get(t, ())) >= 2 and a in answers_by_task[t])
        n = len(self.classes)
        flat = AnswerMap.flat(n)
        implies = np.array([[1.0 if sure[c].get(t) == a else 0.0 for t, a in tree] for c in range(n)],
                           np.float32).reshape(n, len(tree))
        columns = flat.columns + tree
        tasks = flat.tasks + tuple(tuple(n + k for k, (t, _) in enumerate(tree) if t == task)
                                   for task in dict.fromkeys(t for t, _ in tree))
        return AnswerMap(columns, np.concatenate([flat.implies, implies], 1), tasks)

    def check_trimodal(self, tokenize: Callable[[list[str]], Any] | None = None) -> None:
        """Refuse a label set that a tri-modal run cannot learn from: two classes with the same symbol
        (one picture asked to match two texts) or prompts that are identical once tokenized.
        ``tokenize`` maps prompts to token rows (the model's tokenizer); by default CLIP's text
        cleaning (lower case, collapsed white space) stands in for it."""
        seen: dict[str, str] = {}
        for c in self.classes:
            if c.symbol in seen:
                raise LabelSetError(f"label set {self.name!r}: classes {seen[c.symbol]!r} and {c.name!r} share the "
                                    f"symbol {_symbol_label(c.symbol)}; a tri-modal run needs one symbol per class")
            seen[c.symbol] = c.name
        if tokenize is None:
            keys = [" ".join(p.lower().split()) for p in self.prompts]
        else:
            keys = [tuple(int(t) for t in row) for row in tokenize(self.prompts)]
        first: dict = {}
        for c, k in zip(self.classes, keys):
            if k in first:
                raise LabelSetError(f"label set {self.name!r}: classes {first[k]!r} and {c.name!r} have the same prompt "
                                    f"after tokenization ({c.prompt!r}); write prompts that tell them apart")
            first[k] = c.name


def _symbol_label(symbol: str) -> str:
    return Path(symbol).name if symbol.lower().endswith(".png") else repr(symbol)


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name.lower()).replace("__", "_").strip("_")


LABELSET_DIR = Path(__file__).resolve().parent / "labelsets"
_SET_NAME = re.compile(r"[a-z][a-z0-9_]{1,39}")


def load_label_set(file: str | os.PathLike) -> LabelSet:
    """Read and validate a label-set YAML file (format: ``docs/labelsets.md``).

    ``symbol`` is a glyph of our vocabulary (``radio/fri``, ``t03_bar``, ``galaxy10/barred_spiral``)
    or a PNG file beside the YAML file. Classes of a set with ``tree: gz2`` carry a ``path`` of GZ2
    answer ids, and ``rules`` map any completed path back to a class. Raises :class:`LabelSetError`
    naming the file and the problem.
    """
    file = Path(file)
    try:
        raw = yaml.safe_load(file.read_text())
    except FileNotFoundError:
        raise LabelSetError(f"{file}: no such label-set file") from None
    except IsADirectoryError:
        raise LabelSetError(f"{file}: is a folder, not a label-set file") from None
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise LabelSetError(f"{file}: not valid YAML ({str(e).splitlines()[0]})") from None
    return label_set_from_dict(raw, file)


def label_set_from_dict(raw: Any, file: Path) -> LabelSet:
    def err(msg: str) -> LabelSetError:
        return LabelSetError(f"{file}: {msg}")

    if not isinstance(raw, dict):
        raise err("expected a mapping with 'name' and 'classes'")
    unknown = sorted(set(raw) - {"name", "title", "question", "tree", "classes", "rules"})
    if unknown:
        raise err(f"unknown key(s) {', '.join(unknown)}")
    name = raw.get("name")
    if not isinstance(name, str) or not _SET_NAME.fullmatch(name):
        raise err(f"name {name!r} must be 2–40 lower-case letters, digits or '_', starting with a letter")
    tree = raw.get("tree")
    if tree not in (None, "gz2"):
        raise err(f"tree {tree!r} must be 'gz2' or absent")
    items = raw.get("classes")
    if not isinstance(items, list) or len(items) < 2:
        raise err("'classes' must be a list of at least two classes")
    classes, names = [], {}
    for i, c in enumerate(items):
        if not isinstance(c, dict):
            raise err(f"class {i + 1} is not a mapping")
        bad = sorted(set(c) - {"name", "prompt", "help", "symbol", "path"})
        if bad:
            raise err(f"class {i + 1}: unknown key(s) {', '.join(bad)}")
        cname = c.get("name")
        if not isinstance(cname, str) or not cname.strip() or cname != cname.strip() or "\n" in cname:
            raise err(f"class {i + 1}: 'name' must be a non-empty one-line string")
        if cname.lower() in names:
            raise err(f"class {cname!r} appears twice (classes {names[cname.lower()] + 1} and {i + 1})")
        names[cname.lower()] = i
        prompt = c.get("prompt") or make_prompt(cname)
        sym = c.get("symbol")
        if not isinstance(sym, str) or not sym.strip():
            raise err(f"class {cname!r} has no symbol")
        if sym.lower().endswith(".png"):
            png = (file.parent / sym).resolve()
            if not png.is_file():
                raise err(f"class {cname!r}: symbol file {sym} is missing (looked for {png})")
            sym = str(png)
        elif not is_glyph(sym):
            raise err(f"class {cname!r}: symbol {sym!r} is neither a PNG file nor a glyph of our vocabulary")
        path: AnswerPath = ()
        if tree == "gz2":
            steps = c.get("path")
            if not isinstance(steps, list) or not steps:
                raise err(f"class {cname!r}: a label set with tree gz2 needs a 'path' of answer ids")
            try:
                path = _path(*[str(a) for a in steps])
            except PathError as e:
                raise err(f"class {cname!r}: {e}") from None
        classes.append(GalaxyClass(i, cname, _slug(cname), name, path, str(c.get("help") or "").strip(),
                                   str(prompt).strip(), sym))
    rules = []
    if tree == "gz2":
        lookup = {c.name: c.index for c in classes}
        all_answers = {a.id for a in GZ2_TREE.answers}
        for j, r in enumerate(raw.get("rules") or []):
            if not isinstance(r, dict) or r.get("class") not in lookup:
                raise err(f"rule {j + 1} must name one of the classes ({', '.join(lookup)})")
            req, any_of = frozenset(r.get("all") or ()), frozenset(r.get("any") or ())
            unknown_ans = sorted((req | any_of) - all_answers)
            if unknown_ans:
                raise err(f"rule {j + 1}: unknown answer id(s) {', '.join(unknown_ans)}")
            rules.append((req, any_of, lookup[r["class"]]))
        if not rules:
            raise err("a label set with tree gz2 needs 'rules' that map paths to classes")
    elif raw.get("rules"):
        raise err("'rules' need 'tree: gz2'")
    ls = LabelSet(name, tuple(classes), tuple(rules), str(raw.get("title") or name),
                  str(raw.get("question") or "Which of these best describes the galaxy?"), tree, str(file))
    if tree == "gz2":
        for c in classes:
            if ls.resolve(c.path) != c.index:
                raise err(f"class {c.name!r}: its path resolves to "
                          f"{ls.resolve(c.path) if ls.resolve(c.path) is None else ls[ls.resolve(c.path)].name!r} "
                          "under the rules")
    return ls


def _path(*answer_ids: str) -> AnswerPath:
    """Build a path from answer ids alone, looking each task up; validated."""
    steps = [(GZ2_TREE.get_answer(a)[0].id, a) for a in answer_ids]
    return GZ2_TREE.validate(steps)


GALAXY10 = load_label_set(LABELSET_DIR / "galaxy10.yaml")
GALAXY_MNIST = load_label_set(LABELSET_DIR / "galaxy_mnist.yaml")
FIRST = load_label_set(LABELSET_DIR / "first.yaml")
LABEL_SETS: dict[str, LabelSet] = {ls.name: ls for ls in (GALAXY10, GALAXY_MNIST, FIRST)}


def get_label_set(name: str) -> LabelSet:
    """``get_label_set("galaxy10")`` → :data:`GALAXY10`; a path to a YAML file loads that file."""
    if name.endswith((".yaml", ".yml")):
        return load_label_set(name)
    try:
        return LABEL_SETS[name]
    except KeyError:
        raise KeyError(f"unknown label set {name!r}; known: {', '.join(LABEL_SETS)}") from None
