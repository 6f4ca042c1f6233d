"""``gridmap map`` and ``gridmap demo``: HTML maps of a project, and the demo district end to end."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from api.cli.cases import _time
from api.cli.common import (
    DEFAULT_DB,
    DbOption,
    console,
    current_division,
    is_stdio,
    lazy,
    output_file,
    output_or_stdout,
    progress_bar,
    say,
    store_for,
    table,
)
from api.cli.scope import rollup_under
from geo.errors import Conflict, InputError
from geo.usecases.projectfiles import remove_project_files

if TYPE_CHECKING:
    import folium

    from api import mapping
    from geo.demo import DemoDistrict
    from geo.people import roster as rosters
    from geo.plans import store as plans
    from geo.storage.store import Store
    from geo.usecases import district as project
    from geo.usecases import divisions as regions
    from geo.usecases import incidents as cases
    from geo.usecases import partition as partitioning
    from maps.project import MapRequest
else:  # imported by the commands that use them (issue #16: start-up)
    plans, project = lazy("geo.plans.store"), lazy("geo.usecases.district")
    cases, regions = lazy("geo.usecases.incidents"), lazy("geo.usecases.divisions")
    partitioning = lazy("geo.usecases.partition")
    rosters = lazy("geo.people.roster")
    mapping = lazy("api.mapping")

BASEMAPS = ("osm", "tianditu", "tianditu-vec", "tianditu-img", "amap", "none")


def register(app: typer.Typer) -> None:
    app.command("map")(map_command)
    app.command("print")(print_command)
    app.command("demo")(demo_command)


def map_command(
    output: Annotated[
        Path, typer.Argument(help="输出 HTML 文件（- 为标准输出）output .html, - for stdout")
    ],
    db: DbOption = DEFAULT_DB,
    community: Annotated[str | None, typer.Option(help="只画一个社区 one community")] = None,
    grid: Annotated[str | None, typer.Option(help="只画一个网格 one grid (code)")] = None,
    since: Annotated[str | None, typer.Option(help="事件起 incidents since")] = None,
    until: Annotated[str | None, typer.Option(help="事件止 incidents until")] = None,
    basemap: Annotated[
        str, typer.Option(help=" | ".join(BASEMAPS) + " | tiles[:PATH|URL] 本地瓦片 local tiles")
    ] = "osm",
    lang: Annotated[str, typer.Option(help="zh | en")] = "zh",
    offline: Annotated[
        bool, typer.Option(help="离线单文件，无底图 one self-contained file, no tiles")
    ] = False,
    include_contacts: Annotated[
        bool, typer.Option(help="显示网格员电话 show workers' phones")
    ] = False,
    plan: Annotated[int | None, typer.Option(help="方案编号（默认已发布）plan id")] = None,
    diff_against: Annotated[
        int | None, typer.Option(help="与此方案对比 highlight changes against this plan")
    ] = None,
) -> None:
    """生成网格地图 Write an HTML map of the district, a community or a grid; with a county or
    city --division, a map of its streets, each opening into its own map (written beside it in
    OUTPUT_files/)."""
    from maps.project import MapRequest

    _check_map_options(output, basemap=basemap, lang=lang)
    # a county or city --division: a map of its streets, no one project's store
    store = None if _is_above_street(current_division()) else store_for(db)
    if store is not None and diff_against is not None:
        m = _diff_map(store, diff_against, plan, lang=lang, offline=offline, basemap=basemap)
    else:
        request = MapRequest(
            community=community,
            grid=grid,
            since=_time(since, "--since"),
            until=_time(until, "--until"),
            basemap=basemap,
            lang=lang,
            offline=offline,
            include_contacts=include_contacts,
            plan_id=plan,
            tianditu_key=os.environ.get("GRIDMAP_TIANDITU_KEY"),
        )
        if store is None:
            _division_maps(output, db=db, request=request, diff_against=diff_against)
            return
        m = mapping.project_map(store, request)
    _write_map(m, output, db=db, offline=offline)


def _is_above_street(division: str | None) -> bool:
    """Whether ``--division`` names a province, city or county (a map of streets)."""
    from geo.divisions import parse_division

    return division is not None and parse_division(division).level in (
        "province",
        "city",
        "county",
    )


def _division_maps(output: Path, *, db: str, request: MapRequest, diff_against: int | None) -> None:
    """The streets under the county or city ``--division`` on one page, each street's own map
    written beside it in ``<output stem>_files/<code>.html`` and linked from its outline."""
    from geo.divisions import parse_division
    from maps.divisions import division_map

    under = str(rollup_under(db, current_division()))
    if request.community or request.grid or request.plan_id is not None or diff_against:
        raise InputError(
            "a county or city map shows its streets: --community, --grid, --plan and "
            "--diff-against go with one street's --division",
            zh="县、市级地图显示各街道：--community、--grid、--plan、--diff-against 需指定单个街道",
        )
    if is_stdio(output):
        raise InputError(
            "a county or city map links to its streets' maps written beside it: give an .html "
            "file, not -",
            zh="县、市级地图链接到其旁的各街道地图：请给出 .html 文件，不能用 -",
        )
    streets = regions.division_rollup(
        str(db), by="street", under=under, since=request.since, until=request.until
    )
    links = _street_maps(output, streets.index.tolist(), db=db, request=request)
    code = parse_division(under).code
    name = regions.division_names(str(db)).get(code, "")
    m = division_map(
        streets,
        figures=regions.MAP_FIGURES,
        links=links,
        lang=request.lang,
        basemap="none" if request.offline else request.basemap,
        tianditu_key=request.tianditu_key,
        title=(f"{name} {code}".strip(),),
    )
    _write_map(m, output, db=db, offline=request.offline)


def _street_maps(
    output: Path, codes: list[str], *, db: str, request: MapRequest
) -> dict[str, str | None]:
    """Each street's own map in ``<output stem>_files/``: its link relative to ``output``
    (None for a street without a published plan, which has no map yet)."""
    from geo.errors import NotFound
    from geo.storage.store import open_store
    from maps.render import save_map

    folder = output.with_name(f"{output.stem}_files")
    folder.mkdir(exist_ok=True)
    links: dict[str, str | None] = {}
    for code in codes:
        store = open_store(db, division=code)
        try:
            m = mapping.project_map(store, request)
        except NotFound:
            links[code] = None
            continue
        finally:
            store.engine.dispose()
        with output_file(folder / f"{code}.html", db=db) as scratch:
            save_map(m, scratch, offline=request.offline)
        links[code] = f"{folder.name}/{code}.html"
    return links


def _check_map_options(output: Path, *, basemap: str, lang: str) -> None:
    """Refuse an unknown basemap or language, or an output that is not an HTML file."""
    if basemap not in BASEMAPS and basemap != "tiles" and not basemap.startswith("tiles:"):
        raise InputError(
            f"unknown basemap {basemap!r}; choose one of {', '.join(BASEMAPS)} or tiles:PATH|URL",
            zh=f"未知底图 {basemap}",
        )
    _check_lang(lang)
    if not is_stdio(output) and output.suffix.lower() not in (".html", ".htm"):
        raise InputError(
            f"the map is an HTML file: {output.name} should end in .html",
            zh="地图输出文件应以 .html 结尾",
        )


def _check_lang(lang: str) -> None:
    if lang not in ("zh", "en"):
        raise InputError(f"--lang must be zh or en, not {lang!r}", zh="--lang 只能是 zh 或 en")


def _diff_map(
    store: Store, before: int, after: int | None, *, lang: str, offline: bool, basemap: str
) -> folium.Map:
    """Plan ``after`` (the published one by default) with its changes since ``before``."""
    after = after if after is not None else plans.published_plan_id(store)
    return mapping.plan_diff_map(
        store, before, after, lang=lang, basemap="none" if offline else basemap, offline=offline
    )


def _write_map(m: folium.Map, output: Path, *, db: Path, offline: bool) -> None:
    """Save ``m`` whole to ``output`` (``-``: stdout) and say where it went."""
    from maps.render import save_map

    with output_or_stdout(output, db=db, suffix=".html") as scratch:
        save_map(m, scratch, offline=offline)
    if not is_stdio(output):
        console.print(say(f"地图已写入 {output}", f"map written to {output}"))


def print_command(
    output: Annotated[Path, typer.Argument(help="输出 PDF 或 PNG output .pdf | .png")],
    db: DbOption = DEFAULT_DB,
    paper: Annotated[str, typer.Option(help="A4 | A3")] = "A4",
    landscape: Annotated[
        bool, typer.Option("--landscape/--portrait", help="横向/纵向 orientation")
    ] = False,
    community: Annotated[str | None, typer.Option(help="只印一个社区 one community")] = None,
    grid: Annotated[str | None, typer.Option(help="只印一个网格 one grid (code)")] = None,
    plan: Annotated[int | None, typer.Option(help="方案编号（默认已发布）plan id")] = None,
    lang: Annotated[str, typer.Option(help="zh | en")] = "zh",
    basemap: Annotated[
        str, typer.Option(help="none | tiles[:PATH|URL] 底图（打印不联网）basemap, offline")
    ] = "none",
    signboard: Annotated[
        bool, typer.Option(help="公示牌：每个网格一页 one sheet per grid with its worker")
    ] = False,
    with_contacts: Annotated[
        bool, typer.Option(help="公示牌印网格员电话 print workers' phones")
    ] = False,
) -> None:
    """打印网格图 Print a grid map (A4/A3) to PDF or PNG through chromium, or signboards."""
    from maps.printing import Sheet
    from maps.project import MapRequest

    suffix = output.suffix.lower()
    if suffix not in (".pdf", ".png"):
        raise InputError(
            f"print writes .pdf or .png, not {output.name}", zh="打印输出应为 .pdf 或 .png 文件"
        )
    if signboard and suffix != ".pdf":
        raise InputError(
            "signboards are one PDF with a page per grid: give a .pdf",
            zh="公示牌输出为多页 PDF，请给出 .pdf 文件",
        )
    _check_lang(lang)
    if basemap != "none" and basemap != "tiles" and not basemap.startswith("tiles:"):
        raise InputError(
            f"print draws without internet: --basemap none or tiles:PATH|URL, not {basemap!r}",
            zh="打印不联网：底图只能是 none 或 tiles:路径|URL",
        )
    sheet = Sheet(paper.upper(), landscape=landscape)
    store = store_for(db)
    request = MapRequest(
        community=community,
        grid=grid,
        basemap=basemap,
        lang=lang,
        include_contacts=with_contacts,
        plan_id=plan,
    )
    with output_file(output, db=db) as scratch:
        mapping.print_map(store, request, scratch, sheet=sheet, signboard=signboard)
    console.print(say(f"已打印到 {output}", f"printed to {output}"))


#: the columns of the demo's incidents.csv (a geo.incidents.feeds.IncidentMapping)
DEMO_COLUMNS = {
    "id_col": "编号",
    "lon_col": "经度",
    "lat_col": "纬度",
    "category_col": "类别",
    "time_col": "上报时间",
    "description_col": "问题描述",
    "address_col": "地址",
}


def demo_command(
    out_dir: Annotated[Path, typer.Option("--out", help="输出目录 output folder")] = Path("demo"),
    seed: Annotated[int, typer.Option(min=0, help="随机种子 seed")] = 2026,
    households: Annotated[
        bool, typer.Option(help="生成虚构住户（一户一档）synthetic households and residents")
    ] = True,
) -> None:
    """演示：生成碧溪新区示例数据，导入、划分网格、派员、导入事件并出图. Build and map the demo district."""
    from geo.demo import demo_district

    db = out_dir / "gridmap.gpkg"
    inputs = out_dir / "input"
    _clear_demo_folder(db, inputs)
    district = demo_district(seed=seed)
    _write_demo_inputs(district, inputs)
    store = store_for(db, create=True)
    with progress_bar() as update:
        facts = _import_demo(store, inputs, district, progress=update)
    facts.update(_demo_cases(store, inputs, district))
    if households:
        facts["households"] = _demo_households(store, inputs, out_dir=out_dir, seed=seed)
    maps = _write_demo_maps(store, db=db, out_dir=out_dir)
    _report_demo(facts, db=db, maps=maps)


def _write_demo_inputs(district: DemoDistrict, inputs: Path) -> None:
    """The demo's input files, as a user would bring them (GeoJSON in WGS84, CSV in UTF-8)."""
    inputs.mkdir(parents=True)
    district.buildings.to_crs(4326).to_file(inputs / "buildings.geojson")
    district.communities.to_crs(4326).to_file(inputs / "communities.geojson")
    district.roads.to_crs(4326).to_file(inputs / "roads.geojson")
    district.workers.to_csv(inputs / "workers.csv", index=False, encoding="utf-8-sig")
    district.incidents.to_csv(inputs / "incidents.csv", index=False, encoding="utf-8-sig")


