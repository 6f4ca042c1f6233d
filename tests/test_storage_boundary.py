"""The project's storage is one interface (issue #18): no SQLite or GeoPackage outside geo/storage.

Every use case runs on a GeoPackage and on PostGIS because nothing outside ``geo/storage`` knows
which one it holds: no ``gpkg_*`` metadata table, no ``PRAGMA``, no ``sqlite_master``, no
SQLite ``?`` placeholders in hand-written SQL (named binds or SQLAlchemy Core instead), no
``store.path`` (a server has none), no ``sqlite3``. Layer metadata (a layer's last change, its
extent, its description) goes through a store method both backends implement. Read from the
source with :mod:`ast`, so docstrings may still explain what a GeoPackage does.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: files that are about a file format themselves: the storage, and copies of a file or of tiles
ALLOWED = {
    "geo/usecases/backup.py": "SQLite's online backup API copies a GeoPackage file",
    "geo/usecases/projectfiles.py": "names the -wal/-shm files beside a GeoPackage",
    "geo/exchange/mbtiles.py": "reads an .mbtiles basemap (an SQLite file), not the project",
}
SQLITE_ONLY = re.compile(r"\bgpkg_\w+|\bPRAGMA\b|\bsqlite_(master|sequence|schema)\b")


def _sources() -> list[Path]:
    files = [p for d in ("geo", "api", "maps") for p in (ROOT / d).rglob("*.py")]
    return [
        p
        for p in files
        if not p.relative_to(ROOT).as_posix().startswith("geo/storage/")
        and p.relative_to(ROOT).as_posix() not in ALLOWED
    ]


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        first = body[0] if isinstance(body, list) and body else None
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
            found.add(id(first.value))
    return found


def _offences(tree: ast.AST) -> list[str]:
    docstrings = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) not in docstrings and SQLITE_ONLY.search(node.value):
                found.append(f"line {node.lineno}: {SQLITE_ONLY.search(node.value).group()}")
        elif isinstance(node, ast.Attribute) and node.attr == "path":
            if isinstance(node.value, ast.Name) and node.value.id == "store":
                found.append(f"line {node.lineno}: store.path")
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "exec_driver_sql":
            if node.args and "?" in ast.unparse(node.args[0]):
                found.append(f"line {node.lineno}: a ? placeholder")
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
            if "sqlite3" in names:
                found.append(f"line {node.lineno}: import sqlite3")
    return found


def test_nothing_outside_geo_storage_speaks_sqlite_or_geopackage():
    offenders = {}
    for path in _sources():
        found = _offences(ast.parse(path.read_text(encoding="utf-8")))
        if found:
            offenders[path.relative_to(ROOT).as_posix()] = found
    assert not offenders, "use a Store method or SQLAlchemy Core: " + repr(offenders)


def test_the_check_finds_what_it_looks_for():
    code = (
        "def f(store, conn):\n"
        '    """PRAGMA in a docstring is fine."""\n'
        "    conn.exec_driver_sql('UPDATE t SET a = ? WHERE b = ?', rows)\n"
        "    conn.execute(text('SELECT last_change FROM gpkg_contents'))\n"
        "    return store.path\n"
    )
    found = {line.split(": ")[1] for line in _offences(ast.parse(code))}
    assert found == {"a ? placeholder", "gpkg_contents", "store.path"}
