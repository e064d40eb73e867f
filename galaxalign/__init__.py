"""galaxalign: GalaxAlign (CLIP aligned to galaxy images, Galaxy Zoo symbols and text) and the
citizen-science annotation tool around it.

The package never imports Streamlit; only ``app/`` does.
"""
from .errors import GalaxalignError

__version__ = "0.1.0"
__all__ = ["GalaxalignError", "__version__"]
