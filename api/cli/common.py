"""What every ``gridmap`` command shares: the project file option, output, errors, progress."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Column, Table

from geo.errors import GridmapError
from geo.store import DEFAULT_PATH, Store, open_store

console = Console(
    stderr=True, soft_wrap=True
)  # messages, tables and bars; stdout stays for data (JSON, CSV)
# tables keep their columns when piped (a log, CI) instead of folding to 80 characters
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)

DbOption = Annotated[
    Path,
    typer.Option(
        "--db", envvar="GRIDMAP_DB", help="项目文件 project file (GeoPackage)", show_default=True
    ),
]


AuthorOption = Annotated[
    str, typer.Option("--author", envvar="GRIDMAP_USER", help="操作人 who does this")
]


def language() -> str:
    """``zh`` (default) or ``en``, from GRIDMAP_LANG."""
    return "en" if os.environ.get("GRIDMAP_LANG", "zh").lower().startswith("en") else "zh"


def say(zh: str, en: str) -> str:
    """Pick the user's language."""
    return en if language() == "en" else zh


def store_for(db: Path, *, create: bool = False) -> Store:
    return open_store(db or DEFAULT_PATH, create=create)


@contextmanager
def new_project_file(db: Path) -> Iterator[Store]:
    """The project file at ``db``, created if missing, and removed again if the command fails."""
    created = not Path(db).exists()
    store = open_store(db, create=True)
    try:
        yield store
    except BaseException:
        if created:
            store.engine.dispose()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)
        raise


def error_line(error: GridmapError) -> str:
    if language() == "zh" and error.zh:
        return f"错误：{error.zh}"
    return f"Error: {error}"


def print_json(value: Any) -> None:
    out.print_json(json.dumps(value, ensure_ascii=False, default=str))


def table(title: str, rows: list[tuple[str, Any]]) -> Table:
    """A two-column summary table."""
    summary = Table(title=title, show_header=False, title_justify="left")
    summary.add_column(style="bold")
    summary.add_column(justify="right")
    for label, value in rows:
        summary.add_row(label, f"{value:,}" if isinstance(value, int) else str(value))
    return summary


def rows_table(
    title: str, columns: Sequence[str | Column], rows: Iterable[Sequence[object]]
) -> Table:
    """A titled table with a header, one row per item, every cell shown as text."""
    shown = Table(*columns, title=title, title_justify="left")
    for row in rows:
        shown.add_row(*(str(cell) for cell in row))
    return shown


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
        TextColumn("{task.description}"),
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
