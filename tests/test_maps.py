"""maps/: strings, escaping, encoding, privacy and the offline page, without a browser."""

from __future__ import annotations

import json
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import given
from hypothesis import strategies as st
from test_maps_layers import XSS_STRINGS, make_layers

import maps
from geo.errors import InputError, NotFound
from maps import offline
from maps.encode import encode_points, encode_polygons
from maps.escape import css_string, escape_html, json_for_html
from maps.i18n import STRINGS, strings
from maps.prepare import MapInputError, grid_colours

ASSETS = Path(maps.__file__).parent / "assets"
DATA_BLOCK = re.compile(r'<script type="application/json" id="gm-data-[^"]+">(.*?)</script>', re.S)


def page_data(html: str) -> dict:
    """The JSON data block of a rendered map, repetitive columns expanded as the page does."""
    blocks = DATA_BLOCK.findall(html)
    assert len(blocks) == 1
    data = json.loads(blocks[0])
    for layer in ("grids", "buildings", "communities", "incidents", "before"):
        for key, column in data.get(layer, {}).items():
            if isinstance(column, dict) and set(column) == {"v", "i"}:
                data[layer][key] = [None if k < 0 else column["v"][k] for k in column["i"]]
    return data


def test_repetitive_columns_travel_as_dictionaries(suzhou):
    html = maps.render_html(district(suzhou))
    raw = json.loads(DATA_BLOCK.findall(html)[0])
    assert set(raw["buildings"]["community"]) == {"v", "i"}
    assert len(raw["buildings"]["community"]["v"]) == suzhou["buildings"]["community"].nunique()
    assert page_data(html)["buildings"]["community"] == suzhou["buildings"]["community"].tolist()


@pytest.fixture(scope="module")
def kunming(shared_data) -> dict[str, gpd.GeoDataFrame]:
    buildings = gpd.read_file(shared_data / "kunming_buildings.geojson")
    return make_layers(buildings, n_incidents=80, untrusted=XSS_STRINGS)


@pytest.fixture(scope="module")
def suzhou(shared_data) -> dict[str, gpd.GeoDataFrame]:
    buildings = gpd.read_file(shared_data / "suzhou_gusu_buildings.geojson")
    return make_layers(buildings, n_incidents=300)


def district(layers, **options):
    return maps.district_map(
        layers["grids"], layers["buildings"], layers["communities"], layers["incidents"], **options
    )


# ---- strings ----


def test_every_string_exists_in_both_languages():
    assert set(STRINGS["zh"]) == set(STRINGS["en"])
    for table in STRINGS.values():
        assert all(isinstance(v, str) and v.strip() for v in table.values())


def test_every_string_the_page_script_asks_for_exists():
    script = (ASSETS / "gridmap.js").read_text(encoding="utf-8")
    used = set(re.findall(r"\bt\.(\w+)", script)) | set(re.findall(r"strings\.(\w+)", script))
    prefixed = set(re.findall(r't\["(\w+)" \+', script))
    assert used, "the runtime reads its strings from t.<key>"
    assert used <= set(STRINGS["en"])
    for prefix in prefixed:
        assert any(key.startswith(prefix) for key in STRINGS["en"])


def test_every_string_python_asks_for_exists():
    used = set()
    for module in Path(maps.__file__).parent.glob("*.py"):
        used |= set(re.findall(r'\bt\["(\w+)"\]', module.read_text(encoding="utf-8")))
    assert used <= set(STRINGS["zh"])


def test_language_tags_and_unknown_language():
    assert strings("zh-CN")["grid"] == "网格"
    assert strings("EN")["grid"] == "Grid"
    with pytest.raises(InputError, match="language"):
        strings("fr")


def test_chinese_labels_by_default_and_english_on_request(kunming):
    zh = page_data(maps.render_html(district(kunming)))
    en = page_data(maps.render_html(district(kunming, lang="en")))
    assert zh["strings"]["worker"] == "网格员"
    assert en["strings"]["worker"] == "Worker"


# ---- escaping ----


@pytest.mark.parametrize("text", XSS_STRINGS)
def test_json_for_html_hides_markup_and_round_trips(text):
    encoded = json_for_html({"d": text})
    assert "<" not in encoded
    assert ">" not in encoded
    assert "&" not in encoded
    assert json.loads(encoded) == {"d": text}


@given(st.text())
def test_json_for_html_round_trips_any_text(text):
    encoded = json_for_html([text, {"k": text}])
    assert json.loads(encoded) == [text, {"k": text}]
    assert not re.search(r"[<>&\u2028\u2029]", encoded)


