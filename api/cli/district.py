"""``gridmap import``, ``gridmap export`` and ``gridmap settings``: the district and its file."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from api.cli.common import (
    DEFAULT_DB,
    DbOption,
    JsonOption,
    console,
    is_server,
    is_stdio,
    lazy,
    new_project_file,
    note,
    out,
    output_file,
    output_or_stdout,
    print_json,
    progress_bar,
    refuse_project_as_input,
    report,
    say,
    store_for,
    table,
)
from api.cli.grids import ClusterOption, WorkersOption, cluster_mapper, plan_app
from geo.collect import fewer_collections
from geo.errors import InputError

if TYPE_CHECKING:
    from rich.table import Table

    from geo.usecases import district as project
else:  # imported by the commands that use it (issue #16: start-up)
    project = lazy("geo.usecases.district")

settings_app = typer.Typer(
    help="项目设置 project settings (division_code, ...)", no_args_is_help=True
)

KNOWN_SETTINGS = {
    "division_code": "9 位街道（乡镇）区划代码 county + street division code, e.g. 320581104",
    "min_size": "网格最少建筑数 fewest buildings per grid (default 4)",
    "max_size": "网格最多建筑数 most buildings per grid (default 5)",
    "max_households": "网格户数上限 households cap per grid (optional)",
    "district_name": "地图标题中的街道/新区名称 the district's name in map titles",
    "tianditu_key": "天地图密钥 Tianditu key for --basemap tianditu",
    "basemap_tiles": "本地底图：瓦片目录、.mbtiles 或内网瓦片 URL local tiles (folder, .mbtiles, URL)",
}


def register(app: typer.Typer) -> None:
    app.command("import")(import_command)
    app.command("export")(export_command)
    app.command("ledger")(ledger_command)
    app.command("backup")(backup_command)
    app.command("copy")(copy_command)
    app.add_typer(settings_app, name="settings")
    plan_app.command("recode")(recode_command)


# over 60 lines: a typer command, whose signature is its options
def import_command(
    buildings: Annotated[
        Path,
        typer.Argument(
            help="建筑轮廓文件 footprints: GeoJSON, Shapefile (.shp/.zip), GeoPackage, FlatGeobuf, OSM PBF/.osm"
        ),
    ],
    db: DbOption = DEFAULT_DB,
    layer: Annotated[str | None, typer.Option(help="图层名 layer (GeoPackage, OSM)")] = None,
    id_field: Annotated[str | None, typer.Option(help="建筑编号字段 id field")] = None,
    community_field: Annotated[str | None, typer.Option(help="社区字段 community field")] = None,
    households_field: Annotated[str | None, typer.Option(help="户数字段 households field")] = None,
    communities: Annotated[
        Path | None, typer.Option(help="社区边界文件 community polygons")
    ] = None,
    communities_field: Annotated[
        str | None, typer.Option(help="社区边界文件的名称字段 name field of --communities")
    ] = None,
    roads: Annotated[
        Path | None, typer.Option(help="道路文件（切分街区）roads, to cut street blocks")
    ] = None,
    crs: Annotated[
        str | None,
        typer.Option(
            help="文件的坐标系（文件未声明或声明有误时）the file's CRS where it says none or a "
            "wrong one, e.g. EPSG:4528"
        ),
    ] = None,
    attribution: Annotated[
        str | None, typer.Option(help="数据来源署名 attribution to keep with the data")
    ] = None,
    replace: Annotated[
        bool,
        typer.Option(
            help="替换项目中已有的建筑（删除其方案）replace the district's buildings and plans"
        ),
    ] = False,
    workers: WorkersOption = None,
    cluster_url: ClusterOption = None,
    as_json: JsonOption = False,
) -> None:
    """导入建筑轮廓 Import building footprints into the project file."""
    refuse_project_as_input(db, buildings, communities, roads)
    options = project.ReadOptions(
        layer=layer,
        crs=crs,
        id_field=id_field,
        community_field=community_field,
        households_field=households_field,
        attribution=attribution,
    )
    with (
        cluster_mapper(cluster_url, workers) as mapper,  # a cluster that fails leaves no file
        new_project_file(db) as store,
        progress_bar() as update,
        fewer_collections(),
    ):
        summary = project.import_buildings(
            store,
            buildings,
            options=options,
            communities_path=communities,
            communities_field=communities_field,
            roads_path=roads,
            replace=replace,
            progress=update,
            mapper=mapper,
        )
    _print_import(summary, as_json=as_json)


def _print_import(summary: project.ImportSummary, *, as_json: bool) -> None:
    """The import's warnings, renamed fields and dropped features in yellow on stderr, then
    its summary (a table, or JSON) on stdout."""
    for english, chinese in summary.warnings:
        console.print(
            f"{say('注意', 'Note')}: {say(chinese, english)}", style="yellow", markup=False
        )
    report = summary.read
    for old, new in report.renamed_fields.items():
        console.print(
            say(
                f"注意：字段 {old!r} 已改名为 {new!r}（项目文件不区分字段名的大小写，"
                "也不能有无名字段或 fid、geom 字段）",
                f"Note: field {old!r} renamed {new!r} (the project file does not tell "
                "field names apart by case, and holds no field without a name or called fid "
                "or geom)",
            ),
            style="yellow",
        )
    if report.dropped_ids:
        shown = ", ".join(report.dropped_ids[:10]) + (
            " ..." if len(report.dropped_ids) > 10 else ""
        )
        console.print(
            say(
                f"丢弃的要素（完整列表见审计日志）：{shown}",
                f"dropped features (all of them in the audit log): {shown}",
            ),
            style="yellow",
            markup=False,
        )
    if as_json:
        print_json(_import_json(summary))
    else:
        out.print(_import_table(summary))


def _import_json(summary: project.ImportSummary) -> dict[str, object]:
    report = summary.read
    return {
        "features_read": report.read,
        "repaired": report.repaired,
        "dropped_empty": report.dropped_empty,
        "dropped_non_polygon": report.dropped_non_polygon,
        "dropped_unreadable": report.dropped_unreadable,
        "dropped_ids": list(report.dropped_ids),
        "renamed_fields": dict(report.renamed_fields),
        "buildings": summary.buildings,
        "communities": summary.communities,
        "communities_from": summary.community_method,
        "source_crs": str(report.source_crs),
        "text_encoding": report.text_encoding,
        "working_crs": str(summary.working_crs),
        "warnings": [english for english, _ in summary.warnings],
    }


def _import_table(summary: project.ImportSummary) -> Table:
    report = summary.read
    return table(
        say("导入完成", "Import done"),
        [
            (say("读取要素", "features read"), report.read),
            (say("修复几何", "repaired"), report.repaired),
            (say("丢弃：空几何", "dropped: empty"), report.dropped_empty),
            (say("丢弃：非面要素", "dropped: not polygons"), report.dropped_non_polygon),
            (say("丢弃：无法读取的几何", "dropped: unreadable"), report.dropped_unreadable),
            (say("建筑", "buildings"), summary.buildings),
            (say("社区", "communities"), summary.communities),
            (say("社区来源", "communities from"), summary.community_method),
            (say("源坐标系", "source CRS"), report.source_crs),
            (say("工作坐标系", "working CRS"), summary.working_crs),
        ],
    )


def export_command(
    output: Annotated[
        Path,
        typer.Argument(
            help="输出文件 .geojson .gpkg .shp .fgb .csv（.gpkg 已存在则追加图层 adds a layer）"
        ),
    ],
    db: DbOption = DEFAULT_DB,
    layer: Annotated[
        str, typer.Option(help="buildings | communities | grids | incidents")
    ] = "buildings",
    crs: Annotated[str, typer.Option(help="输出坐标系 output CRS")] = "EPSG:4326",
    include_contacts: Annotated[
        bool, typer.Option(help="包含工作人员电话 include workers' phone numbers")
    ] = False,
    excel: Annotated[
        bool,
        typer.Option("--excel", help="CSV 带 BOM，Excel 直接打开 CSV as UTF-8 with BOM for Excel"),
    ] = False,
    geometry: Annotated[
        bool, typer.Option("--geometry/--no-geometry", help="CSV 是否含几何列（WKT，最后一列）")
    ] = True,
    as_json: JsonOption = False,
) -> None:
    """导出图层 Export a layer (WGS84 by default). Into an existing .gpkg the layer is added (or
    replaced) and the package's other layers are kept: one file for buildings, grids and
    communities in QGIS. For the grid ledger as Excel see gridmap ledger."""
    from geo.exchange.exports import check_geopackage, export_layer_file

    store = store_for(db)
    with output_file(output, db=db) as scratch:
        if output.suffix.lower() == ".gpkg" and output.is_file():
            check_geopackage(output)
            shutil.copyfile(output, scratch)  # layers are added to a copy; renamed over when whole
        result = export_layer_file(
            store,
            scratch,
            layer=layer,
            crs=crs,
            include_contacts=include_contacts,
            excel=excel,
            geometry=geometry,
        )
    for english, chinese in result.notes:
        note(f"{say('注意', 'Note')}: {say(chinese, english)}", style="yellow")
    if as_json:
        notes = [english for english, _ in result.notes]
        print_json(
            {"output": str(output), "layer": layer, "features": result.count, "notes": notes}
        )
        return
    note(
        say(
            f"已导出 {result.count} 个要素到 {output}（图层 {layer}）",
            f"exported {result.count} features to {output} (layer {layer})",
        )
    )


def ledger_command(
    output: Annotated[Path, typer.Argument(help="网格台账 .xlsx（- 为标准输出 stdout）")],
    db: DbOption = DEFAULT_DB,
    as_json: JsonOption = False,
) -> None:
    """网格台账 Write the grid ledger as Excel: code, community, worker, buildings, households,
    open cases, with Chinese headers."""
    from geo.exchange.exports import write_ledger

    if not is_stdio(output) and output.suffix.lower() != ".xlsx":
        raise InputError(
            f"the ledger is an Excel workbook: give a name ending in .xlsx, not {output.name}",
            zh=f"网格台账是 Excel 文件，文件名请以 .xlsx 结尾（而不是 {output.name}）",
        )
    store = store_for(db)
    with output_or_stdout(output, db=db, suffix=".xlsx") as scratch:
        count = write_ledger(store, scratch)
    if as_json and not is_stdio(output):
        print_json({"output": str(output), "grids": count})
        return
    note(
        say(
            f"网格台账（{count} 个网格）已写入 {output}",
            f"ledger of {count} grids written to {output}",
        )
    )


def backup_command(
    output: Annotated[Path, typer.Argument(help="备份文件 backup file (.gpkg)")],
    db: DbOption = DEFAULT_DB,
) -> None:
    """备份项目文件 Copy the project file consistently, even while the server writes to it
    (from PostGIS: into a new GeoPackage, as gridmap copy does)."""
    from geo.usecases.backup import backup_project
    from geo.usecases.projectfiles import project_files
    from geo.usecases.transfer import copy_project

    store = store_for(db)  # a missing or foreign file is refused here
    with output_file(output, db=db) as scratch:
        if project_files(db):
            backup_project(Path(str(db).removeprefix("sqlite:///")), scratch)
        else:  # a PostGIS database: one snapshot of it as a GeoPackage
            backup = store_for(scratch, create=True)
            copy_project(store, backup)
            backup.engine.dispose()  # the last connection folds the write-ahead log in
    console.print(say(f"已备份到 {output}", f"backed up to {output}"))


def copy_command(
    source: Annotated[str, typer.Argument(help="源项目 from: a .gpkg or postgresql://...")],
    target: Annotated[
        str, typer.Argument(help="目标（空）to (empty): a .gpkg or postgresql://...")
    ],
    division: Annotated[
        str | None,
        typer.Option(
            "--division",
            help="街道代码 the street (9 digits) on the PostGIS side(s); a GeoPackage is one street",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """复制项目 Copy a project between a GeoPackage and PostGIS, every layer and table (plans,
    edit history, grid codes, workers, cases, tokens, audit log) as it is; the target must be
    empty (a new .gpkg is made)."""
    from geo.divisions import parse_street
    from geo.storage.store import check_division, open_store
    from geo.usecases.transfer import copy_project

    # the same project as target: refused, it is not empty
    from_store = open_store(source, division=division if is_server(source) else None)
    if division:  # a street's project goes into that street only
        check_division(from_store, parse_street(division).code)
    with new_project_file(target, division=division if is_server(target) else None) as to_store:
        outcome = copy_project(from_store, to_store)
    to_store.engine.dispose()
    rows = [(name, count) for name, count in {**outcome.layers, **outcome.tables}.items()]
    shown = table(say(f"已复制到 {target}", f"copied to {target}"), rows)
    report(shown, {"layers": outcome.layers, "tables": outcome.tables}, as_json=as_json)


@settings_app.command("set")
def settings_set(
    key: Annotated[str, typer.Argument(help=", ".join(KNOWN_SETTINGS))],
    value: Annotated[str, typer.Argument()],
    db: DbOption = DEFAULT_DB,
) -> None:
    """设置 Set a project setting."""
    if key not in KNOWN_SETTINGS:
        raise InputError(
            f"unknown setting {key!r}; known: {', '.join(KNOWN_SETTINGS)}",
            zh=f"未知设置 {key}；可用：{', '.join(KNOWN_SETTINGS)}",
        )
    store = store_for(db)
    project.set_setting(store, key, value)
    console.print(f"{key} = {project.get_settings(store)[key]}")
    if key == "division_code" and store.count("grid_codes"):
        console.print(
            say(
                "已有网格编码用的是原区划代码；运行 gridmap plan recode 按新代码重新编码",
                "grids already coded keep the old division code; run gridmap plan recode to "
                "renumber them under the new one",
            ),
            style="yellow",
        )


def recode_command(db: DbOption = DEFAULT_DB) -> None:
    """按新区划代码重新编码 Renumber every plan's grids under the division code now set.

    Only the 9-digit prefix changes; community and grid numbers stay. Cases, the published grids
    and the edit history follow.
    """
    store = store_for(db)
    outcome = project.recode_division(store)
    if not outcome.codes:
        console.print(
            say(
                f"所有网格编码已使用 {outcome.division_code}",
                f"every grid code already carries {outcome.division_code}",
            )
        )
        return
    console.print(
        say(
            f"已将 {outcome.codes} 个网格编码从 {', '.join(outcome.previous)} 改为 "
            f"{outcome.division_code}",
            f"renumbered {outcome.codes} grid codes from {', '.join(outcome.previous)} to "
            f"{outcome.division_code}",
        )
    )


@settings_app.command("show")
def settings_show(db: DbOption = DEFAULT_DB) -> None:
    """显示设置 Show the project settings."""
    store = store_for(db)
    print_json(project.get_settings(store))
