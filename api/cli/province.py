"""``gridmap province``: a province's streets imported and partitioned on a Dask cluster.

``gridmap province import SRC --db STORE --workers N`` (local processes) or ``--cluster
tcp://scheduler:8786`` (an existing cluster) runs every street of SRC through the import and
partition steps and writes each finished street into STORE; ``--resume`` goes on with a run that
stopped. With ``--divisions`` and a PostGIS STORE each street becomes its own project (division)
in the database, written by the worker that made it. ``gridmap province generate OUT --streets N`` writes a synthetic slice to try it on.
Dask and geopandas are imported by the commands, never at start-up (tests/test_startup.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from api.cli.common import (
    DEFAULT_DB,
    DbOption,
    JsonOption,
    console,
    is_server,
    lazy,
    note,
    out,
    print_json,
    progress_bar,
    say,
    store_for,
    table,
)
from geo.errors import InputError

if TYPE_CHECKING:
    from geo.province import cluster, pipeline, run, streets, synthetic
else:  # imported by the commands that use them (issue #16: start-up)
    cluster = lazy("geo.province.cluster")
    pipeline = lazy("geo.province.pipeline")
    run = lazy("geo.province.run")
    streets = lazy("geo.province.streets")
    synthetic = lazy("geo.province.synthetic")

province_app = typer.Typer(
    help="省级：按街道在 Dask 集群上导入并划分网格 a province, street by street, on Dask",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(province_app, name="province")


@province_app.command("import")
def import_command(  # noqa: PLR0913, RUF100  (a typer command: one argument per option)
    source: Annotated[
        Path,
        typer.Argument(
            help="街道文件目录 folder of <county>/<street>.parquet (+ .roads.parquet), or one "
            "file of the whole province (GeoPackage, FlatGeobuf ...) with --street-field"
        ),
    ],
    street_field: Annotated[
        str, typer.Option(help="单一文件中的街道代码字段 the field of each building's street")
    ] = "street_code",
    roads: Annotated[
        Path | None,
        typer.Option(help="全省道路（单一文件时）the province's roads, with a single file"),
    ] = None,
    db: DbOption = DEFAULT_DB,
    workers: Annotated[
        int | None, typer.Option(help="本机工作进程数 local worker processes (default: cores)")
    ] = None,
    cluster_url: Annotated[
        str | None,
        typer.Option("--cluster", help="已有 Dask 集群 an existing cluster, tcp://host:8786"),
    ] = None,
    resume: Annotated[
        bool, typer.Option(help="跳过已完成的街道 go on with a stopped run, skipping its streets")
    ] = False,
    min_size: Annotated[int, typer.Option(help="网格最少建筑数 fewest buildings per grid")] = 4,
    max_size: Annotated[int, typer.Option(help="网格最多建筑数 most buildings per grid")] = 5,
    seed: Annotated[int, typer.Option(help="随机种子 seed: same seed, same grids")] = 0,
    divisions: Annotated[
        bool,
        typer.Option(
            "--divisions",
            help="每个街道为独立区划 each street its own project (--division) in the PostGIS "
            "--db, written by the workers",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """按街道导入并划分全省 Import and partition every street of a province into --db."""
    _check_inputs(source, db, divisions=divisions)
    if cluster_url is None and workers is None:
        from geo.threads import cores

        workers = cores()
    options = pipeline.StreetOptions(min_size=min_size, max_size=max_size, seed=seed)
    found = pipeline.street_files(source, street_field=street_field, roads=roads)
    # --divisions: the workers write each street's own project; else the client writes one store
    target = str(db) if divisions else store_for(db, create=True)
    run_streets = streets.import_streets if divisions else run.import_province
    with cluster.connect(cluster=cluster_url, workers=workers) as client, progress_bar() as bar:
        summary = run_streets(
            target, found, client=client, options=options, resume=resume, progress=bar
        )
    _print_summary(summary, as_json=as_json)
    if summary.failed:
        raise typer.Exit(1)


def _check_inputs(source: Path, db: str, *, divisions: bool) -> None:
    if not source.exists():
        raise InputError(f"{source} does not exist", zh=f"{source} 不存在")
    if divisions and not is_server(db):
        raise InputError(
            "--divisions needs a PostGIS --db (postgresql://...): a GeoPackage is one street",
            zh="--divisions 需要 PostGIS 数据库（postgresql://...）：一个 GeoPackage 只是一个街道",
        )


def _print_summary(summary: run.ProvinceSummary, *, as_json: bool) -> None:
    """Failed streets on stderr; the counts as a table or JSON on stdout."""
    for street, error in summary.failed.items():
        console.print(
            say(f"街道 {street} 失败：{error}", f"street {street} failed: {error}"),
            style="bold red",
            markup=False,
        )
    if summary.failed:
        note(say("修复后用 --resume 继续", "fix it, then go on with --resume"), style="yellow")
    facts = {
        "streets": summary.streets,
        "skipped": summary.skipped,
        "written": len(summary.written),
        "failed": len(summary.failed),
        "buildings": summary.buildings,
        "grids": summary.grids,
        "flagged": summary.flagged,
        "street_seconds": round(summary.seconds, 1),
        "worker_peak_mb": round(summary.peak_mb),
    }
    if as_json:
        print_json(facts)
        return
    out.print(table(say("省级导入", "Province import"), list(facts.items())))


@province_app.command("generate")
def generate_command(
    folder: Annotated[Path, typer.Argument(help="输出目录 output folder")],
    streets: Annotated[
        int, typer.Option(help="街道数（约 1,970 栋/街道）streets, ~1,970 buildings each")
    ] = 508,
    seed: Annotated[int, typer.Option(help="随机种子 seed")] = 0,
) -> None:
    """生成合成省级数据 Write a synthetic province slice (GeoParquet per street)."""
    with progress_bar() as bar:
        written = synthetic.write_province(folder, streets=streets, seed=seed, progress=bar)
    note(
        say(
            f"已写入 {len(written.paths)} 个街道、{written.buildings} 栋建筑到 {folder}",
            f"wrote {len(written.paths)} streets, {written.buildings} buildings to {folder}",
        )
    )
