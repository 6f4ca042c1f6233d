"""The first edit after the service starts: loaded ahead, and answering what a cold edit answers.

A server loads the district, its adjacency, the newest drafts and the engine's compiled
functions when it starts (issue #16: the first edit took 1.1 s on Suzhou, later ones 0.1 s).
What is loaded ahead must be exactly what an edit would have loaded itself: checked by making
the same edit on two copies of one real project, one cold and one warmed.
"""

from __future__ import annotations

import shutil

import pandas as pd
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import create_token
from api.settings import Settings
from geo.plans import editing
from geo.plans import store as plans
from geo.storage.store import open_store


def _draft_and_move(store) -> tuple[int, dict]:
    """A draft copied from the published plan, and a move of one building to a neighbour grid."""
    draft = editing.copy_plan(store, plans.published_plan_id(store), author="王工")
    plan = plans.load_plan(store, draft)
    sizes = plan.grids[plan.grids["n_buildings"] >= 4]
    community = sizes["community"].value_counts().index[0]
    codes = sizes.index[sizes["community"] == community]
    building = plan.labels.index[plan.labels == codes[0]][0]
    return draft, {"buildings": [str(building)], "to": str(codes[1])}


def _answer(result: editing.EditResult) -> dict:
    answer = result.to_dict()
    answer["geometry"] = [g.wkb_hex for g in result.touched.geometry.normalize()]
    return answer


def test_an_edit_after_the_warm_up_answers_what_a_cold_edit_answers(suzhou_project, tmp_path):
    store = open_store(suzhou_project)
    draft, move = _draft_and_move(store)
    store.engine.dispose()
    warm_copy = tmp_path / "warm.gpkg"
    shutil.copyfile(suzhou_project, warm_copy)

    editing.clear_cache()
    cold_store = open_store(suzhou_project)
    cold = editing.apply_edit(cold_store, draft, "move", move, revision=0, author="王工")

    editing.clear_cache()
    warm_store = open_store(warm_copy)
    editing.warm(warm_store)
    warm = editing.apply_edit(warm_store, draft, "move", move, revision=0, author="王工")

    assert cold.moved == {move["buildings"][0]: move["to"]}
    assert _answer(warm) == _answer(cold)
    cold_plan = plans.load_plan(cold_store, draft)
    warm_plan = plans.load_plan(warm_store, draft)
    pd.testing.assert_series_equal(warm_plan.labels, cold_plan.labels)
    pd.testing.assert_frame_equal(
        pd.DataFrame(warm_plan.grids.drop(columns="geometry")),
        pd.DataFrame(cold_plan.grids.drop(columns="geometry")),
    )


def test_the_service_loads_the_district_and_the_drafts_when_it_starts(kunming_project):
    store = open_store(kunming_project)
    draft, move = _draft_and_move(store)
    planner = create_token(store, "规划员", "planner")
    editing.clear_cache()
    with TestClient(create_app(Settings(db=kunming_project))) as client:
        # loaded before any request: the district and the draft's state
        assert len(editing._districts) == 1
        assert [key[1] for key in editing._states] == [draft]
        answer = client.post(
            f"/plans/{draft}/edits",
            headers={"Authorization": f"Bearer {planner}"},
            json={"op": "move", "args": move, "revision": 0},
        )
    assert answer.status_code == 200, answer.text
    assert answer.json()["moved"] == {move["buildings"][0]: move["to"]}
    assert plans.load_plan(store, draft).labels[move["buildings"][0]] == move["to"]


def test_a_project_without_plans_starts_without_loading_anything(tmp_path):
    store = open_store(tmp_path / "empty.gpkg", create=True)
    editing.clear_cache()
    editing.warm(store)
    assert len(editing._districts) == 0
