"""``gridmap serve`` and ``gridmap token ...``: the HTTP service (filled in by the API work)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the service commands to the ``gridmap`` app."""
