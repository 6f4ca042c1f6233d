"""The editor publishes the revision it shows (issue 13, item 3), in Debian's chromium.

A planner reviews a draft in the editor; meanwhile someone else edits it. The editor's publish
sends the revision on screen, so the server refuses it (409) and the page says why, instead of
publishing grids the planner never saw.
"""

from __future__ import annotations

import pytest
from api_support import uvicorn_server
from browser import launch, open_page
from playwright.sync_api import Route

from api.auth import create_token
from geo.plans import editing
from geo.plans import store as plans
from geo.storage.store import open_store

pytestmark = pytest.mark.browser

READY = "window.__gridmapEditorReady === true"
MESSAGE = "document.getElementById('gm-ed-message').textContent"


def only_local(base: str):
    def route(request_route: Route) -> None:
        if request_route.request.url.startswith(base):
            request_route.continue_()
        else:
            request_route.abort()

    return route


def test_the_editor_cannot_publish_a_revision_edited_behind_its_back(kunming_project):
    store = open_store(kunming_project)
    token = create_token(store, "规划员", "planner")
    draft = editing.copy_plan(store, plans.published_plan_id(store), author="规划员")
    grid = plans.load_plan(store, draft).grids.index[0]
    with uvicorn_server(kunming_project) as base:
        url = f"{base}/plans/{draft}/edit?token={token}&basemap=none"
        with launch() as browser, open_page(url, browser=browser, route=only_local(base)) as opened:
            page = opened.page
            page.wait_for_function(READY)
            editing.apply_edit(store, draft, "lock", {"grid": grid}, revision=0, author="别人")
            page.fill("#gm-ed-reason", "街道办同意")
            page.click("#gm-ed-publish")
            page.wait_for_function(f"{MESSAGE}.includes('409')")
            assert "审阅" in page.evaluate(MESSAGE)  # the server's reason, in the page's language
    row = plans.plan_row(store, draft)
    assert (row["status"], row["revision"]) == ("draft", 1)
