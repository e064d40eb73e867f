#!/usr/bin/env bash
# Build .devdata/site.tar.xz: the Python packages a lent GPU machine lacks (its image has torch,
# torchvision, timm, h5py, pandas, scipy, typer, …, but not these), unpacked from PyPI wheels for its
# Python 3.12, debug symbols stripped and tests dropped so that the working tree still travels (64 MiB),
# plus the one FIRST file the pretraining pool reads. bench/pretrain_gpu.sh unpacks it there.
#   bash bench/devdata.sh            # here, once; .devdata/ is ignored by git
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WHL=$(mktemp -d)
SITE=$(mktemp -d)
trap 'rm -rf "$WHL" "$SITE"' EXIT
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d "$WHL" \
  galsim==2.8.5 LSSTDESC.Coord==1.3.1 astropy==8.0.2 pyerfa astropy-iers-data \
  open_clip_torch==3.3.0 ftfy==6.3.1 wcwidth lightly==1.6.0
for w in "$WHL"/*.whl; do unzip -q -o "$w" -d "$SITE"; done
# galsim's library carries 190 MB of debug symbols; its data files and headers are not used here
find "$SITE" -name "*.so" -exec strip --strip-debug {} \;
rm -rf "$SITE/galsim/share" "$SITE/galsim/include"
# tests of the packages, except astropy's (astropy imports astropy.tests at start-up)
find "$SITE" -type d -name tests -not -path "$SITE/astropy/*" -prune -exec rm -rf {} +
FIRST=$("$ROOT/.venv/bin/python" -c "from galaxalign.data import first_package_dir; print(first_package_dir())")
mkdir -p "$SITE/firstgalaxydata"
cp "$FIRST/__init__.py" "$FIRST/galaxy_data_h5.zip" "$SITE/firstgalaxydata/"
mkdir -p "$ROOT/.devdata"
XZ_OPT=-1 tar -C "$SITE" -cJf "$ROOT/.devdata/site.tar.xz.tmp" .
mv "$ROOT/.devdata/site.tar.xz.tmp" "$ROOT/.devdata/site.tar.xz"
ls -la "$ROOT/.devdata/site.tar.xz"
