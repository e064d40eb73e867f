"""The one exception family the CLI and the app turn into a one-line message.

Every error a user can cause — a corrupt survey, an unknown symbol, a bad answer path, a duplicate
vote — derives from :class:`GalaxalignError`, and its message names the thing and the problem:
``"x.h5: label 12 at index 3 is out of range 0–9 (1 such labels)"``.
"""
from __future__ import annotations


class GalaxalignError(Exception):
    """Base class of user-facing errors: ``str(err)`` is a complete one-line message."""


def os_error_message(e: OSError) -> str:
    """One line for a file-system failure: the path and the reason (``"x.csv: Permission denied"``)."""
    return f"{e.filename or 'file system'}: {e.strerror or e.__class__.__name__}"
