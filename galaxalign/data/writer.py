"""Writing a survey as a Galaxy10-schema HDF5 file, a chunk at a time."""
from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np
from tqdm.auto import tqdm

from ..fsutil import atomic_path
from .survey import Survey


def write_survey_h5(survey: Survey, out: str | os.PathLike, progress: bool = False, chunk: int = 512) -> Path:
    """Write any survey's raw images and catalog as one compressed HDF5 in our schema (``images``,
    ``ans``, ``ra``, ``dec``, ``split``, ``source``, ``id_str``; attributes ``class_names`` and
    ``label_set``), streamed ``chunk`` galaxies at a time, to a temporary name then renamed."""
    out = Path(out)
    n = len(survey)
    first = survey.raw_images([0])
    with atomic_path(out) as tmp, h5py.File(tmp, "w") as f:
        ds = f.create_dataset("images", shape=(n, *first.shape[1:]), dtype=first.dtype,
                              chunks=(1, *first.shape[1:]), compression="gzip", compression_opts=4, shuffle=True)
        for s in tqdm(range(0, n, chunk), desc=f"writing {out.name}", unit="chunk", disable=not progress):
            ds[s:s + chunk] = survey.raw_images(np.arange(s, min(n, s + chunk)))
        cat = survey.catalog
        f["ans"] = cat["label"].to_numpy(np.int64)
        for k in ("ra", "dec", "redshift"):
            if k in cat:
                f[k] = cat[k].to_numpy(float)
        for k in ("split", "source", "id_str"):
            if k in cat:
                f[k] = np.asarray(cat[k].astype(str).to_numpy(), dtype=h5py.string_dtype())
        f.attrs["class_names"] = json.dumps(list(survey.class_names))
        if survey.label_set is not None:
            f.attrs["label_set"] = survey.label_set.name
    return out