def _import_demo(
    store: Store, inputs: Path, district: DemoDistrict, *, progress: Callable[..., None]
) -> dict[str, Any]:
    """Import the buildings, name the district, load the roster and partition; the figures."""
    from geo.people.workers import read_roster

    imported = project.import_buildings(
        store,
        inputs / "buildings.geojson",
        options=project.ReadOptions(id_field="building_id", households_field="households"),
        communities_path=inputs / "communities.geojson",
        communities_field="community",
        roads_path=inputs / "roads.geojson",
        progress=progress,
    )
    with store.transaction() as conn:
        store.set_setting(conn, "demo", True)
        store.set_setting(conn, "division_code", "320581104")
        store.set_setting(conn, "district_name", "碧溪新区")  # the maps' title
    roster = read_roster(inputs / "workers.csv", communities=district.communities["community"])
    rosters.import_roster(store, roster, author="demo")
    outcome = partitioning.partition_project(store, author="demo", progress=progress)
    return {"imported": imported, "summary": outcome.summary, "workers": len(roster)}


def _demo_cases(store: Store, inputs: Path, district: DemoDistrict) -> dict[str, Any]:
    """Import the demo's 12345 cases and play their workflow (assigned, handled, closed)."""
    from geo.incidents.feeds import IncidentMapping

    cases_summary = cases.import_incidents(
        store,
        inputs / "incidents.csv",
        mapping=IncidentMapping(**DEMO_COLUMNS),
        source="12345",
        author="demo",
    )
    history = district.workflow.assign(
        incident_id="12345:" + district.workflow["编号"],
        at=district.workflow["at"].dt.tz_localize("Asia/Shanghai"),
        note="",
    )
    cases.advance_cases(store, history[["incident_id", "status", "actor", "note", "at"]])
    return {"cases": cases_summary}


