"""What every ``gridmap`` command shares: the project file option, output, errors and their exit
codes, progress.

Two safety rules live here so that every command keeps them the same way:

- data is never markup: both consoles are made with ``markup=False, emoji=False`` and tables hold
  :class:`rich.text.Text` cells, so a note like ``修正 [/] 北泰花园`` or ``[link=...]`` prints as
  typed instead of failing or turning into a hyperlink;
- a command never writes over the project file or its own input, and writes its file whole:
  :func:`output_file` refuses such a target and has the command write into a temporary folder
  beside it, renaming the result into place only when it is complete.
"""

from __future__ import annotations

import functools
import importlib
import os
import shutil
import sys
import tempfile
import types
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Column, Table
from rich.text import Text

from geo.defaults import DEFAULT_PATH, is_server_url
from geo.errors import (
    Conflict,
    Forbidden,
    GridmapError,
    InputError,
    InternalError,
    NotFound,
    StoreError,
    Unauthorized,
)
from geo.usecases.projectfiles import project_files, remove_project_files

if TYPE_CHECKING:
    from geo.storage.store import Store

#: ``--db``'s default, from a module that imports nothing heavy
DEFAULT_DB = str(DEFAULT_PATH)


def lazy(name: str) -> Any:
    """The module ``name``, imported when one of its attributes is first used.

    ``gridmap --help`` and ``--version`` must start in a tenth of a second, and geo and maps
    import geopandas, momepy, numba (five seconds): a command module binds the modules its
    commands run as ``plans = lazy("geo.plans.store")`` (type checkers see the real import under
    ``TYPE_CHECKING``), so each command imports what it uses and nothing else.
    """
    return _LazyModule(name)


class _LazyModule(types.ModuleType):
    def __getattr__(self, attribute: str) -> Any:
        return getattr(importlib.import_module(self.__name__), attribute)


# markup and emoji codes off: names, notes and paths are data and print exactly as stored
console = Console(
    stderr=True, soft_wrap=True, markup=False, emoji=False
)  # messages, tables and bars; stdout stays for data (JSON, CSV)
# tables keep their columns when piped (a log, CI) instead of folding to 80 characters
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160, markup=False, emoji=False)

# text, not a Path: a Path would make postgresql://host/db postgresql:/host/db
DbOption = Annotated[
    str,
    typer.Option(
        "--db",
        envvar="GRIDMAP_DB",
        help="项目文件 project: a GeoPackage file, or PostGIS postgresql://user@host/db",
        show_default=True,
    ),
]


_division: dict[str, str | None] = {"code": None}


def _remember_division(value: str | None) -> None:
    _division["code"] = value.strip() if value and value.strip() else None


def _division_template(
    division: Annotated[
        str | None,
        typer.Option(
            "--division",
            envvar="GRIDMAP_DIVISION",
            callback=_remember_division,
            expose_value=False,
            help="区划代码 division: the street (9 digits, e.g. 320581104) in a PostGIS database "
            "of many streets; county/city codes where a command rolls up",
        ),
    ] = None,
) -> None:
    """Never run: typer turns its one parameter into the ``--division`` option (see below)."""


def add_division_option(command: Any) -> None:
    """Give every command that takes ``--db`` the option ``--division`` too, which goes with it
    (the street of the database), without a parameter in each command's signature: the value
    is kept for :func:`store_for` and :func:`current_division`."""
    if hasattr(command, "commands"):
        for child in command.commands.values():
            add_division_option(child)
        return
    names = {param.name for param in command.params}
    if "db" in names and "division" not in names:
        command.params.append(_division_param())


@functools.cache
def _division_param() -> Any:
    """The click parameter typer makes of :func:`_division_template` (built once)."""
    template = typer.Typer()
    template.command()(_division_template)
    return typer.main.get_command(template).params[0]


def current_division() -> str | None:
    """The ``--division`` (or ``GRIDMAP_DIVISION``) of the command being run, as given."""
    return _division["code"]


AuthorOption = Annotated[
    str, typer.Option("--author", envvar="GRIDMAP_USER", help="操作人 who does this")
]


def language() -> str:
    """``zh`` (default) or ``en``, from GRIDMAP_LANG."""
    return "en" if os.environ.get("GRIDMAP_LANG", "zh").lower().startswith("en") else "zh"


def say(zh: str, en: str) -> str:
    """Pick the user's language."""
    return en if language() == "en" else zh


def store_for(db: Path | str, *, create: bool = False) -> Store:
    """The project the command works on (``--db``, ``--division``), checked against the token
    it runs with (``GRIDMAP_TOKEN``, :mod:`api.cli.scope`)."""
    from api.cli.scope import check_new_street, check_store
    from geo.storage.store import open_store

    street = current_division()
    if create and street and is_server(db):
        check_new_street(db, street)
    store = open_store(db or DEFAULT_PATH, create=create, division=street)
    check_store(store, db or DEFAULT_PATH)
    return store


