"""``gridmap locate`` and ``gridmap incidents ...``: coordinates and cases to grids and workers."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Column

from api.cli.common import (
    DEFAULT_DB,
    AuthorOption,
    DbOption,
    JsonOption,
    current_division,
    input_or_stdin,
    is_stdio,
    lazy,
    new_project_file,
    note,
    output_or_stdout,
    print_json,
    progress_bar,
    refuse_project_as_input,
    report,
    rows_table,
    say,
    store_for,
    table,
)
from api.cli.scope import rollup_under
from geo.errors import InputError
from geo.reference import shipped_mapping_names

if TYPE_CHECKING:
    import pandas as pd
    from rich.table import Table

    from geo.incidents import feeds, records
    from geo.storage.store import Store
    from geo.usecases import district as project
    from geo.usecases import divisions as regions
    from geo.usecases import incidents as cases
else:  # imported by the commands that use them (issue #16: start-up)
    pd, project = lazy("pandas"), lazy("geo.usecases.district")
    cases, records = lazy("geo.usecases.incidents"), lazy("geo.incidents.records")
    feeds, regions = lazy("geo.incidents.feeds"), lazy("geo.usecases.divisions")

incidents_app = typer.Typer(
    help="事件 incidents: import feeds, workflow, statistics", no_args_is_help=True
)
categories_app = typer.Typer(help="事件分类 the category catalogue", no_args_is_help=True)
incidents_app.add_typer(categories_app, name="categories")

#: the levels ``incidents stats --by`` rolls a database's streets up to (geo.usecases.divisions)
ROLLUP_LEVELS = ("street", "county", "city", "province")
CrsOption = Annotated[str, typer.Option("--crs", help="wgs84 | gcj02 | bd09 | cgcs2000 | EPSG:n")]


def register(app: typer.Typer) -> None:
    app.command("locate")(locate_command)
    app.add_typer(incidents_app, name="incidents")


def locate_command(
    lon: Annotated[str | None, typer.Argument(help="经度 longitude (or x)")] = None,
    lat: Annotated[str | None, typer.Argument(help="纬度 latitude (or y)")] = None,
    db: DbOption = DEFAULT_DB,
    crs: CrsOption = "wgs84",
    input_csv: Annotated[
        Path | None,
        typer.Option("--input", help="批量：输入 CSV（- 为标准输入）batch input, - for stdin"),
    ] = None,
    output_csv: Annotated[
        Path | None,
        typer.Option("--output", help="批量：输出 CSV（- 为标准输出）batch output, - for stdout"),
    ] = None,
    lon_col: Annotated[str, typer.Option(help="经度列 longitude column")] = "lon",
    lat_col: Annotated[str, typer.Option(help="纬度列 latitude column")] = "lat",
    address: Annotated[
        str | None, typer.Option(help="按地址或名称查找 find by address or name")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=50, help="地址候选数 address candidates")] = 5,
) -> None:
    """定位 Locate a coordinate (or a CSV of them, or an address) to building, grid, community, worker."""
    store = store_for(db)
    if address is not None:
        _locate_address(store, address, limit=limit)
    elif input_csv is not None:
        _locate_batch(store, input_csv, output_csv, db=db, crs=crs, columns=(lon_col, lat_col))
    elif lon is None or lat is None:
        raise InputError(
            "give LON LAT, or --input CSV --output CSV, or --address TEXT",
            zh="请给出 经度 纬度，或 --input/--output，或 --address",
        )
    else:
        _locate_point(store, lon, lat, crs=crs)


def _locate_address(store: Store, address: str, *, limit: int) -> None:
    from geo.locate.engine import find_by_address
    from geo.locate.kept import (
        grid_index,  # not geo.plans.store: locating needs no partition engine
    )

    buildings = store.read_layer("buildings")
    found = find_by_address(buildings, address, limit=limit)
    if found.empty:
        print_json([])
        return
    points = buildings.set_index("building_id").loc[found["building_id"]].representative_point()
    located = grid_index(store).locate(points.x.to_numpy(), points.y.to_numpy())
    result = pd.concat(
        [found.reset_index(drop=True), located.drop(columns="building_id").reset_index(drop=True)],
        axis=1,
    )
    print_json(result.to_dict("records"))


def _locate_batch(
    store: Store,
    input_csv: Path,
    output_csv: Path | None,
    *,
    db: Path,
    crs: str,
    columns: tuple[str, str],
) -> None:
    from geo.locate.engine import locate_csv
    from geo.locate.kept import grid_index

    if output_csv is None:
        raise InputError(
            "--input needs --output (the CSV to write)", zh="--input 需要同时给出 --output"
        )
    # the output is checked (never the project file, never the input) before anything is read
    # or kept: a refused command leaves the project file as it was
    with (
        input_or_stdin(input_csv) as source,
        output_or_stdout(output_csv, db=db, inputs=[input_csv], suffix=".csv") as scratch,
        progress_bar() as update,
    ):
        # a batch loads the kept cell tables (built and kept on the plan's first batch)
        counts = locate_csv(
            grid_index(store, cells=True),
            source,
            scratch,
            lon_col=columns[0],
            lat_col=columns[1],
            crs=crs,
            progress=lambda rows: update("locate", rows, max(rows, 1)),
        )
    shown = say("标准输出", "stdout") if is_stdio(output_csv) else str(output_csv)
    note(say(f"已写入 {shown}", f"written {shown}") + f" {counts}")


def _locate_point(store: Store, lon: str, lat: str, *, crs: str) -> None:
    from geo.crs import REASONS_ZH
    from geo.locate.kept import grid_index

    row = grid_index(store).locate_lonlat([lon], [lat], crs=crs).iloc[0].to_dict()
    if row["status"] == "invalid":
        raise InputError(
            f"cannot locate ({lon}, {lat}): {row['reason']}",
            zh=f"无法定位 ({lon}, {lat})：{REASONS_ZH.get(row['reason'], row['reason'])}",
        )
    row.pop("reason", None)
    print_json(row)


#: the options of ``gridmap incidents import``
FeedArgument = Annotated[
    Path, typer.Argument(help="CSV / Excel .xlsx / GeoJSON / JSON; - 标准输入 stdin")
]
SourceOption = Annotated[str, typer.Option(help="来源 12345 | 数字城管 | ...")]
MappingOption = Annotated[
    Path | None,
    typer.Option(
        help="保存的列映射 saved column mapping (JSON), or a shipped one: "
        + ", ".join(shipped_mapping_names())
        + " (data/incident_mappings)"
    ),
]
ColumnOption = Annotated[str | None, typer.Option()]
FeedCrsOption = Annotated[
    str | None,
    typer.Option(
        help="wgs84 | gcj02 | bd09 | cgcs2000 | EPSG:n; without it WGS84 is assumed and "
        "points that look like GCJ-02/BD-09 are refused"
    ),
]
TzOption = Annotated[str | None, typer.Option(help="无时区时间的时区 zone of naive times")]
AllowUnlocatedOption = Annotated[
    bool,
    typer.Option(
        "--allow-unlocated",
        help="即使没有一条可定位也导入 store the feed even when no case has usable coordinates",
    ),
]
UpdateOption = Annotated[
    bool,
    typer.Option(
        "--update",
        help="更新已导入但内容有变的案件 rewrite stored cases whose place, category, time or "
        "text changed (their workflow stays)",
    ),
]


@incidents_app.command("import")
def incidents_import(
    feed: FeedArgument,
    db: DbOption = DEFAULT_DB,
    source: SourceOption = "12345",
    mapping: MappingOption = None,
    id_col: ColumnOption = None,
    lon_col: ColumnOption = None,
    lat_col: ColumnOption = None,
    crs: FeedCrsOption = None,
    category_col: ColumnOption = None,
    time_col: ColumnOption = None,
    description_col: ColumnOption = None,
    address_col: ColumnOption = None,
    tz: TzOption = None,
    allow_unlocated: AllowUnlocatedOption = False,
    update: UpdateOption = False,
    author: AuthorOption = "",
    as_json: JsonOption = False,
) -> None:
    """导入事件 Import cases; the same file twice changes nothing (--update rewrites changed ones).

    Columns not given are found by their usual headers (lon/lng/longitude/x/经度, lat/latitude/y/
    纬度, id/案件编号, time/上报时间, category/问题类型, description/问题描述, address/地址); the
    columns used are printed. Refused, with nothing stored: a feed where no case has usable
    coordinates (unless --allow-unlocated), and one read as WGS84 whose points look like GCJ-02
    or BD-09 (name the system with --crs)."""
    refuse_project_as_input(db, feed, mapping)
    columns = feeds.mapping_from_options(
        mapping,
        id_col=id_col,
        lon_col=lon_col,
        lat_col=lat_col,
        crs=crs,
        category_col=category_col,
        time_col=time_col,
        description_col=description_col,
        address_col=address_col,
        tz=tz,
    )
    with input_or_stdin(feed) as feed_file, new_project_file(db) as store:
        summary = cases.import_incidents(
            store,
            feed_file,
            mapping=columns,
            source=source,
            author=author,
            allow_unlocated=allow_unlocated,
            check_crs=crs is None and mapping is None,
            update=update,
        )
    _print_import(summary, as_json=as_json)


def _print_import(summary: dict, *, as_json: bool) -> None:
    """The columns read, the import's counts (a table, or JSON) and why cases were unlocated."""
    from geo.crs import REASONS_ZH

    note(say("列映射", "columns") + ": " + summary["mapping"])
    report(
        table(say("事件导入", "Incident import"), _import_rows(summary)), summary, as_json=as_json
    )
    reasons = summary.get("unlocated_reasons") or {}
    for reason, count in reasons.items():
        chinese = UNLOCATED_ZH.get(reason) or REASONS_ZH.get(reason) or _geometry_zh(reason)
        note(f"  {say('未定位原因', 'unlocated')}: {say(chinese, reason)}: {count}")


