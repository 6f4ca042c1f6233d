"""The editing model on the real Kunming project: every operation, undo/redo, conflicts, crashes."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from api.cli import app
from api.errors import status_of
from geo.errors import Conflict, InputError, NotFound
from geo.people import roster as rosters
from geo.plans import editing
from geo.plans import store as plans
from geo.storage.store import open_store

COMMUNITY = "北泰花园"  # six grids of 4-5 buildings in the automatic plan


@pytest.fixture
def draft(kunming_project):
    """(store, draft plan id) copied from the published automatic plan."""
    store = open_store(kunming_project)
    return store, editing.copy_plan(store, plans.published_plan_id(store), author="王工")


def community_grids(plan: plans.Plan, community: str = COMMUNITY) -> pd.DataFrame:
    grids = plan.grids[plan.grids["community"] == community]
    return grids.sort_values("n_buildings")


def members(plan: plans.Plan, code: str) -> list[str]:
    return sorted(plan.labels.index[plan.labels == code])


def stored(store, plan_id: int) -> plans.Plan:
    """The plan as the file holds it, bypassing the editor's cache."""
    return plans.load_plan(store, plan_id)


def assert_same_plan(a: plans.Plan, b: plans.Plan) -> None:
    pd.testing.assert_series_equal(
        a.labels.sort_index(), b.labels.sort_index(), check_names=False, check_dtype=False
    )
    columns = ["community", "n_buildings", "status", "locked", "worker_id"]
    left = pd.DataFrame(a.grids[columns]).sort_index().astype(str)
    right = pd.DataFrame(b.grids[columns]).sort_index().astype(str)
    left.index.name = right.index.name = None
    pd.testing.assert_frame_equal(left, right)


def test_copy_is_a_draft_with_its_parent_and_the_same_grids(draft):
    store, plan_id = draft
    row = plans.plan_row(store, plan_id)
    parent = plans.published_plan_id(store)
    assert (row["status"], row["parent_id"], row["revision"], row["author"]) == (
        "draft",
        parent,
        0,
        "王工",
    )
    assert_same_plan(stored(store, plan_id), stored(store, parent))


def test_a_published_plan_is_never_edited(draft):
    store, _ = draft
    published = plans.published_plan_id(store)
    plan = stored(store, published)
    with pytest.raises(editing.NotDraft, match="copy") as raised:
        editing.apply_edit(store, published, "lock", {"grid": plan.grids.index[0]}, revision=0)
    assert status_of(raised.value) == 409


def test_move_answers_the_touched_grids_and_their_violations(draft):
    store, plan_id = draft
    before = editing.plan_state(store, plan_id)
    grids = community_grids(before)
    small, large = grids.index[0], grids.index[-1]  # 4 and 5 buildings
    building = members(before, small)[0]
    result = editing.apply_edit(
        store, plan_id, "move", {"buildings": [building], "to": large}, revision=0, author="王工"
    )
    assert result.revision == 1
    assert plans.plan_row(store, plan_id)["revision"] == 1
    after = stored(store, plan_id)
    # majority codes: both grids keep their codes (3 of 4 and 5 of 6 buildings stay)
    assert result.moved == {building: large}
    assert set(result.touched.index) == {small, large}
    assert result.touched.loc[small, "n_buildings"] == 3
    assert result.touched.loc[large, "n_buildings"] == 6
    rules = set(zip(result.violations["grid_code"], result.violations["rule"], strict=True))
    assert (small, "undersized") in rules
    assert (large, "oversized") in rules
    assert after.labels[building] == large
    # only the touched grids changed; everything else is as before
    others = before.grids.index.difference([small, large])
    pd.testing.assert_series_equal(
        before.grids.loc[others, "n_buildings"], after.grids.loc[others, "n_buildings"]
    )
    assert_same_plan(after, editing.plan_state(store, plan_id))
    step = editing.history(store, plan_id).iloc[-1]
    assert (step["op"], step["author"], step["revision"]) == ("move", "王工", 1)
    assert step["args"] == {"buildings": [building], "to": large}


def test_moving_across_communities_is_refused_and_changes_nothing(draft):
    store, plan_id = draft
    plan = editing.plan_state(store, plan_id)
    building = members(plan, community_grids(plan).index[0])[0]
    elsewhere = community_grids(plan, "同德广场").index[0]
    with pytest.raises(editing.EditError, match="never spans two communities") as raised:
        editing.apply_edit(
            store, plan_id, "move", {"buildings": [building], "to": elsewhere}, revision=0
        )
    assert status_of(raised.value) == 422
    assert plans.plan_row(store, plan_id)["revision"] == 0
    assert editing.history(store, plan_id).empty


