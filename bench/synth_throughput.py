"""Synthetic survey throughput: galaxies per second by image size and worker count, in one run.

    python bench/synth_throughput.py            # prints a Markdown table
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from galaxalign.synth import synth_survey

CASES = [(64, 1, 300), (64, 2, 300), (128, 2, 120), (256, 2, 40)]  # (size, workers, n)
SKIES = ("classic", "diverse")


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for sky in SKIES:
            for size, workers, n in CASES:
                st = synth_survey(Path(tmp) / f"s{sky}{size}-{workers}.h5", n=n, size=size, seed=0, workers=workers,
                                  progress=False, sky=sky)
                rows.append((sky, size, workers, n, st["galaxies_per_second"]))
    base = rows[0][4]
    print("| sky | image size | workers | galaxies | galaxies / s | vs classic 64 px, 1 worker |")
    print("|---|---:|---:|---:|---:|---:|")
    for sky, size, workers, n, gps in rows:
        print(f"| {sky} | {size} | {workers} | {n} | {gps:.1f} | {gps / base:.2f}× |")


if __name__ == "__main__":
    main()