def test_json_for_html_turns_nan_into_null():
    assert json_for_html([float("nan"), float("inf"), 1.5]) == "[null,null,1.5]"


def test_escape_html_and_css_string():
    assert escape_html(XSS_STRINGS[0]) == "&lt;img src=x onerror=&quot;window.__x=1&quot;&gt;"
    assert escape_html(None) == ""
    assert escape_html("'") == "&#x27;"
    assert css_string('a"}</style>') == '"a\\22 \\7d \\3c \\2f style\\3e "'


def test_no_data_string_reaches_the_page_unescaped(kunming):
    html = maps.render_html(district(kunming), offline=False)
    # Markup never appears raw; the backtick text sits only in the inert JSON block.
    assert XSS_STRINGS[0] not in html
    assert XSS_STRINGS[2] not in html
    outside_data = DATA_BLOCK.sub("", html)
    assert "window.__" not in outside_data.replace("window.__gridmap", "")
    assert "alert(1)" not in outside_data
    data = page_data(html)
    assert XSS_STRINGS[0] in data["incidents"]["desc"]
    assert XSS_STRINGS[2] in data["grids"]["worker"]


# ---- privacy ----


def test_worker_phones_left_out_unless_asked(kunming):
    phones = kunming["grids"]["worker_phone"].tolist()
    html = maps.render_html(district(kunming))
    assert not any(phone in html for phone in phones)
    assert "phone" not in page_data(html)["grids"]
    with_contacts = maps.render_html(district(kunming, include_contacts=True))
    assert page_data(with_contacts)["grids"]["phone"] == phones


def test_resident_columns_are_not_embedded(kunming):
    buildings = kunming["buildings"].assign(resident_name="赵六", id_card="530102199001011234")
    html = maps.render_html(
        maps.district_map(kunming["grids"], buildings, kunming["communities"], kunming["incidents"])
    )
    assert "530102199001011234" not in html
    assert "赵六" not in html


# ---- geometry and data ----


def decode_polygons(enc: dict) -> list[list[list[np.ndarray]]]:
    """Python twin of gridmap.js decodePolygons: geometries -> polygons -> rings of lon/lat."""
    coords = np.cumsum(np.array(enc["c"], dtype=np.int64).reshape(-1, 2), axis=0) / 1e6
    rings = np.split(coords, np.cumsum(enc["r"])[:-1])
    per_poly = enc["p"] or [1] * len(rings)
    polys = [rings[s - n : s] for n, s in zip(per_poly, np.cumsum(per_poly), strict=True)]
    per_geom = enc["g"] or [1] * len(polys)
    return [polys[s - n : s] for n, s in zip(per_geom, np.cumsum(per_geom), strict=True)]


def test_encoded_footprints_decode_to_the_6_decimal_coordinates(shared_data):
    buildings = gpd.read_file(shared_data / "suzhou_gusu_buildings.geojson").head(2000)
    buildings = buildings[buildings.geom_type.isin(["Polygon", "MultiPolygon"])]
    decoded = decode_polygons(encode_polygons(buildings.geometry))
    assert len(decoded) == len(buildings)
    for shape, geom in zip(decoded, buildings.geometry, strict=True):
        parts = shapely.get_parts(geom)
        assert len(shape) == len(parts)
        for rings, part in zip(shape, parts, strict=True):
            expected = [part.exterior, *part.interiors]
            assert len(rings) == len(expected)
            for ring, original in zip(rings, expected, strict=True):
                np.testing.assert_allclose(
                    ring, np.round(np.asarray(original.coords)[:-1], 6), atol=1e-9
                )


def test_encode_points_round_trip():
    lon, lat = np.array([120.612345, 120.6, 102.7]), np.array([31.3, 31.312345, 25.04])
    decoded = np.cumsum(np.array(encode_points(lon, lat)["c"]).reshape(-1, 2), axis=0) / 1e6
    np.testing.assert_allclose(decoded, np.column_stack([lon, lat]), atol=1e-9)


def test_encode_polygons_refuses_points():
    with pytest.raises(InputError, match="polygon"):
        encode_polygons(gpd.GeoSeries([shapely.Point(0, 0)]))


