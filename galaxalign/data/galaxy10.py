"""Reader: a Galaxy10 DECaLS HDF5 file (``images``, ``ans``, optional ``ra``, ``dec``, ``redshift``,
``pxscale``, ``id_str``, ``split``) — our synthetic surveys and the writer use the same schema."""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from ..taxonomy import GALAXY10, LABEL_SETS, LabelSet
from .checks import check_images, check_labels, check_split, check_unique_ids, h5_reader, label_set_for, open_h5
from .survey import Survey, UNLABELLED, error


def load_galaxy10_h5(path: Path) -> Survey:
    with open_h5(path) as f:
        if "images" not in f:
            raise error(path, f"missing key 'images' (keys: {', '.join(f.keys()) or 'none'})")
        shape = check_images(path, f["images"])
        n = f["images"].shape[0]
        label_key = "ans" if "ans" in f else "labels" if "labels" in f else None
        names = GALAXY10.class_names
        label_set: LabelSet | None = GALAXY10
        if "class_names" in f.attrs:
            try:
                names = json.loads(f.attrs["class_names"])
            except (json.JSONDecodeError, TypeError):
                raise error(path, "attribute 'class_names' is not a JSON list of names") from None
            if not isinstance(names, list) or not names or not all(isinstance(x, str) for x in names):
                raise error(path, "attribute 'class_names' must be a JSON list of class names")
            label_set = label_set_for(names)
            named = f.attrs.get("label_set")
            if isinstance(named, bytes):
                named = named.decode()
            if isinstance(named, str) and named in LABEL_SETS and LABEL_SETS[named].class_names == names:
                label_set = LABEL_SETS[named]
        if label_key is None:
            labels = np.full(n, UNLABELLED)
        else:
            if not isinstance(f[label_key], h5py.Dataset):
                raise error(path, f"'{label_key}' is a group, not an array of class indices")
            labels = check_labels(path, f[label_key][()], len(names), n, label_key)
        cat = {"label": labels}
        for k in ("ra", "dec", "redshift", "pxscale"):
            if k in f:
                v = f[k][()]
                if v.shape != (n,):
                    raise error(path, f"'{k}' has shape {v.shape}; expected ({n},)")
                cat[k] = v.astype(float)
        for k in ("split", "source"):
            if k in f:
                v = np.asarray([x.decode() if isinstance(x, bytes) else str(x) for x in f[k][()]])
                if v.shape != (n,):
                    raise error(path, f"'{k}' has shape {v.shape}; expected ({n},)")
                cat[k] = v
        if "split" in cat:
            check_split(path, cat["split"])
        if "id_str" in f:
            ids = [x.decode() if isinstance(x, bytes) else str(x) for x in f["id_str"][()]]
        else:
            ids = [f"{path.stem}-{i:06d}" for i in range(n)]
    df = pd.DataFrame({"id_str": ids, **cat})
    check_unique_ids(path, df)
    return Survey(path, "galaxy10_h5", names, df, h5_reader(path, "images"), shape, label_set)
