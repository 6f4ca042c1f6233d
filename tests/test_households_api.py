"""``/households`` over HTTP (issue #20): Kunming with 400 synthetic households, tokens bound to
grid workers.

Checked: a staff token of grid A's worker can neither read nor write grid B's households on any
route, and the answer is the 404 a missing household gets (nothing says it exists); finds are
masked by default, need a purpose and write one audit row per household read; planners and
viewers read counts only; an unbound staff token reads no household; purge is for admins.
"""

from __future__ import annotations

import base64
import json

import pytest
import sqlalchemy as sa
from api_support import bearer
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import create_token
from api.settings import Settings
from geo.people import access
from geo.people import households as hh
from geo.people.importing import import_households
from geo.people.privacy import KEY_ENV, KEY_FILE_ENV, Keyring, mask_id
from geo.people.synthetic import synthetic_households
from geo.storage.store import audit_log, open_store

SECRET = bytes(range(32, 64))


@pytest.fixture(scope="module")
def setting(api_db, tmp_path_factory):
    """The project with households imported, two grid workers' tokens and the household key set."""
    store = open_store(api_db)
    rows = synthetic_households(store.read_layer("buildings"), households=400, seed=11)
    csv = tmp_path_factory.mktemp("hh-api") / "住户.csv"
    rows.drop(columns="_expected").to_csv(csv, index=False, encoding="gbk")
    import_households(store, csv, Keyring(SECRET), actor="importer")
    places = access.placement(store)
    homes = store.read_table(hh.households).join(places, on="building_id")
    per_worker = homes.dropna(subset=["worker_id"]).groupby("worker_id")["household_id"].apply(list)
    worker_a, worker_b = per_worker.index[:2]
    tokens = {
        "a": create_token(store, "staff-a", "staff", worker=worker_a),
        "b": create_token(store, "staff-b", "staff", worker=worker_b),
        "unbound": create_token(store, "staff-unbound", "staff"),
        "planner": create_token(store, "hh-planner", "planner"),
        "viewer": create_token(store, "hh-viewer", "viewer"),
        "admin": create_token(store, "hh-admin", "admin"),
    }
    store.engine.dispose()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(KEY_ENV, base64.b64encode(SECRET).decode())
        patch.delenv(KEY_FILE_ENV, raising=False)
        with TestClient(create_app(Settings(db=api_db))) as client:
            yield client, tokens, rows, per_worker[worker_a], per_worker[worker_b], api_db


def _audit_rows(db) -> int:
    store = open_store(db)
    with store.reading() as conn:
        count = conn.execute(
            sa.select(sa.func.count())
            .select_from(audit_log)
            .where(audit_log.c.action == "personal read")
        ).scalar_one()
    store.engine.dispose()
    return int(count)


def _routes(household_id: str) -> list[tuple[str, str, dict]]:
    """Every household route that names a household, as (method, path, request keywords)."""
    return [
        ("GET", f"/households/{household_id}", {"params": {"purpose": "走访"}}),
        ("GET", f"/households/{household_id}/visits", {"params": {"purpose": "走访"}}),
        (
            "POST",
            f"/households/{household_id}/visits",
            {"json": {"cadre": "干部甲", "asked": "问", "done": "办"}},
        ),
        ("POST", "/households/cadres", {"json": {"household_ids": [household_id], "cadre": "甲"}}),
    ]


def test_staff_of_grid_a_reach_nothing_of_grid_b_and_it_answers_as_missing(setting):
    client, tokens, rows, _, theirs, _ = setting
    target = theirs[0]
    for (method, path, keywords), (_, nowhere, asked) in zip(
        _routes(target), _routes("HH-NO-SUCH"), strict=True
    ):
        hidden = client.request(method, path, headers=bearer(tokens["a"]), **keywords)
        missing = client.request(method, nowhere, headers=bearer(tokens["a"]), **asked)
        assert hidden.status_code == missing.status_code == 404, (path, hidden.text)
        assert hidden.json()["detail"].replace(target, "X") == missing.json()["detail"].replace(
            "HH-NO-SUCH", "X"
        )
    head = rows[(rows["户编号"] == target) & (rows["身份证号"] != "")]
    searches = [{"household_id": target}]
    if not head.empty:
        searches += [{"id_number": head["身份证号"].iloc[0]}, {"name": head["姓名"].iloc[0]}]
    for search in searches:
        found = client.post(
            "/households/find", json={"purpose": "走访", **search}, headers=bearer(tokens["a"])
        )
        assert found.status_code == 200
        assert target not in {answer["household_id"] for answer in found.json()}
    due = client.get("/households/due", headers=bearer(tokens["a"]))
    assert due.status_code == 200
    assert target not in {row["household_id"] for row in due.json()}
    purge = client.delete(
        f"/households/{target}", params={"reason": "x"}, headers=bearer(tokens["a"])
    )
    assert purge.status_code == 403  # admins purge; the same answer for any id
    owner = client.get(
        f"/households/{target}", params={"purpose": "走访"}, headers=bearer(tokens["b"])
    )
    assert owner.status_code == 200, owner.text  # it exists: B's worker reads it


