"""The errors shared across steps, so that no step imports another only to catch its exception.

- :class:`RunError`: a run that cannot start or resume (bad settings, nothing to do, a checkpoint from other
  settings, a run already going). Its message says what to do and is shown to the user as it is.
"""

from __future__ import annotations

__all__ = ["RunError"]


class RunError(Exception):
    """A run that cannot start (bad settings, nothing to do, a checkpoint from other settings, a run already going)."""
