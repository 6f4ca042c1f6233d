"""One posted case through the lean path is stored exactly as a feed of that case is (issue #16).

``POST /incidents`` with one case skips the feed machinery (geo.incidents.intake); these tests
hold it to the feed path on Kunming (imported, partitioned, staffed): two copies of the project,
the same case added to one by the lean path and to the other by ``import_records``, and every
column of the stored row, its geometry blob, its creation event and the answered summary equal.
"""

from __future__ import annotations

import dataclasses
import itertools
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from api.routers.incidents import POSTED
from geo.crs import to_wgs84
from geo.errors import InputError
from geo.incidents import intake
from geo.incidents import records as incident_records
from geo.incidents.cases import CaseImport
from geo.incidents.feeds import IncidentMapping, parse_timestamps, records_from_objects
from geo.incidents.workflow import deadline
from geo.locate import kept as locate_index
from geo.plans import publish as publishing
from geo.storage.store import open_store
from geo.usecases import incidents as incident_cases

HOSTILE = "=cmd|' /C calc'!A0 <script>alert(1)</script> '); DROP TABLE incidents;-- \u202e\n\t😀"


def _row(**given) -> dict:
    """A case as the service hands it on: every posted field present (None when not given)."""
    fields = ("id", "category", "reported_at", "description", "address", "lon", "lat")
    return {**dict.fromkeys(fields), **given}


def _copy(source: Path, target: Path) -> Path:
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    return target


@pytest.fixture(scope="module")
def seeded(api_db, tmp_path_factory) -> Path:
    """Kunming with one case stored by the feed path (the layer and its indexes exist)."""
    path = _copy(api_db, tmp_path_factory.mktemp("intake") / "seeded.gpkg")
    store = open_store(path)
    seed = _row(id="seed", reported_at="2026-01-05T09:00:00+08:00")
    incident_cases.import_records(
        store,
        records_from_objects([seed]),
        CaseImport(mapping=POSTED, source="seed", allow_unlocated=True),
    )
    store.engine.dispose()
    return path


@pytest.fixture(scope="module")
def inside(seeded) -> tuple[float, float]:
    """A WGS84 point inside a building of the published plan."""
    store = open_store(seeded)
    point = store.read_layer("buildings").representative_point().iloc[7]
    lon, lat = to_wgs84(
        np.array([point.x]), np.array([point.y]), crs=publishing.published_grids(store).crs
    )
    store.engine.dispose()
    return float(lon[0]), float(lat[0])


def _stored(store, incident_id: str) -> tuple[dict, list[tuple]]:
    with store.reading() as conn:
        result = conn.exec_driver_sql(
            "SELECT * FROM incidents WHERE incident_id = ?", (incident_id,)
        )
        rows = [dict(zip(result.keys(), row, strict=True)) for row in result]
        events = conn.exec_driver_sql(
            "SELECT incident_id, from_status, to_status, actor, at, note FROM incident_events "
            "WHERE incident_id = ?",
            (incident_id,),
        ).fetchall()
    assert len(rows) == 1
    row = rows[0]
    row.pop("fid")
    assert row.pop("imported_at")  # both "now": the moment differs, the form is checked apart
    return row, [tuple(e) for e in events]


def _both_ways(seeded: Path, tmp_path: Path, case: dict, **options) -> tuple:
    """The case added to one copy by the lean path and to another by the feed path."""
    results = []
    for way in ("lean", "feed"):
        store = open_store(_copy(seeded, tmp_path / f"{way}.gpkg"))
        index = locate_index.grid_index(store)
        mapping = IncidentMapping(**{**POSTED.to_dict(), "crs": options.get("crs", "wgs84")})
        allow = options.get("allow_unlocated", False)
        how = CaseImport(mapping=mapping, source="12345", author="tester", allow_unlocated=allow)
        if way == "lean":
            time = intake.read_time(case["reported_at"], tz=mapping.tz)
            summary = intake.add_posted_case(store, dict(case), how, time=time, index=index)
            assert summary is not None, "the lean path declined the case"
        else:
            summary = incident_cases.import_records(
                store, records_from_objects([dict(case)]), how, index=index
            )
        results.append((summary, *_stored(store, f"12345:{str(case['id']).strip()}")))
        store.engine.dispose()
    return results


