"""Project files for the API tests: real footprints imported and partitioned once per session.

Each test module gets its own copy (tests write tokens, cases, rosters), built from a
session-wide original so that Kunming is imported and partitioned once.
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from api.auth import ROLES, create_token
from geo.people import roster as rosters
from geo.people.workers import read_roster
from geo.storage.store import Store, open_store
from geo.usecases import district as project
from geo.usecases import staffing
from geo.usecases.partition import partition_project

ROOT = Path(__file__).resolve().parents[1]


def _build(path: Path, source: Path, community_field: str | None) -> None:
    store = open_store(path, create=True)
    staffed_project(store, source, community_field=community_field, folder=path.parent)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def staffed_project(
    store: Store,
    source: Path,
    *,
    community_field: str | None,
    folder: Path,
    tag: str = "",
    phone_head: str = "1380000",
) -> None:
    """Import, partition and staff ``store``: two workers per community, with phone numbers, so
    that contacts can be checked (``tag`` goes into their ids and names, ``phone_head`` starts
    their 11-digit phones: workers of several projects told apart)."""
    project.import_buildings(
        store, source, options=project.ReadOptions(community_field=community_field)
    )
    partition_project(store, author="tests")
    communities = store.read_layer("communities", columns=["community"])["community"]
    digits = 11 - len(phone_head)
    rows = [
        {
            "工号": f"W{tag}{2 * i + k:03d}",
            "姓名": f"网格员{tag}{'-' if tag else ''}{2 * i + k}",
            "手机": f"{phone_head}{2 * i + k:0{digits}d}",
            "社区": name,
        }
        for i, name in enumerate(communities)
        for k in range(2)
    ]
    roster_csv = folder / f"{tag or 'project'}.roster.csv"
    pd.DataFrame(rows).to_csv(roster_csv, index=False)
    rosters.import_roster(store, read_roster(roster_csv, communities=communities))
    staffing.fill_workers(store, author="tests")
    store.engine.dispose()


def project_copy(
    tmp_path_factory, source: Path, *, name: str, community_field: str | None = None
) -> Path:
    """A fresh copy of ``source`` imported, partitioned and staffed (built once per session)."""
    original = tmp_path_factory.getbasetemp() / f"api-{name}" / "project.gpkg"
    if not original.exists():
        original.parent.mkdir(parents=True, exist_ok=True)
        _build(original, source, community_field)
    copy = tmp_path_factory.mktemp(f"api-{name}") / "project.gpkg"
    shutil.copyfile(original, copy)
    return copy


def cli_in_english(*args: object):
    """Run ``gridmap ARGS`` in-process with English messages (typer's CliRunner result)."""
    from typer.testing import CliRunner

    from api.cli import app

    return CliRunner().invoke(app, [str(a) for a in args], env={"GRIDMAP_LANG": "en"})


def role_tokens(db: Path) -> dict[str, str]:
    """One token per role, named after the role."""
    store = open_store(db)
    tokens = {role: create_token(store, f"test-{role}", role) for role in ROLES}
    store.engine.dispose()
    return tokens


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def uvicorn_server(db: Path, *, timeout: float = 240, **env: str) -> Iterator[str]:
    """The app on ``db`` in a uvicorn subprocess; yields its base URL once ``/health`` answers.

    A subprocess, not a thread: GDAL and the browser hold the GIL or need a real socket. ``env``
    adds ``GRIDMAP_*`` settings. ``timeout`` is generous because a busy shared machine can be
    slow to start it; the server's output is kept in a file (a pipe nobody reads could fill up
    and stall it) and shown if it does not start.
    """
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "uvicorn", "--factory", "api.app:create_app"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    with tempfile.TemporaryFile() as output:
        server = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, "GRIDMAP_DB": str(db), **env},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for_health(base, server, output, timeout=timeout)
            yield base
        finally:
            server.terminate()
            server.wait(timeout=30)


def wait_for_health(base: str, server: subprocess.Popen, output, *, timeout: float) -> None:
    """Return once ``base``/health answers; the server's output if it stops or never answers."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2):
                return
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                output.seek(0)
                raise RuntimeError(output.read().decode()[-2000:]) from None
            time.sleep(0.3)