def _demo_households(store: Store, inputs: Path, *, out_dir: Path, seed: int) -> Any:
    """Synthetic 一户一档 households, sealed with a demo key beside the project (never in it)."""
    from geo.usecases.households import seed_demo_households

    return seed_demo_households(
        store,
        key_file=out_dir / "demo-household.key",
        list_file=inputs / "households.csv",
        seed=seed,
    )


def _write_demo_maps(store: Store, *, db: Path, out_dir: Path) -> tuple[Path, Path]:
    """The district map with tiles and its self-contained offline twin."""
    from maps.project import MapRequest
    from maps.render import save_map

    map_path, offline_path = out_dir / "map.html", out_dir / "map-offline.html"
    with output_file(map_path, db=db) as scratch:
        save_map(mapping.project_map(store, MapRequest()), scratch)
    with output_file(offline_path, db=db) as scratch:
        save_map(mapping.project_map(store, MapRequest(offline=True)), scratch, offline=True)
    return map_path, offline_path


def _report_demo(facts: dict[str, Any], *, db: Path, maps: tuple[Path, Path]) -> None:
    """The demo's figures and files on stderr; the map's path on stdout."""
    imported, s, located = facts["imported"], facts["summary"], facts["cases"]
    rows = [
        (say("建筑", "buildings"), imported.buildings),
        (say("社区", "communities"), imported.communities),
        (say("网格", "grids"), s["grids"]),
        (say("规模达标比例", "share in range"), f"{s['share_in_range']:.1%}"),
        (say("连片比例", "contiguous share"), f"{s['share_contiguous']:.1%}"),
        (say("网格员", "workers"), facts["workers"]),
        (
            say("事件（已定位）", "incidents (located)"),
            f"{located['added']} ({located['located']})",
        ),
    ]
    if "households" in facts:
        done = facts["households"].outcome
        rows.append(
            (say("住户（待核对）", "households (to review)"), f"{done.added} ({done.review})")
        )
    console.print(table(say("碧溪新区演示", "Bixi demo district"), rows))
    map_path, offline_path = maps
    console.print(say("项目文件", "project file") + f": {db.resolve()}", markup=False)
    console.print(say("地图", "map") + f": {map_path.resolve()}", markup=False)
    console.print(say("离线地图", "offline map") + f": {offline_path.resolve()}", markup=False)
    if "households" in facts:
        key = facts["households"].key_file.resolve()
        console.print(
            say("住户演示密钥", "demo household key") + f": GRIDMAP_HOUSEHOLD_KEY_FILE={key}",
            markup=False,
        )
    console.print(
        say("用浏览器打开地图，例如", "open the map in a browser, e.g.") + f": xdg-open {map_path}",
        markup=False,
    )
    print(map_path.resolve())


DEMO_INPUTS = {
    "buildings.geojson",
    "communities.geojson",
    "roads.geojson",
    "workers.csv",
    "incidents.csv",
    "households.csv",
}


def _clear_demo_folder(db: Path, inputs: Path) -> None:
    """Remove an earlier demo from its folder; refuse a folder that holds anything else."""
    is_demo = db.exists() and store_for(db).get_setting("demo") is True
    if db.exists() and not is_demo:
        raise Conflict(
            f"{db} holds a project that is not the demo; choose another --out",
            zh=f"{db} 不是演示项目，请换一个 --out 目录",
        )
    ours = {p.name for p in inputs.iterdir()} <= DEMO_INPUTS if inputs.is_dir() else False
    if inputs.exists() and not (is_demo or ours):
        raise Conflict(
            f"{inputs} exists and is not the demo's; choose another --out",
            zh=f"{inputs} 已存在且不是演示数据，请换一个 --out 目录",
        )
    if is_demo or ours:
        remove_project_files(db)
        shutil.rmtree(inputs, ignore_errors=True)