CASES = {
    "located": {"category": "乱堆乱放", "reported_at": "2026-03-06T16:40:00+08:00"},
    "located, naive time, legacy code": {"category": "0101", "reported_at": "2026-03-07 09:15"},
    "located, UTC time with microseconds": {
        "category": "06001",
        "reported_at": "2026-12-04T17:30:00.123456+00:00",
    },
    "unknown category": {"category": "飞碟降落", "reported_at": "2026-03-06T08:00:00Z"},
    "hostile text": {
        "category": HOSTILE[:150],
        "description": HOSTILE * 20,
        "address": HOSTILE,
        "reported_at": "2026-03-06T08:00:00+08:00",
    },
}


@pytest.mark.parametrize("name", list(CASES))
def test_a_located_case_is_stored_by_the_lean_path_as_the_feed_path_stores_it(
    name, seeded, inside, tmp_path
):
    case = _row(id=f" {name} ", lon=inside[0], lat=inside[1], **CASES[name])
    (lean, lean_row, lean_events), (feed, feed_row, feed_events) = _both_ways(
        seeded, tmp_path, case
    )
    assert lean_row == feed_row
    assert lean_events == feed_events
    assert lean == feed
    assert lean_row["grid_code"], "the case was assigned to a grid"
    assert lean_row["worker"], "the grid is staffed"


@pytest.mark.parametrize(
    "where",
    [(None, None), (0.0, 0.0), (102.7, 250.0), (float("nan"), 25.0), (2.35, 48.85), (25.04, 102.7)],
)
def test_an_unlocated_case_stored_with_the_flag_is_stored_alike_with_its_reason(
    where, seeded, tmp_path
):
    case = _row(
        id="u1",
        lon=where[0],
        lat=where[1],
        category="占道经营",
        reported_at="2026-03-06T08:00:00+08:00",
        description="no place",
    )
    (lean, lean_row, lean_events), (feed, feed_row, feed_events) = _both_ways(
        seeded, tmp_path, case, allow_unlocated=True
    )
    assert (lean_row, lean_events, lean) == (feed_row, feed_events, feed)
    assert lean_row["unlocated_reason"]
    assert lean_row["geom"] is None


def test_a_case_on_a_geocoder_fallback_point_is_stored_alike(seeded, inside, tmp_path):
    """One case is never a fallback point (five records must share it): both paths agree."""
    store = open_store(seeded)
    centre = publishing.published_grids(store).to_crs(4326).union_all().centroid
    store.engine.dispose()
    case = _row(
        id="centre",
        lon=round(centre.x, 6),
        lat=round(centre.y, 6),
        reported_at="2026-03-06T08:00:00+08:00",
    )
    (lean, lean_row, _), (feed, feed_row, _) = _both_ways(
        seeded, tmp_path, case, allow_unlocated=True
    )
    assert (lean_row, lean) == (feed_row, feed)
    assert lean_row["fallback_point"] == 0


def test_a_gcj02_case_is_moved_to_wgs84_by_both_paths_alike(seeded, inside, tmp_path):
    case = _row(
        id="g1",
        lon=inside[0] + 0.004,
        lat=inside[1] - 0.002,
        reported_at="2026-03-06T08:00:00+08:00",
    )
    (lean, lean_row, _), (feed, feed_row, _) = _both_ways(seeded, tmp_path, case, crs="gcj02")
    assert (lean_row, lean) == (feed_row, feed)


def test_an_unplaceable_case_without_the_flag_is_refused_by_both_paths_with_one_message(
    seeded, tmp_path
):
    case = _row(id="u2", reported_at="2026-03-06T08:00:00+08:00")
    store = open_store(_copy(seeded, tmp_path / "refused.gpkg"))
    with pytest.raises(InputError) as lean:
        intake.add_posted_case(
            store,
            dict(case),
            CaseImport(mapping=POSTED, source="12345"),
            time=intake.read_time(case["reported_at"]),
            index=locate_index.grid_index(store),
        )
    with pytest.raises(InputError) as feed:
        incident_cases.import_records(
            store, records_from_objects([case]), CaseImport(mapping=POSTED, source="12345")
        )
    assert lean.value.message == feed.value.message
    assert "nothing was stored" in lean.value.message
    assert incident_records.stored_ids(store, pd.Series(["12345:u2"])) == set()


