"""Surveys: one :class:`Survey` type for every source of galaxy images, one reader per format behind a
registry (:mod:`galaxalign.data.readers`), and the writer.

``load_survey(path)`` recognises

- a Galaxy10 DECaLS HDF5 file (``images`` (N, H, W, 3) uint8, ``ans``, optional ``ra``, ``dec``,
  ``redshift``, ``pxscale``, ``id_str``) — our synthetic surveys use the same schema;
- GalaxyMNIST (``train_dataset.hdf5`` / ``test_dataset.hdf5``: ``images`` (N, 64, 64, 3), ``labels``), or a
  folder holding them (both files are concatenated, train first);
- a folder of images with a CSV catalog (``catalog.csv`` with ``id_str``, ``file_loc`` and an optional
  ``label`` column: a class name — matched to Galaxy10 or GalaxyMNIST names when they all fit — or an
  integer index, read as a Galaxy10 class unless ``class_names`` says otherwise);
- FITS cutouts: a folder of ``.fits`` files, each a (3, H, W) cube in g, r, z (astropy), combined to RGB
  with Lupton's asinh stretch, with an optional ``catalog.csv`` giving labels.

>>> s = load_survey("x.h5")                                   # doctest: +SKIP
>>> len(s), s.image_shape, s.class_names[:2]                  # doctest: +SKIP
(100, (64, 64, 3), ['Disturbed', 'Merging'])
>>> train, test = stratified_split(s.labels, seed=0)          # doctest: +SKIP

Images are read lazily. Any problem with the input raises :class:`SurveyError` naming the file and
what is wrong with it.

The package: :mod:`~galaxalign.data.survey` (the type), :mod:`~galaxalign.data.checks` (what every
reader checks), one module per format (:mod:`~galaxalign.data.galaxy10`,
:mod:`~galaxalign.data.galaxy_mnist`, :mod:`~galaxalign.data.folder`, :mod:`~galaxalign.data.first`),
:mod:`~galaxalign.data.readers` (which reader opens a path), :mod:`~galaxalign.data.writer` and
:mod:`~galaxalign.data.split`.
"""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..prepare import Preparation
from ..taxonomy import LabelSet, get_label_set
from .first import FIRST_CLASSES, first_package_dir
from .readers import READERS, Reader, open_survey_file
from .split import stratified_split, survey_summary
from .survey import IMAGE_SUFFIXES, MAX_IMAGE_SIDE, UNLABELLED, Survey, SurveyError, error
from .writer import write_survey_h5

__all__ = ["Survey", "SurveyError", "load_survey", "write_survey_h5", "stratified_split", "survey_summary",
           "first_package_dir", "READERS", "Reader", "UNLABELLED", "IMAGE_SUFFIXES", "MAX_IMAGE_SIDE",
           "FIRST_CLASSES"]


def load_survey(path: str | os.PathLike, class_names: list[str] | None = None,
                label_set: LabelSet | str | os.PathLike | None = None,
                preparation: Preparation | dict | None = None) -> Survey:
    """Open any supported survey (see the module docstring) as a :class:`Survey`.

    ``class_names`` names the classes of a folder survey whose catalog has integer labels;
    ``label_set`` (a :class:`LabelSet`, a built-in name or a YAML file) gives its classes their
    prompts and symbols — the survey's class names must be among its classes. ``preparation`` is how
    raw pixels become pictures (:mod:`galaxalign.prepare`); without one, 8-bit RGB images are used as
    they are and anything else gets a linear stretch to grey or RGB.
    Raises :class:`SurveyError` ("<file>: <problem>") for anything it cannot read.
    """
    survey = open_survey_file(Path(path), class_names)
    if label_set is not None:
        survey = _with_label_set(survey, label_set)
    if isinstance(preparation, dict):
        preparation = Preparation.from_dict(preparation)
    return survey.with_preparation(preparation)


def _with_label_set(survey: Survey, label_set) -> Survey:
    ls = label_set if isinstance(label_set, LabelSet) else get_label_set(str(label_set))
    if survey.label_set is ls:
        return survey
    lookup = {n.lower(): c.index for c in ls for n in (c.name, c.slug)}
    missing = [n for n in survey.class_names if n.lower() not in lookup]
    if missing:
        raise error(survey.path, f"class {missing[0]!r} is not in label set {ls.name!r} ({', '.join(ls.class_names)})")
    remap = np.array([lookup[n.lower()] for n in survey.class_names] or [0], np.int64)
    cat = survey.catalog.copy()
    lab = cat["label"].to_numpy(np.int64)
    cat["label"] = np.where(lab >= 0, remap[np.maximum(lab, 0)], UNLABELLED)
    return replace(survey, class_names=ls.class_names, catalog=cat, label_set=ls)