def test_moving_a_building_far_away_reports_a_broken_grid(draft):
    store, plan_id = draft
    plan = editing.plan_state(store, plan_id)
    grids = community_grids(plan)
    centroids = grids.geometry.centroid
    # the two grids of the community furthest apart
    pairs = [(a, b, centroids[a].distance(centroids[b])) for a in grids.index for b in grids.index]
    a, b, _ = max(pairs, key=lambda item: item[2])
    building = members(plan, a)[0]
    result = editing.apply_edit(
        store, plan_id, "move", {"buildings": [building], "to": b}, revision=0
    )
    assert result.touched.loc[b, "contiguous"] is False or not bool(
        result.touched.loc[b, "contiguous"]
    )
    assert "non_contiguous" in set(result.violations["rule"]) or "oversized" in set(
        result.violations["rule"]
    )


def test_move_to_a_new_grid_issues_a_never_used_code(draft):
    store, plan_id = draft
    plan = editing.plan_state(store, plan_id)
    source = community_grids(plan).index[-1]
    ids = members(plan, source)[:2]
    issued = plans.issued_codes(store)
    result = editing.apply_edit(store, plan_id, "move", {"buildings": ids, "to": None}, revision=0)
    new = set(result.touched.index) - {source}
    assert len(new) == 1
    code = new.pop()
    assert code not in issued
    assert code in plans.issued_codes(store)
    assert sorted(
        stored(store, plan_id).labels.index[stored(store, plan_id).labels == code]
    ) == sorted(ids)


def test_swap_exchanges_two_buildings(draft):
    store, plan_id = draft
    plan = editing.plan_state(store, plan_id)
    a_grid, b_grid = community_grids(plan).index[:2]
    a, b = members(plan, a_grid)[0], members(plan, b_grid)[0]
    editing.apply_edit(store, plan_id, "swap", {"a": a, "b": b}, revision=0)
    after = stored(store, plan_id)
    assert (after.labels[a], after.labels[b]) == (b_grid, a_grid)
    assert after.grids.loc[a_grid, "n_buildings"] == plan.grids.loc[a_grid, "n_buildings"]


def test_merge_then_automatic_split_gives_valid_grids(draft):
    store, plan_id = draft
    plan = editing.plan_state(store, plan_id)
    first, second = community_grids(plan).index[:2]  # 4 + 4
    merged = editing.apply_edit(store, plan_id, "merge", {"grids": [first, second]}, revision=0)
    assert len(merged.touched) == 1
    assert merged.touched["n_buildings"].iloc[0] == 8
    # two equal halves: neither old grid is the majority, so the merged grid gets a fresh code
    code = merged.touched.index[0]
    assert sorted(merged.removed) == sorted([first, second])
    assert code not in (first, second)
    split = editing.apply_edit(store, plan_id, "split", {"grid": code}, revision=1)
    assert sorted(split.touched["n_buildings"]) == [4, 4]
    assert split.touched["contiguous"].astype(bool).all()
    assert set(split.touched["status"]) == {"ok"}
    after = stored(store, plan_id)
    assert after.grids["n_buildings"].sum() == len(after.labels) == len(plan.labels)


def test_split_along_the_planners_parts(draft):
    store, plan_id = draft
    plan = editing.plan_state(store, plan_id)
    code = community_grids(plan).index[-1]
    ids = members(plan, code)
    result = editing.apply_edit(
        store, plan_id, "split", {"grid": code, "parts": [ids[:2]]}, revision=0
    )
    sizes = sorted(result.touched["n_buildings"].tolist())
    assert sizes == [2, len(ids) - 2]
    with pytest.raises(editing.EditError, match="outside grid"):
        editing.apply_edit(
            store, plan_id, "split", {"grid": code, "parts": [[plan.labels.index[0]]]}, revision=1
        )


