"""Errors and warnings that the engine raises for its users.

Every message is a full sentence that says what is wrong, where (file, column,
row or ID) and what to do. The command line turns :class:`LMMInputError` into
exit status 2 and the dashboard into a notification.
"""

from __future__ import annotations

__all__ = ["LMMInputError", "LMMWarning"]


class LMMInputError(ValueError):
    """Input that the engine cannot use: bad files, shapes or values."""


class LMMWarning(UserWarning):
    """Something the user should know about but that does not stop the fit."""
