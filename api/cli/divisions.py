"""``gridmap divisions list`` and ``gridmap divisions name``: the divisions a database holds.

A PostGIS database of many streets knows its streets by code; a county office reads names. The
names of every level (province to street) are kept beside the street registry, with the shipped
ones (``data/division_names.csv``: 江苏省, 苏州市 and its counties) as defaults.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Column

from api.cli.common import (
    DEFAULT_DB,
    DbOption,
    JsonOption,
    current_division,
    lazy,
    note,
    report,
    rows_table,
    say,
)
from api.cli.scope import rollup_under

if TYPE_CHECKING:
    from geo.usecases import divisions as regions
else:  # imported by the commands that use them (issue #16: start-up)
    regions = lazy("geo.usecases.divisions")

divisions_app = typer.Typer(
    help="区划 divisions: the streets of a database and the names of every level",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(divisions_app, name="divisions")


@divisions_app.command("list")
def divisions_list(db: DbOption = DEFAULT_DB, as_json: JsonOption = False) -> None:
    """列出区划 Every division holding a street (under --division), with its name, streets,
    buildings and grids."""
    listed = regions.division_list(str(db), under=rollup_under(db, current_division()))
    counts = ["streets", "buildings", "grids"]
    shown = rows_table(
        say(f"区划（{len(listed)} 个）", f"Divisions ({len(listed)})"),
        ["code", "level", "name", *(Column(c, justify="right") for c in counts)],
        listed.itertuples(index=False),
    )
    report(shown, listed.to_dict("records"), as_json=as_json)


@divisions_app.command("name")
def divisions_name(
    code: Annotated[str, typer.Argument(help="区划代码 division code, any level (32, 320581 ...)")],
    name: Annotated[str, typer.Argument(help="名称 its name, e.g. 常熟市")],
    db: DbOption = DEFAULT_DB,
) -> None:
    """命名区划 Name a division of any level (a GeoPackage: its own street only)."""
    short = regions.name_division(str(db), code, name)
    note(say(f"{short} 已命名为 {name.strip()}", f"{short} is now named {name.strip()}"))