def test_locked_grids_refuse_moves_and_survive_a_repartition(draft):
    store, plan_id = draft
    plan = editing.plan_state(store, plan_id)
    locked, other = community_grids(plan).index[:2]
    editing.apply_edit(store, plan_id, "lock", {"grids": [locked]}, revision=0)
    assert bool(stored(store, plan_id).grids.loc[locked, "locked"])
    with pytest.raises(editing.EditError, match="locked"):
        editing.apply_edit(
            store,
            plan_id,
            "move",
            {"buildings": members(plan, other)[:1], "to": locked},
            revision=1,
        )
    result = editing.apply_edit(
        store, plan_id, "repartition", {"communities": [COMMUNITY]}, revision=1
    )
    after = stored(store, plan_id)
    assert members(after, locked) == members(plan, locked)
    assert locked not in result.touched.index
    community = after.grids[after.grids["community"] == COMMUNITY]
    assert community["n_buildings"].sum() == community_grids(plan)["n_buildings"].sum()
    editing.apply_edit(store, plan_id, "unlock", {"grids": [locked]}, revision=2)
    assert not bool(stored(store, plan_id).grids.loc[locked, "locked"])


def test_assign_worker_clears_the_no_worker_violation(draft):
    store, plan_id = draft
    plan = editing.plan_state(store, plan_id)
    code = community_grids(plan).index[0]
    roster = pd.DataFrame(
        {
            "worker_id": ["W01", "W02"],
            "name": ["李梅", "张强"],
            "phone": [None, None],
            "community": [COMMUNITY, "同德广场"],
        }
    )
    rosters.import_roster(store, roster)
    result = editing.apply_edit(
        store, plan_id, "assign_worker", {"grid": code, "worker_id": "W01"}, revision=0
    )
    assert result.touched.loc[code, "worker"] == "李梅"
    assert "no_worker" not in set(result.violations["rule"])
    assert stored(store, plan_id).grids.loc[code, "worker_id"] == "W01"
    with pytest.raises(editing.EditError, match="belongs to community"):
        editing.apply_edit(
            store, plan_id, "assign_worker", {"grid": code, "worker_id": "W02"}, revision=1
        )
    with pytest.raises(NotFound):
        editing.apply_edit(
            store, plan_id, "assign_worker", {"grid": code, "worker_id": "W99"}, revision=1
        )


def test_unknown_things_are_named(draft):
    store, plan_id = draft
    with pytest.raises(editing.EditError, match="unknown operation"):
        editing.apply_edit(store, plan_id, "paint", {}, revision=0)
    with pytest.raises(NotFound, match="no building"):
        editing.apply_edit(store, plan_id, "move", {"buildings": ["nope"], "to": None}, revision=0)
    some = editing.plan_state(store, plan_id).labels.index[0]
    with pytest.raises(editing.EditError, match="two different buildings"):
        editing.apply_edit(store, plan_id, "swap", {"a": some, "b": some}, revision=0)
    with pytest.raises(NotFound, match="no grid"):
        editing.apply_edit(store, plan_id, "merge", {"grids": ["1", "2"]}, revision=0)


def test_undo_and_redo_walk_to_any_point_and_a_new_edit_drops_the_redo_tail(draft):
    store, plan_id = draft
    plan = editing.plan_state(store, plan_id)
    grids = community_grids(plan).index.tolist()
    states = [stored(store, plan_id)]
    steps = [
        ("move", {"buildings": members(plan, grids[0])[:1], "to": grids[1]}),
        ("lock", {"grids": [grids[2]]}),
        ("merge", {"grids": [grids[3], grids[4]]}),
        ("swap", {"a": members(plan, grids[5])[0], "b": members(plan, grids[1])[0]}),
    ]
    revision = 0
    for op, args in steps:
        revision = editing.apply_edit(store, plan_id, op, args, revision=revision).revision
        states.append(stored(store, plan_id))
    for back in range(len(steps), 0, -1):  # undo all the way
        revision = editing.undo(store, plan_id, revision=revision).revision
        assert_same_plan(stored(store, plan_id), states[back - 1])
    with pytest.raises(editing.EditError, match="nothing to undo"):
        editing.undo(store, plan_id, revision=revision)
    for forward in range(1, 3):  # redo two steps
        revision = editing.redo(store, plan_id, revision=revision).revision
        assert_same_plan(stored(store, plan_id), states[forward])
    revision = editing.apply_edit(
        store, plan_id, "unlock", {"grids": [grids[2]]}, revision=revision
    ).revision
    with pytest.raises(editing.EditError, match="nothing to redo"):
        editing.redo(store, plan_id, revision=revision)
    revision = editing.undo(store, plan_id, revision=revision).revision
    assert_same_plan(stored(store, plan_id), states[2])
    log = editing.history(store, plan_id)
    assert list(log["revision"]) == list(range(1, len(log) + 1))
    assert log["op"].tolist()[-3:] == ["redo", "unlock", "undo"]
    # the cache and the file agree after all that
    editing.clear_cache()
    assert_same_plan(editing.plan_state(store, plan_id), states[2])