def test_posting_a_stored_case_again_adds_nothing_and_says_it_was_there(seeded, inside, tmp_path):
    store = open_store(_copy(seeded, tmp_path / "again.gpkg"))
    index = locate_index.grid_index(store)
    case = _row(id="again", lon=inside[0], lat=inside[1], reported_at="2026-03-06T08:00:00Z")
    time = intake.read_time(case["reported_at"])
    answers = [
        intake.add_posted_case(
            store, dict(case), CaseImport(mapping=POSTED, source="12345"), time=time, index=index
        )
        for _ in range(2)
    ]
    assert [(a["added"], a["already_present"]) for a in answers] == [(1, 0), (0, 1)]
    with store.reading() as conn:
        count = conn.exec_driver_sql(
            "SELECT count(*) FROM incident_events WHERE incident_id = '12345:again'"
        ).scalar()
    assert count == 1


def test_a_too_long_case_id_is_refused_as_the_feed_path_refuses_it(seeded, inside, tmp_path):
    store = open_store(_copy(seeded, tmp_path / "long.gpkg"))
    case = _row(id="x" * 300, lon=inside[0], lat=inside[1], reported_at="2026-03-06")
    with pytest.raises(InputError, match="is not a valid id"):
        intake.add_posted_case(
            store,
            case,
            CaseImport(mapping=POSTED, source="12345"),
            time=intake.read_time("2026-03-06"),
            index=locate_index.grid_index(store),
        )


TIMES = [
    "2026-03-06",
    "2026-03-06 08:00",
    "2026-03-06T08:00:00",
    "2026-03-06T08:00:00.5",
    "2026-03-06T08:00:00Z",
    "2026-03-06T08:00+08:00",
    "2026-03-06T08:00:00+0530",
    "2026-03-06T08:00:00-03:00",
    " 2026-03-06T08:00:00+08:00 ",
    "1899-12-31",
    "2200-01-01T00:00Z",
    "1900-01-01T03:00",
    "1988-04-10 02:30",
    "1988-09-11 01:30",
    "2199-12-31T23:59:59.999999+00:00",
]


@pytest.mark.parametrize("text", TIMES)
def test_a_posted_time_is_read_to_the_moment_and_problem_the_feed_reader_gives(text):
    moments, problems = parse_timestamps(pd.Series([text], dtype=object))
    read = intake.read_time(text)
    assert read is not None
    expected = None if pd.isna(moments[0]) else moments[0]
    assert (read.moment, read.problem) == (expected, problems[0])


@pytest.mark.parametrize(
    "text",
    ["2026-03-06T08:00:00z", "2026年3月6日 8时", "1741219200", "2026-02-30", "03/06/2026", "now"],
)
def test_a_time_in_another_form_is_left_to_the_feed_reader(text):
    assert intake.read_time(text) is None


