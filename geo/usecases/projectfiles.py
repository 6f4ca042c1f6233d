"""The files a GeoPackage project is on disk: the ``.gpkg`` and the ``-wal``/``-shm`` beside it.

The CLI must never write a command's output over any of them, and removes all of them when a
command that created the project fails; what they are is the GeoPackage store's knowledge, kept
here so that api/ names no file format. A server URL (PostGIS) names no files.
"""

from __future__ import annotations

import os
from pathlib import Path

from geo.defaults import DEFAULT_PATH, is_server_url

#: what SQLite keeps beside the file in WAL mode
_SIDE_FILES = ("", "-wal", "-shm")


def project_files(db: Path | str | os.PathLike[str] | None) -> list[Path]:
    """The project file and the -wal/-shm files SQLite keeps beside it (none for a server)."""
    text = str(db or DEFAULT_PATH)
    if is_server_url(text):
        return []
    project_file = Path(text.removeprefix("sqlite:///"))
    return [Path(f"{project_file}{suffix}") for suffix in _SIDE_FILES]


def remove_project_files(db: Path | str | os.PathLike[str]) -> None:
    """Delete the project file at ``db`` with its -wal/-shm (a project a failed command made)."""
    for path in project_files(db):
        path.unlink(missing_ok=True)


def project_label(db: Path | str | os.PathLike[str] | None) -> str:
    """What to call the project in an answer: the file's name, or a server's database name
    (never its user, password or host)."""
    text = str(db or DEFAULT_PATH)
    if is_server_url(text):
        return text.rsplit("/", 1)[-1].split("?", 1)[0]
    return Path(text.removeprefix("sqlite:///")).name