def _import_rows(summary: dict) -> list[tuple[str, object]]:
    """The rows of the import's table: what was read, placed, added, updated, already there."""
    return [
        (say("读取", "read"), summary["read"]),
        (say("已定位", "located"), summary["located"]),
        (say("未定位", "unlocated"), summary["unlocated"]),
        (say("未知类别（归入其他）", "unknown category (其他)"), summary["unknown_category"]),
        (say("疑似默认坐标", "fallback point"), summary["fallback_point"]),
        (say("时间无法识别", "unreadable time"), summary.get("bad_time", 0)),
        (say("新增", "added"), summary["added"]),
        (say("已更新", "updated"), summary["updated"]),
        (say("已存在", "already present"), summary["already_present"]),
    ]


#: the Chinese of the reasons geo.incidents.feeds gives for a case it could not place
UNLOCATED_ZH = {
    "no coordinates": "没有坐标",
    "not numbers": "坐标不是数字",
    "coordinates are 0,0": "坐标为 0,0",
    "coordinates out of range": "坐标超出范围",
    "coordinates out of range (lon/lat swapped?)": "坐标超出范围（经纬度是否颠倒？）",
    "outside the district": "不在辖区内",
    "outside the district (lon/lat swapped?)": "不在辖区内（经纬度是否颠倒？）",
    "geocoder fallback point": "地理编码的默认点（疑似未能定位）",
}


