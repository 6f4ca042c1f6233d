"""Where gridmap's shipped reference tables are: the incident catalogue, code maps, feed mappings.

They are data, not code, and live in the repository's top-level ``data/`` folder; the wheel
carries the same files as package data inside ``geo`` (``geo/reference/``, see ``setup.py``).
:func:`reference_file` is the one place that finds them, so an installed gridmap reads its own
copy wherever it runs, and a checkout (or an editable install) reads ``data/``.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

__all__ = [
    "MAPPINGS",
    "reference_dir",
    "reference_file",
    "shipped_mapping",
    "shipped_mapping_names",
]

#: the folder of saved incident-feed column mappings (``--mapping NAME`` finds NAME.json there)
MAPPINGS = "incident_mappings"
_CHECKOUT = Path(__file__).resolve().parents[1] / "data"


def reference_dir() -> Path:
    """The folder holding the reference tables: the package's own copy, else the checkout's."""
    packaged = Path(str(files("geo") / "reference"))
    return packaged if packaged.is_dir() else _CHECKOUT


def reference_file(name: str) -> Path:
    """The shipped table ``name`` (e.g. ``"incident_categories.csv"``).

    Examples
    --------
    >>> reference_file("incident_categories.csv").name
    'incident_categories.csv'
    """
    return reference_dir() / name


def shipped_mapping(name: str) -> Path | None:
    """The saved column mapping called ``name`` (``"boston311"``), or None if none is shipped.

    Examples
    --------
    >>> shipped_mapping("boston311").name
    'boston311.json'
    >>> shipped_mapping("../secrets") is None
    True
    """
    folder = reference_dir() / MAPPINGS
    shipped = {path.stem: path for path in folder.glob("*.json")}
    return shipped.get(name.removesuffix(".json"))


def shipped_mapping_names() -> list[str]:
    """The names of the shipped column mappings, for messages."""
    return sorted(path.stem for path in (reference_dir() / MAPPINGS).glob("*.json"))
