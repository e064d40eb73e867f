"""Draw a contact sheet: per Galaxy10 class, its symbol and a few synthetic galaxies.

    python bench/contact_sheet.py [--survey workspace/surveys/demo.h5] [--per-class 7]
    python bench/contact_sheet.py --sky diverse --per-class 10     # docs/sky_contact_sheet.png
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from galaxalign.data import load_survey
from galaxalign.symbols import render_symbol
from galaxalign.synth import synth_survey

ROOT = Path(__file__).resolve().parent.parent


def contact_sheet(survey_path: Path, per_class: int = 7, cell: int = 96, label_w: int = 250) -> Image.Image:
    s = load_survey(survey_path)
    ls = s.label_set
    rows = len(s.class_names)
    sheet = Image.new("RGB", (label_w + cell * (per_class + 1) + 8, rows * (cell + 4) + 4), (18, 18, 22))
    draw = ImageDraw.Draw(sheet)
    try:
        font = ImageFont.truetype("DejaVuSans.ttf", 15)
    except OSError:
        font = ImageFont.load_default()
    for c in range(rows):
        y = 4 + c * (cell + 4)
        draw.text((8, y + cell // 2 - 9), f"{c} {s.class_names[c]}", fill=(230, 230, 230), font=font)
        sheet.paste(render_symbol(ls[c].symbol, cell), (label_w, y))
        idx = np.flatnonzero(s.labels == c)[:per_class]
        for k, img in enumerate(s.images(idx)):
            sheet.paste(Image.fromarray(img).resize((cell, cell), Image.BICUBIC), (label_w + 8 + cell * (k + 1), y))
    return sheet


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--survey", type=Path, default=None)
    ap.add_argument("--per-class", type=int, default=7)
    ap.add_argument("--sky", choices=("classic", "diverse"), default="classic")
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    a.out = a.out or ROOT / "docs" / ("contact_sheet.png" if a.sky == "classic" else "sky_contact_sheet.png")
    survey = a.survey
    if survey is None:
        survey = ROOT / "bench" / "out" / f"contact-{a.sky}.h5"
        if not survey.exists():
            synth_survey(survey, n=400, size=64, seed=7, sky=a.sky)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    contact_sheet(survey, a.per_class).save(a.out, optimize=True)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