def _geometry_zh(reason: str) -> str:
    """``geometry is a LineString, not a point`` in Chinese; other text as it is."""
    if reason.startswith("geometry is a ") and reason.endswith(", not a point"):
        kind = reason.removeprefix("geometry is a ").removesuffix(", not a point")
        return f"几何类型为 {kind}，不是点"
    return reason


@incidents_app.command("relocate")
def incidents_relocate(
    crs: Annotated[
        str,
        typer.Option(
            "--crs", help="已存坐标的实际坐标系 the stored coordinates' real system: gcj02 | bd09"
        ),
    ],
    db: DbOption = DEFAULT_DB,
    source: Annotated[
        str | None, typer.Option(help="只改此来源的案件 only this feed's cases")
    ] = None,
    author: AuthorOption = "",
    as_json: JsonOption = False,
) -> None:
    """重新定位 Read stored case coordinates as --crs (a GCJ-02 feed imported as WGS84): the cases
    move to their true grids and workers; logged, and refused a second time."""
    store = store_for(db)
    counts = cases.relocate_cases(store, crs=crs, source=source, author=author)
    shown = table(
        say("重新定位", "Relocated"),
        [
            (say("已重新定位", "relocated"), counts["relocated"]),
            (say("落在辖区外", "now outside the district"), counts["now_outside"]),
            (say("无坐标（未改）", "without coordinates (left)"), counts["without_coordinates"]),
        ],
    )
    report(shown, counts, as_json=as_json)
    if counts["without_coordinates"]:
        note(
            say(
                f"{counts['without_coordinates']} 条案件没有坐标：请用 --crs {crs} --update 重新导入原始数据",
                f"{counts['without_coordinates']} cases have no stored coordinates: re-import "
                f"their feed with --crs {crs} --update",
            )
        )


