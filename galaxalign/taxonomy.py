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

from dataclasses import dataclass, field
from typing import Iterable, Sequence

from .errors import GalaxalignError

__all__ = [
    "Answer", "Task", "DecisionTree", "GalaxyClass", "LabelSet", "PathError",
    "GZ2_TREE", "GALAXY10", "GALAXY_MNIST", "LABEL_SETS", "get_label_set", "make_prompt",
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


Path = tuple[tuple[str, str], ...]  # ((task_id, answer_id), ...) starting at the root


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

    def validate(self, path: Iterable[Sequence[str]], complete: bool = True) -> Path:
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

    def answers_of(self, path: Path) -> dict[str, str]:
        """``{task_id: answer_id}`` of a path."""
        return dict(path)


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


@dataclass(frozen=True)
class GalaxyClass:
    """One class of a label set.

    ``GalaxyClass(index=5, name="Barred Spiral", slug="barred_spiral", path=(("T01",
    "t01_features"), …))``; ``prompt`` is the paper's text and ``symbol`` the name of its composite
    symbol (``"galaxy10/barred_spiral"``) for :func:`galaxalign.symbols.render_symbol`.
    """

    index: int
    name: str
    slug: str
    label_set: str
    path: Path
    description: str = ""

    @property
    def prompt(self) -> str:
        return make_prompt(self.name)

    @property
    def symbol(self) -> str:
        return f"{self.label_set}/{self.slug}"


@dataclass(frozen=True)
class LabelSet:
    """An ordered list of classes with the rule that maps a tree path to one of them."""

    name: str
    classes: tuple[GalaxyClass, ...]
    _rules: tuple = field(repr=False, default=())

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

    def index_of(self, name_or_slug: str) -> int:
        key = name_or_slug.strip().lower()
        for c in self.classes:
            if key in (c.name.lower(), c.slug):
                return c.index
        raise KeyError(f"{self.name} has no class {name_or_slug!r}")

    def resolve(self, path: Iterable[Sequence[str]]) -> int | None:
        """The class a completed tree path stands for, or ``None`` when the path describes no class
        of this set (a star, a featureless disk…). The first matching rule wins."""
        answers = GZ2_TREE.answers_of(GZ2_TREE.validate(path))
        chosen = set(answers.values())
        for required, any_of, cls in self._rules:
            if required <= chosen and (not any_of or any_of & chosen):
                return cls
        return None


def _path(*answer_ids: str) -> Path:
    """Build a path from answer ids alone, looking each task up; validated."""
    steps = [(GZ2_TREE.get_answer(a)[0].id, a) for a in answer_ids]
    return GZ2_TREE.validate(steps)


_FACE_ON = ("t01_features", "t02_no")


def _galaxy10() -> LabelSet:
    defs = [
        ("Disturbed", _path(*_FACE_ON, "t03_no_bar", "t04_no_spiral", "t05_just_noticeable", "t06_yes",
                            "t08_disturbed"), "Asymmetric and clumpy, pulled out of shape"),
        ("Merging", _path(*_FACE_ON, "t03_no_bar", "t04_no_spiral", "t05_obvious", "t06_yes", "t08_merger"),
         "Two galaxies with tidal features"),
        ("Round Smooth", _path("t01_smooth", "t07_round", "t06_no"), "A smooth round glow"),
        ("In-between Round Smooth", _path("t01_smooth", "t07_in_between", "t06_no"), "A smooth oval"),
        ("Cigar Shaped Smooth", _path("t01_smooth", "t07_cigar", "t06_no"), "A smooth elongated glow"),
        ("Barred Spiral", _path(*_FACE_ON, "t03_bar", "t04_spiral", "t10_medium", "t11_2", "t05_just_noticeable",
                                "t06_no"), "Arms starting from the ends of a bar"),
        ("Unbarred Tight Spiral", _path(*_FACE_ON, "t03_no_bar", "t04_spiral", "t10_tight", "t11_2", "t05_obvious",
                                        "t06_no"), "Tightly wound arms, no bar"),
        ("Unbarred Loose Spiral", _path(*_FACE_ON, "t03_no_bar", "t04_spiral", "t10_loose", "t11_2",
                                        "t05_just_noticeable", "t06_no"), "Open arms, no bar"),
        ("Edge-on without Bulge", _path("t01_features", "t02_yes", "t09_no_bulge", "t06_no"), "A thin needle"),
        ("Edge-on with Bulge", _path("t01_features", "t02_yes", "t09_rounded", "t06_no"),
         "A thin disk with a central bulge"),
    ]
    classes = tuple(GalaxyClass(i, n, _slug(n), "galaxy10", p, d) for i, (n, p, d) in enumerate(defs))
    S = frozenset
    rules = (
        # Odd features decide first: they are what a volunteer reports last but means most.
        (S({"t08_merger"}), S(), 1),
        (S(), S({"t08_disturbed", "t08_irregular"}), 0),
        (S({"t07_round"}), S(), 2),
        (S({"t07_in_between"}), S(), 3),
        (S({"t07_cigar"}), S(), 4),
        (S({"t09_no_bulge"}), S(), 8),
        (S({"t02_yes"}), S({"t09_rounded", "t09_boxy"}), 9),
        (S({"t03_bar", "t04_spiral"}), S(), 5),
        (S({"t03_no_bar", "t04_spiral", "t10_tight"}), S(), 6),
        (S({"t03_no_bar", "t04_spiral", "t10_loose"}), S(), 7),
    )
    return LabelSet("galaxy10", classes, rules)


def _galaxy_mnist() -> LabelSet:
    defs = [
        ("smooth_round", _path("t01_smooth", "t07_round", "t06_no"), "A smooth round or oval glow"),
        ("smooth_cigar", _path("t01_smooth", "t07_cigar", "t06_no"), "A smooth elongated glow"),
        ("edge_on_disk", _path("t01_features", "t02_yes", "t09_no_bulge", "t06_no"), "A disk seen from the side"),
        ("unbarred_spiral", _path(*_FACE_ON, "t03_no_bar", "t04_spiral", "t10_medium", "t11_2",
                                  "t05_just_noticeable", "t06_no"), "Spiral arms without a bar"),
    ]
    classes = tuple(GalaxyClass(i, n, n, "galaxy_mnist", p, d) for i, (n, p, d) in enumerate(defs))
    S = frozenset
    rules = (
        (S({"t01_smooth"}), S({"t07_round", "t07_in_between"}), 0),
        (S({"t07_cigar"}), S(), 1),
        (S({"t02_yes"}), S(), 2),
        (S({"t03_no_bar", "t04_spiral"}), S(), 3),
    )
    return LabelSet("galaxy_mnist", classes, rules)


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name.lower()).replace("__", "_").strip("_")


GALAXY10 = _galaxy10()
GALAXY_MNIST = _galaxy_mnist()
LABEL_SETS: dict[str, LabelSet] = {ls.name: ls for ls in (GALAXY10, GALAXY_MNIST)}


def get_label_set(name: str) -> LabelSet:
    """``get_label_set("galaxy10")`` → :data:`GALAXY10`."""
    try:
        return LABEL_SETS[name]
    except KeyError:
        raise KeyError(f"unknown label set {name!r}; known: {', '.join(LABEL_SETS)}") from None