def test_a_stale_revision_is_refused_with_what_changed(draft):
    store, plan_id = draft
    plan = editing.plan_state(store, plan_id)
    code_a, code_b = community_grids(plan).index[:2]
    editing.apply_edit(store, plan_id, "lock", {"grids": [code_a]}, revision=0, author="甲")
    with pytest.raises(editing.StaleRevision) as raised:
        editing.apply_edit(store, plan_id, "lock", {"grids": [code_b]}, revision=0, author="乙")
    error = raised.value
    assert isinstance(error, Conflict)
    assert status_of(error) == 409
    assert error.revision == 1
    assert [(c["op"], c["author"], c["args"]) for c in error.changes] == [
        ("lock", "甲", {"grids": [code_a]})
    ]
    assert not bool(stored(store, plan_id).grids.loc[code_b, "locked"])


def _digest(store, plan_id: int) -> str:
    with store.reading() as conn:
        rows = [
            conn.exec_driver_sql(sql, (plan_id,)).fetchall()
            for sql in (
                "SELECT building_id, grid_code FROM assignments WHERE plan_id = ? ORDER BY building_id",
                "SELECT grid_code, n_buildings, status, locked, hex(geom) FROM plan_grids WHERE plan_id = ? ORDER BY grid_code",
                "SELECT revision FROM plans WHERE plan_id = ?",
                "SELECT count(*) FROM edits WHERE plan_id = ?",
            )
        ]
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def test_killing_an_edit_mid_write_leaves_the_plan_at_the_last_complete_edit(draft):
    store, plan_id = draft
    plan = editing.plan_state(store, plan_id)
    small, large = community_grids(plan).index[[0, -1]]
    editing.apply_edit(store, plan_id, "lock", {"grids": [small]}, revision=0)
    before = _digest(store, plan_id)
    building = members(plan, large)[0]
    script = textwrap.dedent(
        f"""
        import os, signal
        from geo.plans import editing
        from geo.storage.store import open_store
        append = editing._append_grid_rows
        def append_then_die(*args):
            append(*args)  # assignments updated, grid rows written, not committed
            os.kill(os.getpid(), signal.SIGKILL)
        editing._append_grid_rows = append_then_die
        editing.apply_edit(open_store({str(store.path)!r}), {plan_id}, "move",
                           {{"buildings": [{building!r}], "to": None}}, revision=1)
        """
    )
    killed = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=300)
    assert killed.returncode == -9, killed.stderr.decode()[-2000:]
    assert _digest(store, plan_id) == before
    # and the plan goes on from there
    result = editing.apply_edit(
        store, plan_id, "move", {"buildings": [building], "to": None}, revision=1
    )
    assert result.revision == 2


@settings(
    max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    picks=st.lists(
        st.tuples(st.integers(0, 5), st.integers(0, 5), st.integers(0, 3)), min_size=1, max_size=4
    )
)
def test_any_moves_undone_give_the_plan_back(draft, picks):
    store, plan_id = draft
    start = stored(store, plan_id)
    revision = plans.plan_row(store, plan_id)["revision"]
    made = 0
    for source, target, which in picks:
        plan = editing.plan_state(store, plan_id)
        grids = community_grids(plan).index.tolist()
        if source >= len(grids) or target >= len(grids) or source == target:
            continue
        ids = members(plan, grids[source])
        revision = editing.apply_edit(
            store,
            plan_id,
            "move",
            {"buildings": [ids[which % len(ids)]], "to": grids[target]},
            revision=revision,
        ).revision
        made += 1
    for _ in range(made):
        revision = editing.undo(store, plan_id, revision=revision).revision
    assert_same_plan(stored(store, plan_id), start)


# -- the command line --------------------------------------------------------------------------


def gridmap(*args) -> object:
    return CliRunner().invoke(app, [str(a) for a in args], env={"GRIDMAP_LANG": "en"})