@incidents_app.command("update")
def incidents_update(
    incident_id: Annotated[str, typer.Argument(help="案件编号 (source:id)")],
    status: Annotated[
        str, typer.Option(help="registered | dispatched | handled | verified | closed | rejected")
    ],
    db: DbOption = DEFAULT_DB,
    note: Annotated[str, typer.Option(help="备注")] = "",
    author: AuthorOption = "",
) -> None:
    """推进案件流程 Move a case one step along 上报→立案→派遣→处置→核查→结案."""
    store = store_for(db)
    record = cases.update_incident(store, incident_id, status=status, actor=author, note=note)
    print_json({k: v for k, v in record.items() if k != "events"})


@incidents_app.command("list")
def incidents_list(
    db: DbOption = DEFAULT_DB,
    grid: Annotated[str | None, typer.Option()] = None,
    community: Annotated[str | None, typer.Option()] = None,
    status: Annotated[str | None, typer.Option()] = None,
    limit: Annotated[
        int,
        typer.Option(
            min=0,
            help="最多列出几条，0 为全部 at most this many cases, 0 for all",
            show_default=True,
        ),
    ] = 50,
) -> None:
    """列出事件 List cases (JSON on stdout; how many more there are on stderr)."""
    from geo.jsonvalue import json_records

    store = store_for(db)
    found = records.list_incidents(store, grid=grid, community=community, status=status)
    shown = found if limit == 0 else found.head(limit)
    print_json(json_records(shown))
    if len(found) > len(shown):
        more = len(found) - len(shown)
        note(
            say(
                f"还有 {more} 条未列出（共 {len(found)} 条）；用 --limit 0 列出全部",
                f"{more} more not shown ({len(found)} in all); --limit 0 lists them all",
            )
        )


