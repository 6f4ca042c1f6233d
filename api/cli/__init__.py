"""The ``gridmap`` command line: one sub-command (or sub-app) per noun, thin over geo/ and maps/."""

from __future__ import annotations

import os
from typing import Any

import typer
from typer._click.core import Context
from typer._click.exceptions import ClickException
from typer.core import TyperGroup

from api.cli import cases, district, editing, grids, maps, service
from api.cli.common import console, error_line
from geo.errors import GridmapError


class GridmapGroup(TyperGroup):
    """Turns errors into one line and an exit code, for every command: never a traceback."""

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except GridmapError as error:
            console.print(error_line(error), style="bold red", markup=False, highlight=False)
            raise typer.Exit(error.exit_code) from None
        except (typer.Exit, typer.Abort, ClickException):
            raise  # --help, usage errors and exits are typer's to report
        except KeyboardInterrupt:
            console.print("已中断 interrupted", style="yellow")
            raise typer.Exit(130) from None
        except Exception as error:  # a bug, not the user's fault: say so without a traceback
            if os.environ.get("GRIDMAP_DEBUG"):
                raise
            console.print(
                f"内部错误 internal error: {type(error).__name__}: {error} "
                "(set GRIDMAP_DEBUG=1 for details and please report it)",
                style="bold red",
                markup=False,
            )
            raise typer.Exit(70) from None


app = typer.Typer(
    name="gridmap",
    cls=GridmapGroup,
    help="gridmap：社区网格化管理 GIS（建筑→网格→社区）. Community grid management for Chinese towns.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
for module in (district, grids, editing, cases, maps, service):
    module.register(app)


def main() -> None:
    """Entry point of the ``gridmap`` console script."""
    app()
