"""The small exception classes of gridmap.

Every error a user can cause is a :class:`GridmapError`. The CLI turns one into a one-line
message and an exit code; the API turns one into ``application/problem+json`` with the status
below. Nothing else in the code base catches broadly.
"""

from __future__ import annotations


class GridmapError(Exception):
    """Base class: a problem a person can act on. ``str(error)`` is the message."""

    status = 400
    exit_code = 2

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

    status = 422


class CRSError(InputError):
    """The coordinate reference system is missing, unknown, or does not fit the data."""


class CoordinateError(InputError):
    """A coordinate that cannot be right: out of range, lat/lon swapped, far from the district."""


class NotFound(GridmapError):
    """A named thing (plan, grid, building, incident, worker, layer) does not exist."""

    status = 404
    exit_code = 3


class Conflict(GridmapError):
    """The request conflicts with the current state (a stale revision, a duplicate id)."""

    status = 409
    exit_code = 4


class Forbidden(GridmapError):
    """The caller's role does not allow this."""

    status = 403
    exit_code = 5


class Unauthorized(GridmapError):
    """No or an unknown token."""

    status = 401
    exit_code = 5


class TooLarge(InputError):
    """An upload or a batch above the configured limit."""

    status = 413


class StoreError(GridmapError):
    """The project file cannot be opened or is not a gridmap project."""

    status = 500
    exit_code = 6
