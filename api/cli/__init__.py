"""The ``gridmap`` command line: one sub-command (or sub-app) per noun, thin over geo/ and maps/."""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any

import typer
from typer._click.core import Context
from typer._click.exceptions import ClickException
from typer.core import TyperGroup

from api.cli import cases, district, divisions, editing, grids, households, maps, province, service
from api.cli.common import add_division_option, console, error_line, exit_code, out, say
from geo.errors import GridmapError


class GridmapGroup(TyperGroup):
    """Turns errors into one line and an exit code, for every command: never a traceback."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        add_division_option(self)

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except GridmapError as error:
            console.print(error_line(error), style="bold red", markup=False, highlight=False)
            raise typer.Exit(exit_code(error)) from None
        except (typer.Exit, typer.Abort, ClickException):
            raise  # --help, usage errors and exits are typer's to report
        except KeyboardInterrupt:
            console.print(say("已中断", "interrupted"), style="yellow")
            raise typer.Exit(130) from None
        except BrokenPipeError:  # whoever read the output stopped (gridmap ... | head)
            _stop_writing()
            raise typer.Exit(141) from None
        except Exception as error:  # a bug, not the user's fault: say so without a traceback
            if os.environ.get("GRIDMAP_DEBUG"):
                raise
            console.print(
                say(
                    f"内部错误：{type(error).__name__}: {error}"
                    "（设置 GRIDMAP_DEBUG=1 查看详情，并请报告此问题）",
                    f"internal error: {type(error).__name__}: {error} "
                    "(set GRIDMAP_DEBUG=1 for details and please report it)",
                ),
                style="bold red",
                markup=False,
            )
            raise typer.Exit(70) from None


#: Shown under ``gridmap --help``: what a script can rely on.
EXIT_CODES = (
    "结果输出到标准输出，消息与进度输出到标准错误；--json 输出严格 JSON；文件参数 - 表示标准输入/输出。"
    " Results go to stdout, messages and progress to stderr; --json prints strict JSON; a file"
    " argument - means stdin/stdout. GRIDMAP_LANG=en: messages in English.\n\n"
    "退出码 exit codes: 0 成功 ok · 2 输入有误 bad input or usage · 3 未找到 not found ·"
    " 4 冲突 conflict (stale revision, duplicate) · 5 无权限 not allowed ·"
    " 6 项目文件无法打开 project file unusable · 70 gridmap 自身的缺陷 a bug in gridmap · 130 已中断 interrupted"
)

app = typer.Typer(
    name="gridmap",
    cls=GridmapGroup,
    help="gridmap：社区网格化管理 GIS（建筑→网格→社区）. Community grid management for Chinese towns.",
    epilog=EXIT_CODES,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},  # every sub-command inherits it
)
for module in (district, grids, editing, cases, households, maps, service, province, divisions):
    module.register(app)


def _print_version(asked: bool) -> None:
    if not asked:
        return
    from importlib.metadata import PackageNotFoundError, version

    try:
        number = version("gridmap")
    except PackageNotFoundError:  # run from a source tree that was never installed
        number = "unknown"
    out.print(f"gridmap {number}", markup=False, highlight=False)
    raise typer.Exit()


@app.callback()
def _options(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="显示版本并退出 print the version and exit",
        ),
    ] = False,
) -> None:
    pass


def main() -> None:
    """Entry point of the ``gridmap`` console script."""
    try:
        app()
    except BrokenPipeError:
        _stop_writing()
        sys.exit(141)


def _stop_writing() -> None:
    """Point stdout at nothing, so that Python's own flush at exit meets no closed pipe (the
    way a command killed by SIGPIPE ends: quietly, status 128 + 13)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
