"""The small exception classes of gridmap.

Every error a user can cause is a :class:`GridmapError`. The classes say *what* went wrong, never
how a caller reports it: the CLI's one class -> exit-code map (:mod:`api.cli.common`) turns one
into a one-line message and an exit code, the API's one class -> status map (:mod:`api.errors`)
into ``application/problem+json``. Nothing else in the code base catches broadly.
"""

from __future__ import annotations


class GridmapError(Exception):
    """Base class: a problem a person can act on. ``str(error)`` is the message."""

    def __init__(self, message: str, *, hint: str | None = None, zh: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        #: the same message in Chinese, shown first where the user reads zh-CN
        self.zh = zh

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class InputError(GridmapError):
    """The input (a file, a field, a number, a coordinate) is wrong."""


class CRSError(InputError):
    """The coordinate reference system is missing, unknown, or does not fit the data."""


class CoordinateError(InputError):
    """A coordinate that cannot be right: out of range, lat/lon swapped, far from the district."""


class NotFound(GridmapError):
    """A named thing (plan, grid, building, incident, worker, layer) does not exist."""


class Conflict(GridmapError):
    """The request conflicts with the current state (a stale revision, a duplicate id)."""


class Forbidden(GridmapError):
    """The caller's role does not allow this."""


class Unauthorized(GridmapError):
    """No or an unknown token."""


class TooLarge(InputError):
    """An upload or a batch above the configured limit."""


class StoreError(GridmapError):
    """The project file cannot be opened or is not a gridmap project."""


class InternalError(GridmapError):
    """gridmap cannot finish the task for a reason that is not in what the caller sent: a bug
    (cells that do not clean into a coverage) or a part missing from the installation (an
    offline map's vendored scripts)."""
