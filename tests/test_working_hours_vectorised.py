"""Deadlines for a whole feed at once give the moments the day-by-day walk gave, case by case.

``WorkCalendar.add_working_hours`` used to walk each case's days one at a time (an import of
30,000 cases spent almost all its time there); it now places every start on one table of
working periods (issue #16). ``stepwise`` below is the walk as it was, kept as the reference
the vectorised arithmetic is held to, on random calendars, zones, starts and limits.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from geo.errors import InputError
from geo.incidents.catalogue import load_catalogue, parse_time_limit
from geo.incidents.workflow import WorkCalendar, _as_aware, _parse_clock, deadline, deadlines

ZONES = ("Asia/Shanghai", "America/New_York", "Europe/Berlin", "UTC")
PERIODS = (
    (("08:30", "12:00"), ("13:30", "17:30")),
    (("09:00", "17:00"),),
    (("07:15:30", "07:16"), ("12:00", "12:00:01"), ("20:00", "23:59")),
)


def stepwise(calendar: WorkCalendar, start: pd.Timestamp, hours: float) -> pd.Timestamp:
    """The scalar walk over days that ``add_working_hours`` was until issue #16, verbatim."""
    cursor = _as_aware(start).tz_convert(calendar.tz)
    remaining = pd.Timedelta(hours=hours)
    if remaining <= pd.Timedelta(0):
        return cursor.tz_convert("UTC")
    for _ in range(3700):
        day = cursor.date()
        if calendar.is_workday(day):
            for a, b in calendar.periods:
                begin = pd.Timestamp.combine(day, _parse_clock(a)).tz_localize(calendar.tz)
                end = pd.Timestamp.combine(day, _parse_clock(b)).tz_localize(calendar.tz)
                if cursor >= end:
                    continue
                begin = max(begin, cursor)
                if remaining <= end - begin:
                    return (begin + remaining).tz_convert("UTC")
                remaining -= end - begin
                cursor = end
        next_day = pd.Timestamp.combine(day + dt.timedelta(days=1), dt.time())
        cursor = next_day.tz_localize(calendar.tz)
    raise InputError(f"a time limit of {hours} working hours does not end within ten years")


days_2026 = st.dates(min_value=dt.date(2026, 1, 1), max_value=dt.date(2026, 12, 31))
calendars = st.builds(
    WorkCalendar,
    tz=st.sampled_from(ZONES),
    periods=st.sampled_from(PERIODS),
    weekdays=st.sets(st.integers(0, 6), min_size=1).map(lambda s: tuple(sorted(s))),
    holidays=st.frozensets(days_2026, max_size=40),
    workdays=st.frozensets(days_2026, max_size=5),
)
starts = st.datetimes(min_value=dt.datetime(2025, 12, 1), max_value=dt.datetime(2027, 1, 31))
hours = st.one_of(
    st.integers(-4, 40 * 4).map(lambda q: q / 4),
    st.floats(min_value=0, max_value=400, allow_nan=False),
    st.sampled_from([0.0, 1 / 3, 3.5, 7.5, 37.5]),
)


@settings(max_examples=150, deadline=None)
@given(calendars, st.lists(st.tuples(starts, hours), min_size=1, max_size=25))
@example(WorkCalendar(), [(dt.datetime(2026, 1, 1), 18.5), (dt.datetime(2026, 1, 5, 12), 0.0)])
@example(WorkCalendar(), [(dt.datetime(2026, 1, 5, 17, 30), 3.5), (dt.datetime(2026, 1, 5, 8), 1)])
def test_many_starts_end_where_the_day_by_day_walk_ended(calendar, cases):
    moments = [pd.Timestamp(s).tz_localize("UTC") for s, _ in cases]
    limits = np.array([h for _, h in cases])
    expected = [stepwise(calendar, m, h) for m, h in zip(moments, limits, strict=True)]
    found = calendar.add_working_hours_many(moments, limits)
    assert list(found) == expected
    one_by_one = [calendar.add_working_hours(m, h) for m, h in zip(moments, limits, strict=True)]
    assert one_by_one == expected


def test_a_calendar_without_working_time_refuses_a_limit_as_the_walk_did():
    never = WorkCalendar(weekdays=())
    start = pd.Timestamp("2026-03-02 09:00", tz="Asia/Shanghai")
    with pytest.raises(InputError, match="does not end within ten years"):
        stepwise(never, start, 1.0)
    with pytest.raises(InputError, match="does not end within ten years"):
        never.add_working_hours_many([start], 1.0)
    assert never.add_working_hours(start, 0) == start


def test_a_naive_start_is_refused_in_a_batch_too():
    with pytest.raises(InputError, match="no time zone"):
        WorkCalendar().add_working_hours_many([pd.Timestamp("2026-03-02 09:00")], 1.0)


def stepwise_deadline(reported, registered, limit: str, calendar: WorkCalendar) -> pd.Timestamp:
    """``deadline`` as it was: calendar days added, working time walked day by day."""
    start = registered if not pd.isna(registered) else reported
    value, unit = parse_time_limit(limit)
    if unit == "d":
        return (start + pd.Timedelta(days=value)).tz_convert("UTC")
    return stepwise(calendar, start, value * calendar.hours_per_day if unit == "wd" else value)


def test_deadlines_of_a_feed_are_the_per_case_deadlines_of_the_catalogue():
    catalogue = load_catalogue()
    rng = np.random.default_rng(16)
    n = 3_000
    reported = pd.Timestamp("2026-01-01", tz="Asia/Shanghai") + pd.to_timedelta(
        rng.integers(0, 365 * 86_400, n), unit="s"
    )
    registered = pd.Series(reported + pd.Timedelta(hours=5)).where(rng.random(n) < 0.3)
    cases = pd.DataFrame(
        {
            "category_code": rng.choice(catalogue["code"].to_numpy(), n),
            "reported_at": reported.tz_convert("UTC"),
            "registered_at": registered.dt.tz_convert("UTC").to_numpy(),
        },
        index=pd.RangeIndex(100, 100 + n),
    )
    calendar = WorkCalendar(
        holidays=[f"2026-10-0{d}" for d in range(1, 8)], workdays=["2026-10-10"]
    )
    limits = catalogue.set_index("code")["time_limit"]
    expected = [
        stepwise_deadline(row.reported_at, row.registered_at, limits[row.category_code], calendar)
        for row in cases.itertuples()
    ]
    found = deadlines(cases, catalogue, calendar=calendar)
    assert found.index.equals(cases.index)
    assert found.tolist() == expected
    assert (
        found.tolist()
        == [
            deadline(r.reported_at, r.registered_at, limits[r.category_code], calendar=calendar)
            for r in cases.iloc[:200].itertuples()
        ]
        + expected[200:]
    )
    assert str(found.dtype) == "datetime64[us, UTC]"
