"""Many writers at once on PostGIS (issue #18 §5): ``gridmap serve --workers 4`` on a database of
three streets while the CLI re-imports street A, two planners race edits in B and cases arrive
in C, with readers in B and C throughout (tests/writers.py, here for 20 seconds; bench/concurrency.py runs it for 60). Then every
write is accounted for in the database: no lost update, a stale revision answered 409, every
acknowledged case stored once, no 5xx, nothing hung."""

from __future__ import annotations

import writers


def test_four_writers_in_three_streets_lose_nothing_and_never_fail(postgis_url, shared_data):
    import pgcluster

    url = pgcluster.fresh_database(postgis_url)
    tally = writers.run(url, shared_data / "kunming_buildings.geojson", seconds=20)
    assert tally.problems == []
    assert tally.imports >= 1
    assert tally.edits_ok >= 2
    assert tally.edits_stale >= 1  # the lock-step rounds make one of each pair stale
    assert len(tally.cases_acknowledged) >= 10
    assert tally.reads >= 10
    assert set(tally.statuses) <= {200, 409}