def test_find_is_masked_needs_a_purpose_and_is_audited_per_household(setting):
    client, tokens, rows, mine, _, db = setting
    headers = bearer(tokens["a"])
    missing = client.post("/households/find", json={"household_id": mine[0]}, headers=headers)
    assert missing.status_code == 422
    before = _audit_rows(db)
    found = client.post(
        "/households/find", json={"purpose": "核查", "household_id": mine[0]}, headers=headers
    )
    assert found.status_code == 200
    (answer,) = found.json()
    assert _audit_rows(db) == before + 1
    people = rows[rows["户编号"] == mine[0]]
    for person, shown in zip(
        people[people["身份证号"] != ""].itertuples(), answer["residents"], strict=False
    ):
        assert shown["id_number"] in {mask_id(i) for i in people["身份证号"]}
        assert person.身份证号 not in json.dumps(answer, ensure_ascii=False)
    assert answer["grid_code"]
    assert answer["worker"]
    detail = client.get(
        f"/households/{mine[0]}", params={"purpose": "核查", "unmask": True}, headers=headers
    )
    assert detail.status_code == 200
    assert _audit_rows(db) == before + 2
    ids = set(people["身份证号"]) - {""}
    assert not ids or ids & {r["id_number"] for r in detail.json()["residents"]}


def test_visits_cadres_and_due_for_the_grid_s_own_worker(setting):
    client, tokens, _, mine, _, _ = setting
    headers = bearer(tokens["a"])
    assigned = client.post(
        "/households/cadres", json={"household_ids": mine[:4], "cadre": "干部乙"}, headers=headers
    )
    assert assigned.status_code == 200
    assert assigned.json()["holds"] == 4
    assert assigned.json()["warning"]
    due = client.get("/households/due", params={"days": 30}, headers=headers).json()
    assert {row["household_id"] for row in due if row["cadre"] == "干部乙"} == set(mine[:4])
    visit = client.post(
        f"/households/{mine[0]}/visits",
        json={"cadre": "干部乙", "asked": "低保续办", "done": "已登记", "follow_up": "月底回访"},
        headers=headers,
    )
    assert visit.status_code == 201
    seen = client.get(
        f"/households/{mine[0]}/visits", params={"purpose": "回访"}, headers=headers
    ).json()
    assert seen[0]["asked"] == "低保续办"
    assert seen[0]["cadre"] == "干部乙"
    due = client.get("/households/due", params={"days": 30}, headers=headers).json()
    assert mine[0] not in {row["household_id"] for row in due}


def test_planners_viewers_and_unbound_staff_read_counts_only(setting):
    client, tokens, _, mine, _, _ = setting
    for who in ("planner", "viewer", "unbound"):
        headers = bearer(tokens[who])
        counts = client.get("/households/occupancy", headers=headers)
        assert counts.status_code == 200
        assert sum(row["households"] for row in counts.json()) > 0
        assert not {"head", "phone", "name", "id_number"} & set(counts.json()[0])
        detail = client.get(f"/households/{mine[0]}", params={"purpose": "x"}, headers=headers)
        assert detail.status_code == 403
        find = client.post(
            "/households/find", json={"purpose": "x", "household_id": mine[0]}, headers=headers
        )
        assert find.status_code == 403
    buildings = client.get(
        "/households/occupancy", params={"level": "building"}, headers=bearer(tokens["viewer"])
    ).json()
    assert all(row["building_id"] for row in buildings)


def test_an_admin_purges_a_household_everywhere(setting):
    client, tokens, _, mine, _, _ = setting
    target = mine[-1]
    refused = client.delete(f"/households/{target}", headers=bearer(tokens["admin"]))
    assert refused.status_code == 422  # no reason
    purged = client.delete(
        f"/households/{target}", params={"reason": "迁出"}, headers=bearer(tokens["admin"])
    )
    assert purged.status_code == 200
    assert purged.json()["removed"]["households"] == 1
    gone = client.get(
        f"/households/{target}", params={"purpose": "x"}, headers=bearer(tokens["admin"])
    )
    assert gone.status_code == 404


def test_a_served_map_follows_the_household_records(setting):
    client, tokens, _, mine, _, _ = setting
    headers = bearer(tokens["admin"])

    def residents() -> int:
        page = client.get("/maps/district.html", headers=headers).text
        start = page.index('"residents":[', page.index('"grids":{')) + len('"residents":')
        return sum(int(v) for v in json.loads(page[start : page.index("]", start) + 1]) if v)

    before = residents()
    sizes = {
        key: client.get(f"/households/{key}", params={"purpose": "核查"}, headers=headers).json()[
            "size"
        ]
        for key in mine[1:6]
    }
    target, size = max(sizes.items(), key=lambda item: item[1])
    assert size > 0
    gone = client.delete(f"/households/{target}", params={"reason": "迁出"}, headers=headers)
    assert gone.status_code == 200
    assert residents() == before - size


def test_the_footprints_a_large_district_s_map_loads_carry_the_records_counts(setting):
    client, tokens, _, _, _, db = setting
    store = open_store(db)
    homes = store.read_table(hh.households)
    store.engine.dispose()
    per_building = homes.groupby("building_id").agg(
        households=("household_id", "size"), residents=("size", "sum")
    )
    answer = client.get(
        "/maps/buildings.geojson",
        params={"bbox": "-180,-90,180,90", "limit": 100_000},
        headers=bearer(tokens["viewer"]),
    )
    assert answer.status_code == 200
    shown = {f["properties"]["building_id"]: f["properties"] for f in answer.json()["features"]}
    for building, row in per_building.iterrows():
        assert shown[building]["households"] == row["households"]
        assert shown[building]["residents"] == row["residents"]
    without = next(p for key, p in shown.items() if key not in per_building.index)
    assert without["residents"] is None
