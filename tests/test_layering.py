"""Imports point api -> maps -> geo, never back (the design card's one rule of layout)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {"geo": {"maps", "api"}, "maps": {"api"}}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_lower_layers_never_import_upper_ones(package):
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_packages(path) & FORBIDDEN[package])
        for path in (ROOT / package).rglob("*.py")
    }
    offenders = {name: bad for name, bad in offenders.items() if bad}
    assert not offenders
    assert list((ROOT / package).rglob("*.py"))  # the package is there and was read


def listed_strings(path: Path) -> set[str]:
    """The strings written inside tuple, list and set literals of a module: where a rule would be
    spelt out as data (a status list, a column list), as opposed to a dict of display strings."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        element.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Tuple | ast.List | ast.Set)
        for element in node.elts
        if isinstance(element, ast.Constant) and isinstance(element.value, str)
    }


def test_maps_list_no_incident_status_class_or_contact_column_of_their_own():
    from geo.incidents.catalogue import incident_classes
    from geo.incidents.workflow import STATUSES
    from geo.people.workers import CONTACT_COLUMNS

    rules = {
        "incident statuses": {*STATUSES, *STATUSES.values()},
        "incident classes": set(incident_classes()),
        "contact columns": set(CONTACT_COLUMNS),
    }
    modules = sorted((ROOT / "maps").glob("*.py"))
    offenders = {
        f"{path.relative_to(ROOT)}: {rule}": sorted(listed_strings(path) & names)
        for path in modules
        for rule, names in rules.items()
        if listed_strings(path) & names
    }
    assert not offenders, "maps/ renders what geo/ decides (geo.incidents, geo.people.workers)"
    assert len(modules) > 10


def class_attributes(path: Path) -> dict[str, set[str]]:
    """The names each class of a module assigns in its body (``status = 404``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.name: {
            target.id
            for statement in node.body
            if isinstance(statement, ast.Assign)
            for target in statement.targets
            if isinstance(target, ast.Name)
        }
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
    }


def test_errors_say_what_went_wrong_and_leave_statuses_and_exit_codes_to_their_callers():
    # one class -> status map in api/errors.py, one class -> exit-code map in the CLI
    from api.cli.common import EXIT_CODES
    from api.errors import STATUS_CODES
    from geo import errors

    offenders = {
        f"{path.relative_to(ROOT)}:{name}": sorted(assigned & {"status", "exit_code"})
        for package in ("geo", "maps")
        for path in (ROOT / package).rglob("*.py")
        for name, assigned in class_attributes(path).items()
        if assigned & {"status", "exit_code"}
    }
    assert not offenders
    defined = {
        kind
        for kind in vars(errors).values()
        if isinstance(kind, type) and issubclass(kind, errors.GridmapError)
    }
    for mapping in (STATUS_CODES, EXIT_CODES):
        kinds = list(mapping)
        assert set(kinds) <= defined
        assert kinds[-1] is errors.GridmapError  # every error has a status and an exit code
        # most specific first: a class never comes after one of its bases
        assert all(
            not issubclass(later, kind) for i, kind in enumerate(kinds) for later in kinds[i + 1 :]
        )


#: SQL written out as text: a statement's keywords in their order (the store writes SQL, not
#: api/ or maps/)
SQL_TEXT = re.compile(
    r"\bSELECT\b[\s\S]+\bFROM\b|\bINSERT\s+(OR\s+\w+\s+)?INTO\b|\bUPDATE\b[\s\S]+\bSET\b"
    r"|\bDELETE\s+FROM\b|\bPRAGMA\s+\w+|\bCREATE\s+(TABLE|INDEX)\b"
)
#: what api/ and maps/ never import: a database driver or the GeoPackage codec
STORAGE_MODULES = {"sqlalchemy", "sqlite3", "psycopg", "geo.storage.gpkg"}


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports (full dotted names, ``from`` imports with their names, and the
    modules the CLI binds with ``lazy("...")``), wherever in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "id", None) == "lazy"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            names.add(str(node.args[0].value))
    return names


def _under(name: str, modules: set[str]) -> bool:
    return any(name == module or name.startswith(module + ".") for module in modules)


@pytest.mark.parametrize("package", ["api", "maps"])
def test_api_and_maps_never_see_a_database_driver_a_file_format_or_sql(package):
    forbidden = STORAGE_MODULES | ({"geo.storage"} if package == "maps" else set())
    files = sorted((ROOT / package).rglob("*.py"))
    imports = {
        str(path.relative_to(ROOT)): sorted(
            name for name in imported_modules(path) if _under(name, forbidden)
        )
        for path in files
    }
    assert not {name: bad for name, bad in imports.items() if bad}
    sql = {
        f"{path.relative_to(ROOT)}:{node.lineno}": node.value[:80]
        for path in files
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and SQL_TEXT.search(node.value)
    }
    assert not sql, "SQL belongs behind the store (geo/)"
    assert len(files) > 10


#: geo's rooms and the rooms each may not import (README, Development). Algorithms (grids,
#: buildings) are functions on frames and never open the store; the store knows tables, not the
#: domain; use cases (usecases/, province/) are the top of geo, so nothing below imports them.
ROOMS_BELOW = {
    "grids": {"buildings", "exchange", "incidents", "locate", "people", "plans", "storage"},
    "buildings": {"exchange", "grids", "incidents", "locate", "people", "plans", "storage"},
    "storage": {"buildings", "exchange", "grids", "incidents", "locate", "people", "plans"},
    "locate": {"incidents", "people", "plans"},
    "incidents": {"people", "plans"},
    "people": {"plans"},
    "plans": set(),
    "exchange": set(),
}
USE_CASE_ROOMS = {"usecases", "province"}


@pytest.mark.parametrize("room", sorted(ROOMS_BELOW))
def test_each_room_of_geo_imports_only_the_rooms_below_it(room):
    forbidden = {f"geo.{name}" for name in ROOMS_BELOW[room] | USE_CASE_ROOMS}
    files = sorted((ROOT / "geo" / room).rglob("*.py"))
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            name for name in imported_modules(path) if _under(name, forbidden)
        )
        for path in files
    }
    assert not {name: bad for name, bad in offenders.items() if bad}
    assert len(files) > 1


def test_every_room_of_geo_is_listed_and_its_init_imports_nothing():
    # a room's __init__ is its docstring only: `gridmap --help` must not import a room's modules
    rooms = {path.parent.name for path in (ROOT / "geo").glob("*/__init__.py")}
    assert rooms == set(ROOMS_BELOW) | USE_CASE_ROOMS
    for room in rooms:
        tree = ast.parse((ROOT / "geo" / room / "__init__.py").read_text(encoding="utf-8"))
        assert not [node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)]