def test_neighbouring_grids_get_different_colours(suzhou):
    grids = suzhou["grids"]
    colours = grid_colours(grids)
    left, right = grids.sindex.query(grids.geometry, predicate="touches")
    assert len(left) > len(grids)  # the grids tile their communities: many neighbours
    assert (colours.to_numpy()[left] != colours.to_numpy()[right]).all()
    assert colours.max() < 6


def test_grid_popup_facts_and_incident_counts(kunming):
    data = page_data(maps.render_html(district(kunming)))["grids"]
    grids = kunming["grids"]
    assert data["code"] == grids["grid_code"].tolist()
    assert data["n_buildings"] == grids["n_buildings"].tolist()
    assert data["households"] == grids["households"].tolist()
    incidents = kunming["incidents"]
    open_ = incidents[incidents["status"] != "closed"].groupby("grid_code").size()
    assert data["open"] == [int(open_.get(code, 0)) for code in grids["grid_code"]]
    assert sum(data["overdue"]) == int(
        (incidents["overdue"] & incidents["grid_code"].notna()).sum()
    )


def test_grid_outlines_are_simplified_in_6_decimals(suzhou):
    data = page_data(maps.render_html(district(suzhou)))
    grids_in = shapely.get_num_coordinates(suzhou["grids"].geometry.values).sum()
    decoded = decode_polygons(data["grids"]["geom"])
    grids_out = sum(len(ring) + 1 for shape in decoded for poly in shape for ring in poly)
    assert grids_out < grids_in
    assert all(isinstance(v, int) for v in data["grids"]["geom"]["c"][:1000])


def test_large_building_layers_are_loaded_by_bbox(kunming):
    m = district(kunming, max_buildings=50, features_url="/ogc/collections/buildings/items")
    data = page_data(maps.render_html(m))
    assert "buildings" not in data
    assert data["options"]["features_url"] == "/ogc/collections/buildings/items"


def test_community_grid_and_diff_maps_select_their_rows(kunming):
    grids = kunming["grids"]
    name = grids["community"].value_counts().index[0]
    community = page_data(
        maps.render_html(
            maps.community_map(
                grids,
                kunming["buildings"],
                kunming["communities"],
                kunming["incidents"],
                community=name,
            )
        )
    )
    assert set(community["grids"]["community"]) == {name}
    assert set(community["buildings"]["community"]) == {name}
    assert set(community["incidents"]["grid"]) <= set(community["grids"]["code"])

    code = grids[grids["community"] == name]["grid_code"].iloc[1]
    single = page_data(
        maps.render_html(
            maps.grid_map(
                grids, kunming["buildings"], incidents=kunming["incidents"], grid_code=code
            )
        )
    )
    assert code in single["grids"]["code"]
    assert len(single["grids"]["code"]) > 1
    assert set(single["buildings"]["grid_code"]) == {code}
    assert set(single["incidents"]["grid"]) <= {code}
    with pytest.raises(NotFound):
        maps.grid_map(grids, grid_code="nope")
    with pytest.raises(NotFound):
        maps.community_map(grids, community="nowhere")

    changed = grids["grid_code"].iloc[:3].tolist()
    diff = page_data(maps.render_html(maps.diff_map(grids, grids, changed)))
    assert sum(diff["grids"]["changed"]) == 3
    assert diff["before"]["name"] == changed


def test_incidents_map_shows_choropleth_of_overdue(kunming):
    m = maps.incidents_map(kunming["incidents"], kunming["grids"], choropleth="overdue")
    data = page_data(maps.render_html(m))
    assert data["choropleth"]["field"] == "overdue"
    assert len(data["choropleth"]["colors"]) == len(data["choropleth"]["bins"])
    assert len(data["incidents"]["id"]) == len(kunming["incidents"])


# ---- base maps and attribution ----


def test_basemaps(kunming):
    osm = maps.render_html(district(kunming))
    assert "tile.openstreetmap.org" in osm
    assert "OpenStreetMap" in osm
    with pytest.raises(MapInputError, match="key"):
        district(kunming, basemap="tianditu")
    tianditu = maps.render_html(district(kunming, basemap="tianditu-img", tianditu_key="k&1"))
    assert "T=img_w" in tianditu
    assert "T=cia_w" in tianditu
    assert "tk=k%261" in tianditu
    with pytest.raises(MapInputError, match="basemap"):
        district(kunming, basemap="google")
    none = maps.render_html(district(kunming, basemap="none"))
    assert "{z}/{x}/{y}" not in none
    assert page_data(none)["options"]["osm_credit"] is True