def is_server(db: Path | str) -> bool:
    """Whether ``db`` names a PostGIS database rather than a GeoPackage file."""
    return is_server_url(db)


@contextmanager
def new_project_file(db: Path | str, *, division: str | None = "") -> Iterator[Store]:
    """The project file at ``db``, created if missing, and removed again if the command fails
    (a PostGIS database must exist; a failed command's transaction leaves it as it was).
    ``division``: the street, by default the command's ``--division``."""
    from api.cli.scope import check_new_street, check_store
    from geo.divisions import parse_street
    from geo.storage.store import adopt_division, open_store

    created = bool(project_files(db)) and not Path(db).exists()
    street = current_division() if division == "" else division
    if street and is_server(db):
        check_new_street(db, street)
    store = open_store(db, create=True, division=street)
    try:
        check_store(store, db)
        yield store
    except BaseException:
        if created:
            store.engine.dispose()
            remove_project_files(db)
        elif getattr(store, "created_division", False):  # a street added for this command
            store.drop_division()
        raise
    if street:  # a project made for a street carries its code (grid codes start with it)
        adopt_division(store, parse_street(street).code)


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file: by inode where both exist, else by resolved path."""
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def refuse_overwrite(
    target: Path, *, db: Path | str | None, inputs: Iterable[Path | None] = ()
) -> None:
    """Refuse (one line, exit code 2) to write ``target`` over the project file or an input."""
    for kept in project_files(db):
        if same_file(Path(target), kept):
            raise InputError(
                f"refusing to write {target}: it is the project file ({kept}); choose another name",
                zh=f"拒绝写入 {target}：它是项目文件（{kept}），请换一个文件名",
            )
    for kept in (Path(p) for p in inputs if p is not None):
        if same_file(Path(target), kept):
            raise InputError(
                f"refusing to write {target}: it is this command's input ({kept}); "
                "choose another name",
                zh=f"拒绝写入 {target}：它是本命令的输入文件（{kept}），请换一个文件名",
            )


def refuse_project_as_input(db: Path | str | None, *inputs: Path | None) -> None:
    """Refuse a command whose input is the project file it writes (it would read what it changes)."""
    for given in (Path(p) for p in inputs if p is not None):
        if any(same_file(given, kept) for kept in project_files(db)):
            raise InputError(
                f"the input {given} is the project file itself; give the project another --db",
                zh=f"输入文件 {given} 就是项目文件本身，请用 --db 指定另一个项目文件",
            )


@contextmanager
def output_file(
    target: Path, *, db: Path | str | None, inputs: Iterable[Path | None] = ()
) -> Iterator[Path]:
    """A path to write ``target`` at, renamed into place only when the command succeeds.

    The command writes into a hidden temporary folder beside ``target`` (same file system, same
    file name, so formats that name their layer after the file keep it); every file written there
    (a Shapefile's .shx, .dbf, .prj too) is then renamed over its final name, each rename atomic. A
    failure leaves the old file, if any, untouched and no half-written output.
    """
    target = Path(target)
    inputs = list(inputs)
    refuse_overwrite(target, db=db, inputs=inputs)
    if target.is_dir():
        raise InputError(
            f"{target} is a folder; give a file name", zh=f"{target} 是文件夹，请给出文件名"
        )
    folder = target.parent
    if not folder.is_dir():
        raise InputError(
            f"no folder {folder} to write {target.name} in", zh=f"文件夹 {folder} 不存在"
        )
    try:
        scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder))
    except OSError as error:
        raise InputError(
            f"cannot write in {folder}: {error.strerror}", zh=f"无法在 {folder} 中写入文件"
        ) from None
    try:
        yield scratch / target.name
        written = sorted(scratch.iterdir())
        for part in written:
            refuse_overwrite(folder / part.name, db=db, inputs=inputs)
        for part in written:
            os.replace(part, folder / part.name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


#: the exit code of each kind of error, most specific class first (an error takes the first class
#: it is an instance of); ``gridmap --help`` lists them (api.cli.EXIT_CODES)
EXIT_CODES: dict[type[GridmapError], int] = {
    InputError: 2,
    NotFound: 3,
    Conflict: 4,
    Forbidden: 5,
    Unauthorized: 5,
    StoreError: 6,
    InternalError: 6,
    GridmapError: 2,
}


def exit_code(error: GridmapError) -> int:
    """The exit code of ``error``: its first class in :data:`EXIT_CODES`."""
    return next(code for kind, code in EXIT_CODES.items() if isinstance(error, kind))


def error_line(error: GridmapError) -> str:
    """The error in the user's language only: Chinese where it has a Chinese twin, else English."""
    if language() == "zh" and error.zh:
        return f"错误：{error.zh}"
    return f"Error: {error}"


JsonOption = Annotated[
    bool, typer.Option("--json", help="以 JSON 输出到标准输出 print the result as JSON on stdout")
]


def print_json(value: Any) -> None:
    """``value`` as strict JSON on stdout (null for NaN/NaT, never a bare NaN): jq can read it."""
    from geo.jsonvalue import dumps

    text = dumps(value, indent=2)
    if out.is_terminal:
        out.print_json(text)
    else:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()


def report(shown: Any, data: Any, *, as_json: bool) -> None:
    """A command's result on stdout: ``data`` as JSON with --json, else the rich table ``shown``."""
    if as_json:
        print_json(data)
    else:
        out.print(shown)


def note(text: str, **style: Any) -> None:
    """A message (not a result) on stderr, printed as given."""
    console.print(text, markup=False, highlight=False, **style)


def is_stdio(path: Path | str | None) -> bool:
    """Whether a file argument is ``-`` (stdin where read, stdout where written)."""
    return path is not None and str(path) == "-"


@contextmanager
def output_or_stdout(
    target: Path, *, db: Path | str | None, suffix: str, inputs: Iterable[Path | None] = ()
) -> Iterator[Path]:
    """:func:`output_file`, or for ``-`` a scratch file copied to stdout when complete."""
    if not is_stdio(target):
        with output_file(target, db=db, inputs=inputs) as path:
            yield path
        return
    with tempfile.TemporaryDirectory(prefix=".gridmap-stdout.") as folder:
        path = Path(folder) / f"stdout{suffix}"
        yield path
        sys.stdout.flush()
        with path.open("rb") as written:
            shutil.copyfileobj(written, sys.stdout.buffer)
        sys.stdout.buffer.flush()


@contextmanager
def input_or_stdin(source: Path) -> Iterator[Path]:
    """``source``, or for ``-`` stdin saved to a scratch file named by what it holds.

    A workbook (a zip: ``PK``) becomes ``.xlsx``, text starting with ``{`` or ``[`` ``.json``
    (GeoJSON included), anything else ``.csv``.
    """
    if not is_stdio(source):
        yield Path(source)
        return
    data = sys.stdin.buffer.read()
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    suffix = ".xlsx" if data[:2] == b"PK" else ".json" if head in (b"{", b"[") else ".csv"
    with tempfile.TemporaryDirectory(prefix=".gridmap-stdin.") as folder:
        path = Path(folder) / f"stdin{suffix}"
        path.write_bytes(data)
        yield path


def table(title: str, rows: list[tuple[str, Any]]) -> Table:
    """A two-column summary table."""
    summary = Table(title=plain(title), show_header=False, title_justify="left")
    summary.add_column(style="bold")
    summary.add_column(justify="right")
    for label, value in rows:
        summary.add_row(plain(label), plain(cell_text(value)))
    return summary


def rows_table(
    title: str, columns: Sequence[str | Column], rows: Iterable[Sequence[object]]
) -> Table:
    """A titled table with a header, one row per item, every cell shown as text."""
    heads = [c if isinstance(c, Column) else Column(plain(c)) for c in columns]
    shown = Table(*heads, title=plain(title), title_justify="left")
    for row in rows:
        shown.add_row(*(plain(cell_text(cell)) for cell in row))
    return shown


def cell_text(value: object) -> str:
    """A table cell: counts as integers (``1``, not ``1.00``), missing values empty."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        value = value.item()  # numpy scalars
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value.is_integer():
            return f"{int(value):,}"
        return f"{value:.2f}"
    if str(value) in ("NaT", "nan", "<NA>"):
        return ""
    return str(value)


def plain(value: object) -> Text:
    """``value`` as rich text shown verbatim: never read as markup, whatever console prints it."""
    return Text("" if value is None else str(value))


@contextmanager
def progress_bar() -> Iterator[Any]:
    """A rich progress bar whose ``update(stage, done, total)`` callback the geo functions call."""
    labels = {
        "read": say("读取", "reading"),
        "communities": say("划分社区", "communities"),
        "cells": say("建筑单元", "building cells"),
        "write": say("写入项目文件", "writing the project file"),
        "partition": say("划分网格", "partitioning"),
        "boundaries": say("网格边界", "grid boundaries"),
        "locate": say("定位", "locating"),
    }
    tasks: dict[str, Any] = {}
    bar = Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
        disable=not console.is_terminal and os.environ.get("GRIDMAP_PROGRESS") != "1",
    )

    def update(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(labels.get(stage, stage), total=total)
            if not console.is_terminal:
                # a log line per stage where no bar can be drawn (pipes, CI, the kill test)
                console.print(
                    f"[{stage}] {labels.get(stage, stage)}", markup=False, highlight=False
                )
        bar.update(tasks[stage], completed=done, total=total)

    with bar:
        yield update