def test_cli_copy_move_undo_history_and_diff_map(kunming_project, tmp_path):
    store = open_store(kunming_project)
    published = plans.published_plan_id(store)
    result = gridmap("plan", "copy", published, "--db", kunming_project, "--author", "王工")
    assert result.exit_code == 0, result.output
    draft = max(plans.list_plans(store)["plan_id"])
    plan = plans.load_plan(store, draft)
    small, large = community_grids(plan).index[[0, -1]]
    building = members(plan, small)[0]
    result = gridmap("plan", "move", building, "--to", large, "--db", kunming_project)
    assert result.exit_code == 0, result.output
    assert "undersized" in result.output
    assert f"plan {draft} revision 1" in result.output
    result = gridmap(
        "plan", "move", building, "--to", small, "--db", kunming_project, "--revision", 0
    )
    assert result.exit_code == 4
    assert "revision" in result.output
    out = tmp_path / "diff.html"
    result = gridmap("plan", "diff", published, draft, "--db", kunming_project, "--map", out)
    assert result.exit_code == 0, result.output
    assert "1 buildings changed grid" in result.output
    assert out.stat().st_size > 10_000
    assert large in out.read_text(encoding="utf-8")
    result = gridmap("plan", "undo", "--db", kunming_project)
    assert result.exit_code == 0, result.output
    assert plans.load_plan(store, draft).labels[building] == small
    result = gridmap("plan", "history", "--db", kunming_project)
    assert '"op": "undo"' in result.output
    result = gridmap(
        "plan",
        "move",
        building,
        "--to",
        community_grids(plan, "同德广场").index[0],
        "--db",
        kunming_project,
    )
    assert result.exit_code == 2
    assert "two communities" in result.output
    result = gridmap("plan", "lock", "999", "--db", kunming_project)
    assert result.exit_code == 3


def test_cli_merge_split_lock_and_publish_with_a_reason(kunming_project):
    store = open_store(kunming_project)
    draft = editing.copy_plan(store, plans.published_plan_id(store))
    plan = plans.load_plan(store, draft)
    a, b = community_grids(plan).index[:2]
    assert gridmap("plan", "merge", a, b, "--db", kunming_project).exit_code == 0
    merged = plans.load_plan(store, draft)
    code = merged.labels[members(plan, a)[0]]
    assert gridmap("plan", "split", code, "--db", kunming_project).exit_code == 0
    other = community_grids(plan, "同德广场").index[0]
    assert gridmap("plan", "lock", other, "--db", kunming_project, "--plan", draft).exit_code == 0
    assert bool(plans.load_plan(store, draft).grids.loc[other, "locked"])
    result = gridmap("plan", "publish", draft, "--db", kunming_project)
    assert result.exit_code == 4
    assert "override" in result.output
    result = gridmap(
        "plan", "publish", draft, "--db", kunming_project, "--override", "小区太小，街道同意"
    )
    assert result.exit_code == 0, result.output
    assert plans.plan_row(store, draft)["override_reason"] == "小区太小，街道同意"
    result = gridmap("plan", "merge", a, b, "--db", kunming_project, "--plan", draft)
    assert result.exit_code == 4
    assert "copy" in result.output
    assert isinstance(editing.EditError("x"), InputError)


def test_two_planners_at_once_one_wins_and_the_other_is_told(draft):
    """Two processes' edits made on the same revision: one commits, the other gets 409."""
    store, plan_id = draft
    plan = editing.plan_state(store, plan_id)
    codes = community_grids(plan).index[:2].tolist()
    script = textwrap.dedent(
        """
        import sys, time
        from geo.plans import editing
        from geo.storage.store import open_store
        path, plan_id, code, start = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
        store = open_store(path)
        editing.plan_state(store, plan_id)  # warm, then go at the same moment
        time.sleep(max(0.0, start - time.time()))
        try:
            editing.apply_edit(store, plan_id, "lock", {"grids": [code]}, revision=0, author=code)
            print("won")
        except editing.StaleRevision as stale:
            print("stale", stale.changes[0]["author"])
        """
    )
    start = time.time() + 8
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(store.path), str(plan_id), code, str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for code in codes
    ]
    outputs = [run.communicate(timeout=300)[0].decode().split() for run in runs]
    assert sorted(o[0] for o in outputs) == ["stale", "won"], outputs
    winner = codes[[o[0] for o in outputs].index("won")]
    loser = next(o for o in outputs if o[0] == "stale")
    assert loser[1] == winner  # the refused planner learns who changed what
    after = stored(store, plan_id)
    assert after.revision == 1
    assert bool(after.grids.loc[winner, "locked"])
    assert editing.history(store, plan_id)["author"].tolist() == [winner]