@incidents_app.command("stats")
def incidents_stats(
    db: DbOption = DEFAULT_DB,
    by: Annotated[
        str,
        typer.Option(
            help="grid | community | worker; street | county | city | province: 汇总各街道 "
            "roll the streets of --division up (PostGIS)"
        ),
    ] = "grid",
    since: Annotated[str | None, typer.Option(help="起 e.g. 2026-08-01")] = None,
    until: Annotated[str | None, typer.Option(help="止 e.g. 2026-11-01")] = None,
    output_format: Annotated[
        str, typer.Option("--format", help="table | csv | json | xlsx (Excel, 中文表头)")
    ] = "table",
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="写入文件（xlsx 必填；- 为标准输出）file to write, - for stdout"
        ),
    ] = None,
    excel: Annotated[
        bool, typer.Option("--excel", help="CSV 带 BOM，Excel 直接打开 UTF-8 with BOM for Excel")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """事件统计 Statistics per grid, community or worker, or per street, county or city of the
    database's streets under --division (--format xlsx: a workbook with Chinese headers)."""
    from geo.jsonvalue import json_records

    window = {"since": _time(since, "--since"), "until": _time(until, "--until")}
    if by in ROLLUP_LEVELS:
        rollup = regions.division_rollup(
            str(db), by=by, under=rollup_under(db, current_division()), **window
        )
        stats = pd.DataFrame(rollup.drop(columns=rollup.geometry.name))
    elif by in ("grid", "community", "worker"):
        stats = cases.incident_statistics(store_for(db), by=by, **window)
    else:
        raise InputError(
            f"--by must be grid, community, worker, street, county, city or province, not {by!r}",
            zh="--by 只能是 grid、community、worker、street、county、city 或 province",
        )
    output_format = "json" if as_json else output_format
    if output_format in ("csv", "xlsx"):
        _write_stats(stats, output_format, output, db=db, excel=excel)
    elif output_format == "json":
        print_json(json_records(stats.reset_index()))
    elif output_format == "table":
        report(_stats_table(stats, by), None, as_json=False)
    else:
        raise InputError(
            f"--format must be table, csv, json or xlsx, not {output_format!r}",
            zh="--format 只能是 table、csv、json 或 xlsx",
        )


def _stats_table(stats: pd.DataFrame, by: str) -> Table:
    """The statistics as a table: the usual columns, and a rollup's name, streets, open cases."""
    shown = [
        "reported",
        "registered",
        "closed",
        "overdue",
        "registration_rate",
        "closure_rate",
        "on_time_rate",
        "median_handling_hours",
    ]
    if by in ROLLUP_LEVELS:
        shown = ["streets", "reported", "open", *shown[1:-1]]
    named = ["name"] if "name" in stats.columns else []
    return rows_table(
        say("事件统计", "Incident statistics"),
        [by, *named, *(Column(column, justify="right") for column in shown)],
        (
            (key, *(row[c] for c in named), *(_cell(row[c], c) for c in shown))
            for key, row in stats.iterrows()
        ),
    )


def _write_stats(
    stats: pd.DataFrame, output_format: str, output: Path | None, *, db: Path, excel: bool
) -> None:
    """The statistics as CSV (stdout unless --output) or as an .xlsx workbook (--output)."""
    from geo.exchange.csvsafe import csv_safe_frame
    from geo.exchange.exports import write_stats

    if output_format == "xlsx" and output is None:
        raise InputError(
            "--format xlsx needs --output FILE.xlsx (or --output - for stdout)",
            zh="--format xlsx 需要 --output 文件名.xlsx（或 --output - 输出到标准输出）",
        )
    target = output if output is not None else Path("-")
    with output_or_stdout(target, db=db, suffix=f".{output_format}") as scratch:
        if output_format == "xlsx":
            write_stats(stats, scratch)
        else:
            encoding = "utf-8-sig" if excel else "utf-8"
            csv_safe_frame(stats.reset_index()).to_csv(scratch, index=False, encoding=encoding)
    if not is_stdio(target):
        note(say(f"已写入 {target}", f"written {target}"))


@categories_app.command("list")
def categories_list(db: DbOption = DEFAULT_DB, as_json: JsonOption = False) -> None:
    """列出事件分类 The project's category catalogue (its own, or the national one)."""
    catalogue = records.catalogue(store_for(db))
    columns = ["code", "class_zh", "name_zh", "name_en", "time_limit"]
    shown = rows_table(
        say(f"事件分类（{len(catalogue)} 类）", f"Incident categories ({len(catalogue)})"),
        columns,
        catalogue[columns].itertuples(index=False),
    )
    report(shown, catalogue[["class_code", *columns]].to_dict("records"), as_json=as_json)


@categories_app.command("load")
def categories_load(
    catalogue_csv: Annotated[
        Path,
        typer.Argument(help="分类 CSV (code,class_code,name_zh,name_en,aliases,time_limit,...)"),
    ],
    db: DbOption = DEFAULT_DB,
    author: AuthorOption = "",
) -> None:
    """载入本地事件分类 Load the city's own category catalogue."""
    refuse_project_as_input(db, catalogue_csv)
    store = store_for(db)
    count = cases.load_project_catalogue(store, catalogue_csv, author=author)
    note(say(f"已载入 {count} 个分类", f"loaded {count} categories"))


def _time(text: str | None, name: str) -> pd.Timestamp | None:
    """``--since``/``--until``: strict ISO 8601 from 1900 to 2199, as the API takes them."""
    from geo.incidents.feeds import parse_iso_time

    return parse_iso_time(text, name)


def _cell(value: object, column: str) -> str:
    """Counts as integers (``1``, not ``1.00``); rates and hours with two decimals; missing empty."""
    if isinstance(value, float):
        if pd.isna(value):
            return ""
        if column.endswith(("_rate", "_hours")):
            return f"{value:.2f}"
        return f"{value:.0f}"
    return str(value)
