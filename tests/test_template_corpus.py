"""Data is data: hostile text in every field the store holds comes back verbatim and never runs.

Issue #13, item 1: branca re-rendered every macro's output as a Jinja2 template, so a case
description ``{{ 7*7 }}`` showed ``49`` and ``popen('id')`` ran on the server. Here the Kunming
footprints are imported with template syntax (``{{ }}``, ``{% %}``, ``{# #``, ``${}``, the
``os.popen`` payload) and script payloads in building ids, names and addresses and community
names; the roster's worker ids and names, the cases' ids, descriptions and addresses and a plan's
note carry them too. Every page the API serves (district, community and grid maps, the plan diff
map, the editor) and every map the CLI writes is rendered; the JSON data blocks are parsed back
and must hold the text exactly, and chromium must show it without running any of it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import quote

import folium
import geopandas as gpd
import pandas as pd
import pytest
from api_support import bearer, role_tokens, uvicorn_server
from branca.element import Element
from browser import launch, open_page
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from api.cli import app as cli_app
from api.settings import Settings
from geo.incidents import records as incident_records
from geo.people import roster as rosters
from geo.people.workers import read_roster
from geo.plans import editing
from geo.plans import store as plans
from geo.storage.store import open_store
from geo.usecases import district as project
from geo.usecases import staffing
from geo.usecases.partition import partition_project

POPEN = "{{ this.__init__.__globals__.__builtins__.__import__('os').popen('id').read() }}"
TEMPLATES = ("{{ 7*7 }}", "{% if 1 %}x{% endif %}", "{# c #", "${7*7}", POPEN)
SCRIPTS = (
    "</script><script>window.__pwned=1</script>",
    "<img src=x onerror=window.__pwned=2>",
)
PAYLOADS = TEMPLATES + SCRIPTS
#: a field's text as it would read had a payload been evaluated (``uid=`` is what ``id`` prints)
EVALUATED = re.compile(
    r"(?:B|楼|路|社区|W|员|J|井盖|地址|note)\d+ (?:49|x|\$49)(?![\w{])|uid=\d+|TemplateSyntaxError"
)
DATA_BLOCK = re.compile(r'<script type="application/json" id="(gm-[^"]+)">(.*?)</script>', re.S)
PWNED = "window.__pwned === undefined && !document.querySelector('img[src=x]')"
READY = "window.__gridmapReady === true"


def hostile(kind: str, k: int) -> str:
    """The ``k``-th hostile value of a field: every payload, numbered so that ids stay unique."""
    return f"{kind}{k} {PAYLOADS[k % len(PAYLOADS)]}"


# -- the project ----------------------------------------------------------------------------------


def _source(shared_data: Path, folder: Path) -> Path:
    buildings = gpd.read_file(shared_data / "kunming_buildings.geojson")
    communities = {name: k for k, name in enumerate(buildings["community"].unique())}
    buildings = buildings.assign(
        building_id=[hostile("B", k) for k in range(len(buildings))],
        name=[hostile("楼", k) for k in range(len(buildings))],
        address=[hostile("路", k) for k in range(len(buildings))],
        community=buildings["community"].map(lambda c: hostile("社区", communities[c])),
    ).drop(columns=["id"])
    path = folder / "hostile.geojson"
    buildings.to_file(path, driver="GeoJSON")
    return path


def _roster(store, folder: Path) -> None:
    communities = store.read_layer("communities", columns=["community"])["community"]
    rows = [
        {"工号": hostile("W", k), "姓名": hostile("员", k), "手机": f"1390000{k:04d}", "社区": c}
        for k, c in enumerate(communities)
    ]
    path = folder / "roster.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    rosters.import_roster(store, read_roster(path, communities=communities), author="tests")
    staffing.fill_workers(store, author="tests")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, shared_data) -> dict:
    """A project with hostile text in every field, a draft copy with a hostile note, and cases."""
    folder = tmp_path_factory.mktemp("corpus")
    db = folder / "project.gpkg"
    store = open_store(db, create=True)
    project.import_buildings(
        store,
        _source(shared_data, folder),
        options=project.ReadOptions(community_field="community"),
    )
    partition_project(store, author="tests")
    _roster(store, folder)
    published = plans.published_plan_id(store)
    draft = editing.copy_plan(store, published, author="tests", note=hostile("note", 0))
    store.engine.dispose()
    tokens = role_tokens(db)
    buildings = open_store(db).read_layer("buildings").to_crs(4326)
    points = buildings.geometry.representative_point()
    cases = [
        {
            "id": hostile("J", k),
            "description": hostile("井盖", k),
            "address": hostile("地址", k),
            "lon": points.iloc[k].x,
            "lat": points.iloc[k].y,
        }
        for k in range(len(PAYLOADS) * 2)
    ]
    with TestClient(create_app(Settings(db=db))) as client:
        answer = client.post(
            "/incidents",
            json={"source": "12345", "incidents": cases},
            headers=bearer(tokens["staff"]),
        )
        assert answer.status_code == 200, answer.text
    return {"db": db, "tokens": tokens, "draft": draft, "published": published, "cases": cases}


# -- what a page holds ------------------------------------------------------------------------------


def strings_in(value) -> set[str]:
    """Every string in a parsed JSON value (dictionary-encoded columns included)."""
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        return set().union(*(strings_in(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(strings_in(v) for v in value)) if value else set()
    return set()


def page_strings(html: str) -> set[str]:
    """The strings of every JSON block of a page (map data, editor configuration)."""
    blocks = DATA_BLOCK.findall(html)
    assert blocks, "the page has no data block"
    return set().union(*(strings_in(json.loads(text)) for _, text in blocks))


def assert_inert(html: str) -> None:
    """The payloads are nowhere in the page source as markup, and none was evaluated."""
    assert "<script>window.__pwned" not in html
    assert "<img src=x" not in html
    assert not EVALUATED.search(html), EVALUATED.search(html)


def expected(corpus: dict) -> dict[str, set[str]]:
    """The hostile strings each kind of field holds in the store."""
    store = open_store(corpus["db"])
    buildings = store.read_layer("buildings")
    team = rosters.roster(store)
    cases = incident_records.list_incidents(store)
    return {
        "community": set(buildings["community"]),
        "building": set(buildings["building_id"]) | set(buildings["name"]),
        "address": set(buildings["address"]),
        "worker_name": set(team["name"]),
        "worker_id": set(team["worker_id"]),
        "case": set(cases["incident_id"]) | set(cases["description"]) | set(cases["address"]),
        "case_text": set(cases["description"]) | set(cases["address"]),
    }


def incident_store_ids(corpus: dict) -> list[str]:
    return incident_records.list_incidents(open_store(corpus["db"]))["incident_id"].tolist()


def assert_verbatim(html: str, wanted: set[str]) -> None:
    assert_inert(html)
    missing = wanted - page_strings(html)
    assert not missing, sorted(missing)[:5]


def community_with(corpus: dict, text: str) -> str:
    return next(c for c in sorted(expected(corpus)["community"]) if text in c)


def some_grid(corpus: dict) -> str:
    return str(open_store(corpus["db"]).read_layer("grids")["grid_code"].iloc[0])


# -- the renderer itself ----------------------------------------------------------------------------


def test_importing_maps_makes_every_branca_element_render_its_text_verbatim():
    import maps  # noqa: F401 - the import installs it
    from maps import verbatim

    assert verbatim.installed()
    for text in PAYLOADS:
        assert Element(text).render() == text


def test_a_folium_popup_tooltip_and_macro_output_are_never_templated_again():
    import maps  # noqa: F401

    m = folium.Map(tiles=None)
    folium.Marker([25, 102], popup=folium.Popup(TEMPLATES[2] + POPEN), tooltip=TEMPLATES[1]).add_to(
        m
    )
    html = m.get_root().render()
    assert "{% if 1 %}x{% endif %}" in html
    assert "__import__(" in html
    assert_inert(html)


@pytest.mark.parametrize("text", PAYLOADS)
def test_json_for_html_round_trips_and_holds_no_template_tag_or_markup(text):
    from maps.escape import json_for_html

    encoded = json_for_html({"k": [text, {"{{": text}], "n": float("nan")})
    assert json.loads(encoded) == {"k": [text, {"{{": text}], "n": None}
    assert not re.search(r"\{[{%#]|<|>|&|'", encoded)


# -- every page the API serves ----------------------------------------------------------------------


def test_every_api_page_gives_the_stored_text_back_verbatim(corpus):
    want, tokens = expected(corpus), corpus["tokens"]
    everything = want["community"] | want["building"] | want["address"] | want["case"]
    community, slashed = community_with(corpus, "{{"), community_with(corpus, "</script>")
    grid = some_grid(corpus)
    draft, published = corpus["draft"], corpus["published"]
    # what callers wrote about cases is for staff and above (as GET /incidents), checked below
    for_viewers = (everything - want["case_text"]) | set(incident_store_ids(corpus))
    pages = {
        "/maps/district.html": ("viewer", for_viewers | want["worker_name"]),
        f"/maps/communities/{quote(community, safe='')}.html": ("viewer", {community}),
        f"/maps/communities/{quote(slashed, safe='')}.html": ("viewer", {slashed}),
        f"/maps/grids/{grid}.html": ("viewer", set()),
        f"/plans/{draft}/diff/map?against={published}": (
            "viewer",
            want["community"] | want["worker_name"],
        ),
        f"/plans/{draft}/edit": ("planner", want["worker_id"] | want["worker_name"]),
    }
    with TestClient(create_app(Settings(db=corpus["db"])), raise_server_exceptions=True) as client:
        for path, (role, wanted) in pages.items():
            answer = client.get(path, headers=bearer(tokens[role]))
            assert answer.status_code == 200, (path, answer.text[:300])
            assert_verbatim(answer.text, wanted)
        staff = client.get(
            "/maps/district.html",
            params={"include_contacts": True},
            headers=bearer(tokens["staff"]),
        )
        assert_verbatim(staff.text, everything)


def test_public_maps_give_the_stored_text_back_verbatim(corpus):
    with TestClient(create_app(Settings(db=corpus["db"], public_maps=True))) as anonymous:
        answer = anonymous.get("/maps/district.html")
        assert answer.status_code == 200
        assert_verbatim(answer.text, expected(corpus)["building"])


# -- every map the CLI writes -----------------------------------------------------------------------


def test_every_cli_map_gives_the_stored_text_back_verbatim(corpus, tmp_path):
    want, db = expected(corpus), corpus["db"]
    runs = {
        "district": (
            ["map", tmp_path / "district.html"],
            want["building"] | want["case"] | want["worker_name"],
        ),
        "community": (
            ["map", tmp_path / "community.html", "--community", community_with(corpus, "/")],
            {community_with(corpus, "/")},
        ),
        "grid": (["map", tmp_path / "grid.html", "--grid", some_grid(corpus)], set()),
        "diff": (
            ["plan", "diff", corpus["published"], corpus["draft"], "--map", tmp_path / "diff.html"],
            want["community"] | want["worker_name"],
        ),
    }
    for name, (args, wanted) in runs.items():
        result = CliRunner().invoke(cli_app, [*map(str, args), "--db", str(db)])
        assert result.exit_code == 0, (name, result.output)
        html = (tmp_path / f"{name}.html").read_text(encoding="utf-8")
        assert_verbatim(html, wanted)


def test_a_map_of_expressions_shows_them_as_text_and_runs_no_command(shared_data):
    # without the comment payload, a page that re-templated data would render, showing 49 and uid=
    from test_maps_layers import make_layers

    import maps

    buildings = gpd.read_file(shared_data / "kunming_buildings.geojson")
    layers = make_layers(buildings, n_incidents=20, untrusted=[TEMPLATES[0], POPEN, TEMPLATES[1]])
    html = maps.render_html(
        maps.district_map(
            layers["grids"], layers["buildings"], layers["communities"], layers["incidents"]
        )
    )
    assert {TEMPLATES[0], POPEN, TEMPLATES[1]} <= page_strings(html)
    assert "uid=" not in html


# -- what chromium shows -----------------------------------------------------------------------------

VIEW = "Object.values(window.gridmap.maps)[0]"
#: every popup the map can open, as the text a person reads
SHOWN = f"""(() => {{
  const v = {VIEW}, d = v.data, out = [];
  for (let i = 0; i < (d.grids ? d.grids.code.length : 0); i++) out.push(v.gridPopup(i).textContent);
  const nb = d.buildings ? d.buildings.building_id.length || d.buildings.building_id.i.length : 0;
  for (let k = 0; k < nb; k++) out.push(v.buildingPopup(v.buildingProps(k)).textContent);
  const ni = d.incidents ? d.incidents.id.length || d.incidents.id.i.length : 0;
  for (let k = 0; k < ni; k++) out.push(v.incidentPopup(k).textContent);
  return out.join("\\n");
}})()"""


def _local_only(route) -> None:
    from browser import serve_vendored

    if route.request.url.startswith("http://127.0.0.1") or serve_vendored(route):
        if route.request.url.startswith("http://127.0.0.1"):
            route.continue_()
        return
    route.abort()  # tiles: no internet here


@pytest.mark.browser
def test_chromium_shows_the_text_and_runs_none_of_it(corpus):
    want, tokens = expected(corpus), corpus["tokens"]
    draft, published = corpus["draft"], corpus["published"]
    pages = {
        # staff: the role that sees what callers wrote about cases
        f"/maps/district.html?token={tokens['staff']}": want["building"]
        | want["address"]
        | want["community"]
        | want["worker_name"]
        | want["case"],
        f"/plans/{draft}/diff/map?against={published}&token={tokens['viewer']}": want["community"],
    }
    with uvicorn_server(corpus["db"]) as base, launch() as browser:
        for path, wanted in pages.items():
            with open_page(base + path, route=_local_only, browser=browser) as opened:
                opened.page.wait_for_function(READY)
                shown = opened.page.evaluate(SHOWN)
                assert opened.page.evaluate(PWNED)
                assert opened.dialogs == []
                assert opened.errors == []
            missing = [text for text in wanted if text not in shown]
            assert not missing, (path, missing[:5])
            assert not EVALUATED.search(shown)
        editor = f"{base}/plans/{draft}/edit?token={tokens['planner']}&basemap=none"
        with open_page(editor, route=_local_only, browser=browser) as opened:
            shown = _editor_panels(opened.page)
            assert "token=" not in opened.page.url  # taken out of the address bar
            assert opened.page.evaluate(PWNED)
            assert opened.dialogs == []
            assert opened.errors == []
    team = rosters.roster(open_store(corpus["db"]))
    for worker in team.itertuples():
        assert f"{worker.name} ({worker.worker_id})" in shown  # the worker picker of each grid
    ids = open_store(corpus["db"]).read_layer("buildings")["building_id"]
    assert sum(building in shown for building in ids) >= 20  # the first 20 clicked
    assert not EVALUATED.search(shown)


def _editor_panels(page) -> str:
    """The editor's panel after clicking every grid and the first buildings, as one text."""
    page.wait_for_function("window.__gridmapEditorReady === true")
    return page.evaluate(
        """() => {
          const ed = window.__gridmapEditor, panel = document.getElementById("gm-editor"), out = [];
          for (const code of Object.keys(ed.grids)) {
            ed.grids[code].fire("click");
            out.push(panel.textContent);
            ed.grids[code].fire("click");
          }
          for (const layer of ed.buildings.slice(0, 20)) {
            layer.fire("click");
            out.push(panel.textContent);
          }
          return out.join("\\n");
        }"""
    )
