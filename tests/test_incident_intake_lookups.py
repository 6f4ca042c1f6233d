"""Posted cases are read against the lookups their store's last batch read, and checked again
by their own batch (issue #16: the catalogue setting and the district's box once per batch, not
three queries per case): a case is refused or stored exactly as when each read its own.
"""

from __future__ import annotations

import pandas as pd
import pytest
from test_incident_intake import _copy, _row, inside, seeded  # noqa: F401 - fixtures

from api.routers.incidents import POSTED
from geo.errors import InputError
from geo.incidents import intake
from geo.incidents import records as incident_records
from geo.incidents.cases import CaseImport
from geo.locate import kept as locate_index
from geo.storage.store import open_store

#: a box (WGS84) far from Kunming: a point of the district lies outside it
ELSEWHERE = intake.Lookups(catalogue=None, bounds=(0.0, 0.0, 1.0, 1.0))
#: a box holding the whole world: a point far from the district lies inside it
EVERYWHERE = intake.Lookups(catalogue=None, bounds=(-180.0, -90.0, 180.0, 90.0))


def _case(case_id: str, point: tuple[float, float]) -> dict:
    return _row(id=case_id, lon=point[0], lat=point[1], reported_at="2026-03-06T08:00:00Z")


def _prepare(store, case: dict):
    return intake.prepare_posted_case(
        store,
        dict(case),
        CaseImport(mapping=POSTED, source="12345"),
        time=intake.read_time(case["reported_at"]),
        index=locate_index.grid_index(store),
    )


@pytest.fixture
def store(seeded, tmp_path):  # noqa: F811 - the fixture imported above
    opened = open_store(_copy(seeded, tmp_path / "lookups.gpkg"))
    yield opened
    opened.engine.dispose()


def test_a_batch_keeps_the_lookups_it_read_for_the_cases_posted_next(store, inside):  # noqa: F811
    assert intake.store_prepared(store, _prepare(store, _case("k1", inside)))["added"] == 1
    assert intake._LOOKUPS[store] == intake.read_lookups(store)
    assert _prepare(store, _case("k2", inside)).lookups is intake._LOOKUPS[store]


def test_a_case_is_not_refused_on_lookups_that_are_out_of_date(store, inside):  # noqa: F811
    intake._LOOKUPS[store] = ELSEWHERE
    prepared = _prepare(store, _case("in", inside))
    assert prepared.lookups == intake.read_lookups(store)
    assert prepared.row["located"]
    answer = intake.store_prepared(store, prepared)
    assert (answer["added"], answer["located"]) == (1, 1)
    (row,) = incident_records.read_cases(store, None, {"incident_id": ["12345:in"]}).to_dict(
        "records"
    )
    assert row["grid_code"]


def test_a_case_its_batch_finds_outside_the_district_is_refused_there(store, inside):  # noqa: F811
    far = _case("far", (inside[0] + 5.0, inside[1]))
    with pytest.raises(InputError) as now:
        _prepare(store, far)  # read against the project's own box
    intake._LOOKUPS[store] = EVERYWHERE
    prepared = _prepare(store, far)  # let through on the stale box
    assert prepared.row["located"]
    group = [prepared, _prepare(store, _case("near", inside))]
    refused, stored = intake.store_prepared_cases(store, group)
    assert isinstance(refused, InputError)
    assert refused.message == now.value.message
    assert stored["added"] == 1
    ids = incident_records.stored_ids(store, pd.Series(["12345:far", "12345:near"]))
    assert ids == {"12345:near"}
