"""``gridmap plan move|swap|merge|split|lock|...``: a planner's edits (filled in by the editing work)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the editing commands to the ``gridmap plan`` app."""