def test_a_posted_case_has_the_deadline_the_vectorised_calendar_gives(seeded):
    """Every time limit of the catalogue, from starts all over the week, the working day, the
    lunch break and the years of Chinese summer time (1986-1991)."""
    limits = sorted(set(incident_records.catalogue(open_store(seeded))["time_limit"]))
    rng = np.random.default_rng(16)
    seconds = rng.integers(pd.Timestamp("1986-01-01").value // 10**9, 2_000_000_000, 400)
    starts = [pd.Timestamp(int(s), unit="s", tz="UTC") for s in seconds]
    starts += [
        pd.Timestamp(f"2026-11-27 {clock}", tz="Asia/Shanghai")
        for clock in ("08:30", "12:00", "13:29:59.999", "17:30", "23:59")
    ]
    for limit in [*limits, "0h", "0.5h", "40h"]:
        for start in starts:
            assert intake.case_deadline(start, limit) == deadline(start, None, limit), (
                start,
                limit,
            )


def test_the_lean_path_refuses_points_outside_the_same_district_box_as_the_feed_path(seeded):
    store = open_store(seeded)
    assert intake.district_bounds(store) == incident_records.district_bounds(store)
    store.engine.dispose()


def test_a_post_that_would_wait_for_another_writer_says_so_instead_and_stores_nothing(
    seeded, inside, tmp_path
):
    """On the event loop a post must not sleep in SQLite's busy handler: it is handed back."""
    store = open_store(_copy(seeded, tmp_path / "busy.gpkg"))
    index = locate_index.grid_index(store)
    case = _row(id="busy", lon=inside[0], lat=inside[1], reported_at="2026-03-06T08:00:00Z")
    post = {
        "how": CaseImport(mapping=POSTED, source="12345"),
        "time": intake.read_time("2026-03-06T08:00:00Z"),
    }
    other = open_store(tmp_path / "busy.gpkg")
    with other.transaction(), pytest.raises(intake.WriterBusy):
        intake.add_posted_case(store, dict(case), **post, index=index, wait=False)
    assert incident_records.stored_ids(store, pd.Series(["12345:busy"])) == set()
    answer = intake.add_posted_case(store, dict(case), **post, index=index, wait=False)
    assert answer["added"] == 1
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    other.engine.dispose()
    store.engine.dispose()


# -- the lean path on PostGIS (issue #18): the row a GeoPackage's feed path stores -------------


@pytest.fixture(scope="module")
def pg_seeded(seeded, postgis_url) -> str:
    """The seeded project copied into a PostGIS database (a template: each test copies it)."""
    import pgcluster
    from pg_copy import copy_project

    url = pgcluster.fresh_database(postgis_url)
    source = open_store(seeded)
    copy_project(source, url).engine.dispose()
    source.engine.dispose()
    return url


def _database_copy(template_url: str) -> str:
    """A new database copied from the one at ``template_url`` (no one may be connected to it)."""
    import pgcluster
    import psycopg

    host, port = pgcluster._host_port(template_url)
    template = template_url.split("?")[0].rsplit("/", 1)[1]
    name = f"{template}_{next(_COPIES)}"
    with psycopg.connect(host=host, port=port, user="postgres", dbname="postgres") as conn:
        conn.autocommit = True
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return template_url.replace(f"/{template}?", f"/{name}?")


_COPIES = itertools.count(1)


def _portable(store, incident_id: str) -> tuple[dict, list[tuple]]:
    """The stored case and its events read through the store, comparable across backends."""
    frame = store.read_layer(incident_records.LAYER, where={"incident_id": incident_id})
    assert len(frame) == 1
    row = frame.iloc[0].to_dict()
    geometry = row.pop("geometry")
    row["geometry"] = None if geometry is None else geometry.wkt
    assert row.pop("imported_at") is not None
    row = {k: (None if not isinstance(v, str) and pd.isna(v) else v) for k, v in row.items()}
    events = store.read_table("incident_events", where={"incident_id": incident_id})
    return row, [tuple(e) for e in events.drop(columns="event_id").itertuples(index=False)]


def _lean_on_postgis_feed_on_geopackage(
    seeded: Path, pg_seeded: str, tmp_path: Path, case: dict, **options
) -> tuple:
    how = {
        "mapping": IncidentMapping(**{**POSTED.to_dict(), "crs": options.get("crs", "wgs84")}),
        "source": "12345",
        "author": "tester",
        "allow_unlocated": options.get("allow_unlocated", False),
    }
    gpkg_store = open_store(_copy(seeded, tmp_path / "feed.gpkg"))
    index = locate_index.grid_index(gpkg_store)
    incident_id = f"12345:{str(case['id']).strip()}"
    feed = incident_cases.import_records(
        gpkg_store, records_from_objects([dict(case)]), CaseImport(**how), index=index
    )
    pg_store = open_store(_database_copy(pg_seeded))
    time = intake.read_time(case["reported_at"], tz=how["mapping"].tz)
    lean = intake.add_posted_case(pg_store, dict(case), CaseImport(**how), time=time, index=index)
    results = [
        (lean, *_portable(pg_store, incident_id)),
        (feed, *_portable(gpkg_store, incident_id)),
    ]
    pg_store.engine.dispose()
    gpkg_store.engine.dispose()
    return results


@pytest.mark.parametrize("name", list(CASES))
def test_a_case_stored_by_the_lean_path_on_postgis_is_the_row_the_feed_path_stores(
    name, seeded, pg_seeded, inside, tmp_path
):
    case = _row(id=f" {name} ", lon=inside[0], lat=inside[1], **CASES[name])
    lean, feed = _lean_on_postgis_feed_on_geopackage(seeded, pg_seeded, tmp_path, case)
    assert lean == feed
    assert lean[1]["grid_code"]
    assert lean[1]["worker"]


@pytest.mark.parametrize("where", [(None, None), (102.7, 250.0), (2.35, 48.85)])
def test_an_unlocated_case_on_postgis_is_stored_alike_with_its_reason(
    where, seeded, pg_seeded, tmp_path
):
    case = _row(id="u1", lon=where[0], lat=where[1], reported_at="2026-03-06T08:00:00+08:00")
    lean, feed = _lean_on_postgis_feed_on_geopackage(
        seeded, pg_seeded, tmp_path, case, allow_unlocated=True
    )
    assert lean == feed
    assert lean[1]["unlocated_reason"]
    assert lean[1]["geometry"] is None


def test_a_gcj02_case_on_postgis_is_moved_to_wgs84_alike(seeded, pg_seeded, inside, tmp_path):
    case = _row(id="g1", lon=inside[0] + 0.004, lat=inside[1] - 0.002, reported_at="2026-03-06")
    lean, feed = _lean_on_postgis_feed_on_geopackage(seeded, pg_seeded, tmp_path, case, crs="gcj02")
    assert lean == feed


# -- group commit: many posted cases in one transaction ----------------------------------------


@pytest.fixture(params=["geopackage", "postgis"])
def group_store(request, seeded, tmp_path):
    """A fresh copy of the seeded project on each backend."""
    if request.param == "geopackage":
        store = open_store(_copy(seeded, tmp_path / "group.gpkg"))
    else:
        store = open_store(_database_copy(request.getfixturevalue("pg_seeded")))
    yield store
    store.engine.dispose()


def _prepared(store, index, case_id: str, point: tuple[float, float]):
    case = _row(id=case_id, lon=point[0], lat=point[1], reported_at="2026-03-06T08:00:00Z")
    return intake.prepare_posted_case(
        store,
        case,
        CaseImport(mapping=POSTED, source="12345", author="tester"),
        time=intake.read_time(case["reported_at"]),
        index=index,
    )


def test_a_group_stores_each_case_once_and_answers_each_as_alone(group_store, inside):
    store = group_store
    index = locate_index.grid_index(store)
    stored = _prepared(store, index, "old", inside)
    assert intake.store_prepared(store, stored)["added"] == 1
    ids = ["a", "b", "a", "old", "c", "b"]
    group = [_prepared(store, index, i, inside) for i in ids]
    answers = intake.store_prepared_cases(store, group)
    assert [(a["added"], a["already_present"]) for a in answers] == [
        (1, 0), (1, 0), (0, 1), (0, 1), (1, 0), (0, 1)
    ]  # fmt: skip
    assert all(a["read"] == 1 and a["located"] == 1 for a in answers)
    events = store.read_table("incident_events")
    cases = store.read_layer(incident_records.LAYER)
    for case_id in ("a", "b", "c", "old"):
        assert (cases["incident_id"] == f"12345:{case_id}").sum() == 1
        assert (events["incident_id"] == f"12345:{case_id}").sum() == 1
    assert cases.set_index("incident_id").loc["12345:c", "grid_code"]


def test_a_case_the_database_refuses_answers_its_own_error_and_the_others_are_stored(
    group_store, inside
):
    store = group_store
    index = locate_index.grid_index(store)
    group = [_prepared(store, index, i, inside) for i in ("x1", "x2", "x3")]
    # a value no driver can store, in the second case's row
    group[1] = dataclasses.replace(group[1], row={**group[1].row, "description": object()})
    answers = intake.store_prepared_cases(store, group)
    assert isinstance(answers[1], Exception)
    assert [answers[0]["added"], answers[2]["added"]] == [1, 1]
    stored = incident_records.stored_ids(store, pd.Series(["12345:x1", "12345:x2", "12345:x3"]))
    assert stored == {"12345:x1", "12345:x3"}
    with pytest.raises(type(answers[1])):
        intake.store_prepared(store, group[1])
