"""Reader: GalaxyMNIST (``train_dataset.hdf5`` / ``test_dataset.hdf5``), one file or both."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..taxonomy import GALAXY_MNIST
from .checks import check_images, check_labels, h5_reader, open_h5
from .survey import Survey, error


def load_galaxy_mnist(paths: list[Path], root: Path) -> Survey:
    offsets, labels, ids, split, shape = [], [], [], [], None
    total = 0
    for p in paths:
        with open_h5(p) as f:
            for key in ("images", "labels"):
                if key not in f:
                    raise error(p, f"missing key '{key}' (keys: {', '.join(f.keys()) or 'none'})")
            s = check_images(p, f["images"], rgb_only=True)
            if shape is not None and s != shape:
                raise error(p, f"image shape {s} differs from {shape} in {paths[0].name}")
            shape = s
            n = f["images"].shape[0]
            labels.append(check_labels(p, f["labels"][()], len(GALAXY_MNIST), n, "labels"))
        part = "train" if "train" in p.name else "test"
        ids += [f"gzmnist-{part}-{i:05d}" for i in range(n)]
        split += [part] * n
        offsets.append((p, total))
        total += n
    df = pd.DataFrame({"id_str": ids, "label": np.concatenate(labels), "split": split})
    return Survey(root, "galaxy_mnist", GALAXY_MNIST.class_names, df, h5_reader(paths[0], "images", offsets),
                  shape, GALAXY_MNIST)
