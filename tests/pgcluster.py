"""A throw-away PostgreSQL + PostGIS cluster for the tests: no mocked database, no server to set up.

The tests run the PostGIS store against a real server: :func:`throwaway_cluster` runs Debian's
``initdb`` into a temporary directory, starts it with ``pg_ctl`` on a Unix socket only (a free
port number names the socket; nothing listens on TCP), creates a database with ``CREATE
EXTENSION postgis`` and yields its URL; on leaving, it stops the server and deletes the directory.
A session killed before its clean-up leaves its cluster running; the next session stops and
deletes it (a cluster whose owning process is gone). One cluster serves a whole test session (about two seconds to start); each test that wants an
empty database of its own copies the template with :func:`fresh_database` (milliseconds).

``initdb`` refuses to run as root, so as root the server runs as the ``postgres`` system user
that Debian's package creates, in a directory that user owns. Durability is switched off
(``fsync=off``): the cluster dies with the session anyway.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

INSTALL_HINT = (
    "PostgreSQL 15 with PostGIS 3 is needed for the PostGIS tests: "
    "apt-get install postgresql postgresql-15-postgis-3"
)
#: the database every test copies (it holds the postgis extension)
TEMPLATE = "gridmap_template"
_TUNING = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c listen_addresses=''"
_PREFIX = "gridmap-pg-"
_copies = itertools.count(1)


class ClusterUnavailable(RuntimeError):
    """The PostgreSQL binaries or the PostGIS extension are not installed."""


def binaries() -> Path:
    """The folder of Debian's PostgreSQL server binaries (the newest installed version)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if found:
        return found[-1].parent
    on_path = shutil.which("initdb")
    if on_path is None:
        raise ClusterUnavailable(INSTALL_HINT)
    return Path(on_path).resolve().parent


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[str]:
    """Start a cluster in a temporary directory and yield the URL of its PostGIS database.

    Raises
    ------
    ClusterUnavailable
        When the server binaries or PostGIS are missing (the message says what to install).
    """
    bin_dir = binaries()
    as_root = os.geteuid() == 0
    _remove_abandoned(bin_dir, as_root)
    base = Path(tempfile.mkdtemp(prefix=_PREFIX))
    (base / "owner.pid").write_text(str(os.getpid()))
    if as_root:
        shutil.chown(base, user="postgres", group="postgres")
    data, sockets, port = base / "data", base, _free_port()
    try:
        _run(as_root, bin_dir / "initdb", "-D", str(data), "-U", "postgres", "--auth=trust",
             "--encoding=UTF8", "--no-locale", "--no-sync")  # fmt: skip
        options = f"{_TUNING} -c unix_socket_directories={sockets} -p {port}"
        _run(as_root, bin_dir / "pg_ctl", "-D", str(data), "-o", options, "-w",
             "-l", str(base / "server.log"), "start")  # fmt: skip
        try:
            _create_template(sockets, port)
            yield fresh_database(
                f"postgresql+psycopg://postgres@/{TEMPLATE}?host={sockets}&port={port}"
            )
        finally:
            _run(as_root, bin_dir / "pg_ctl", "-D", str(data), "-m", "immediate", "stop")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def fresh_database(url: str) -> str:
    """A new, empty PostGIS database on the cluster of ``url`` (a copy of the template), its URL."""
    import psycopg

    name = f"gridmap_{os.getpid()}_{next(_copies)}"
    host, port = _host_port(url)
    with psycopg.connect(host=host, port=port, user="postgres", dbname="postgres") as conn:
        conn.autocommit = True
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"')
    return f"postgresql+psycopg://postgres@/{name}?host={host}&port={port}"


def _remove_abandoned(bin_dir: Path, as_root: bool) -> None:
    """Stop and delete the clusters of test sessions that died without cleaning up (killed)."""
    for owner in Path(tempfile.gettempdir()).glob(f"{_PREFIX}*/owner.pid"):
        try:
            os.kill(int(owner.read_text()), 0)
            continue  # its session is still running
        except (ProcessLookupError, ValueError):
            pass
        except PermissionError:
            continue
        if (owner.parent / "data" / "postmaster.pid").exists():
            with contextlib.suppress(RuntimeError):
                _run(as_root, bin_dir / "pg_ctl", "-D", str(owner.parent / "data"),
                     "-m", "immediate", "stop")  # fmt: skip
        shutil.rmtree(owner.parent, ignore_errors=True)


def _create_template(host: Path, port: int) -> None:
    import psycopg

    with psycopg.connect(host=str(host), port=port, user="postgres", dbname="postgres") as conn:
        conn.autocommit = True
        conn.execute(f'CREATE DATABASE "{TEMPLATE}"')
    with psycopg.connect(host=str(host), port=port, user="postgres", dbname=TEMPLATE) as conn:
        try:
            conn.execute("CREATE EXTENSION postgis")
        except (psycopg.errors.FeatureNotSupported, psycopg.errors.UndefinedFile) as error:
            raise ClusterUnavailable(INSTALL_HINT) from error  # the extension is not installed


def _host_port(url: str) -> tuple[str, int]:
    query = dict(part.split("=", 1) for part in url.split("?", 1)[1].split("&"))
    return query["host"], int(query["port"])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _run(as_root: bool, program: Path, *args: str) -> None:
    command = [str(program), *args]
    if as_root:
        command = ["runuser", "-u", "postgres", "--", *command]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr.strip() or done.stdout}")