def test_amap_draws_overlays_in_gcj02(kunming):
    wgs = page_data(maps.render_html(district(kunming, basemap="osm")))
    gcj = page_data(maps.render_html(district(kunming, basemap="amap")))
    shift = np.array(gcj["grids"]["label"]["c"][:2]) - np.array(wgs["grids"]["label"]["c"][:2])
    # GCJ-02 moves Kunming a few hundred metres: 1e-6 degree units.
    assert 500 < abs(shift[0]) < 10_000
    assert 100 < abs(shift[1]) < 10_000


# ---- input errors ----


def test_missing_columns_and_crs_are_input_errors(kunming):
    with pytest.raises(MapInputError, match="grid_code"):
        maps.district_map(kunming["grids"].drop(columns="grid_code"))
    with pytest.raises(MapInputError, match="CRS"):
        maps.district_map(kunming["grids"].set_crs(None, allow_override=True))


# ---- offline ----


def test_offline_page_is_self_contained(kunming):
    html = maps.render_html(district(kunming, offline=True), offline=True)
    assert not re.search(r"<script[^>]+src=", html)
    assert not re.search(r"<link[^>]+href=", html)
    assert "tile.openstreetmap.org" not in html
    assert "L.markerClusterGroup" in html
    assert "leaflet-measure" in html
    assert "data:image/png;base64," in html  # Leaflet's layer icon


def test_offline_refuses_remote_assets_and_tiles(kunming):
    with pytest.raises(offline.OfflineAssetError, match="network"):
        offline.check_offline('<script src="https://cdn.example.org/x.js"></script>')
    with pytest.raises(offline.OfflineAssetError, match="network"):
        offline.check_offline('<link rel="stylesheet" href="//cdn.example.org/x.css">')
    with pytest.raises(offline.OfflineAssetError, match="no vendored copy"):
        offline.inline_assets('<script src="https://code.jquery.com/jquery-3.7.1.min.js"></script>')
    with pytest.raises(offline.OfflineAssetError, match="basemap"):
        maps.render_html(district(kunming), offline=True)


def test_inline_assets_keep_the_tiles(kunming):
    m = district(kunming, basemap="tianditu", tianditu_key="abc")
    html = maps.render_html(m, inline=True)
    assert not re.search(r"<script[^>]+src=", html)
    assert "tianditu.gov.cn" in html


def test_offline_allows_urls_quoted_in_data(kunming):
    incidents = kunming["incidents"].copy()
    incidents.loc[0, "description"] = 'see url(https://evil.example/x.png) @import url("//x.css")'
    m = maps.district_map(kunming["grids"], incidents=incidents, offline=True)
    html = maps.render_html(m, offline=True)
    assert "evil.example" in html


def test_offline_without_vendored_assets_says_how_to_get_them(kunming, monkeypatch, tmp_path):
    monkeypatch.setattr(offline, "VENDOR_DIR", tmp_path)
    with pytest.raises(offline.OfflineAssetError, match=r"vendor\.py"):
        maps.render_html(district(kunming, offline=True), offline=True)


def test_vendored_versions_are_the_pinned_ones():
    pinned = json.loads((ASSETS / "package.json").read_text())["dependencies"]
    vendored = json.loads((ASSETS / "vendor" / "VERSIONS.json").read_text())
    assert vendored == pinned
    lock = json.loads((ASSETS / "package-lock.json").read_text())["packages"]
    assert {name: lock[f"node_modules/{name}"]["version"] for name in pinned} == pinned


def test_save_map_writes_utf8(kunming, tmp_path):
    path = maps.save_map(district(kunming, offline=True), tmp_path / "m.html", offline=True)
    assert "网格" in path.read_text(encoding="utf-8")


def expanded(column):
    """A data column as the page's runtime expands it (dictionary-encoded or plain)."""
    if isinstance(column, dict):
        return [None if k < 0 else column["v"][k] for k in column["i"]]
    return column


def test_incident_classes_survive_encoding_for_their_icons(kunming):
    incidents = kunming["incidents"].copy()
    # many cases of few classes (the column gets dictionary-encoded), one class given without 0
    incidents["class_code"] = ["6" if i % 5 == 0 else "09" for i in range(len(incidents))]
    data = page_data(maps.render_html(maps.incidents_map(incidents, kunming["grids"])))
    classes = expanded(data["incidents"]["cls"])
    assert len(classes) == len(incidents)
    assert set(classes) == {"06", "09"}
    assert set(classes) <= set(data["options"]["incident_classes"])
