"""The case loop (上报 -> 立案 -> 派遣 -> 处置 -> 核查 -> 结案), deadlines in working time, overdue."""

from __future__ import annotations

import datetime as dt
import itertools

import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from api.errors import status_of
from geo.errors import Conflict, InputError
from geo.incidents.catalogue import load_catalogue
from geo.incidents.workflow import (
    STATUSES,
    TRANSITIONS,
    IllegalTransition,
    UnknownStatusError,
    WorkCalendar,
    allowed_next,
    current_status,
    deadline,
    deadlines,
    is_overdue,
    is_sent_back,
    transition,
    validate_events,
)

SH = "Asia/Shanghai"
HAPPY_PATH = ["reported", "registered", "dispatched", "handled", "verified", "closed"]


def local(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=SH)


def events_for(incident: str, path: list[str], start: str = "2026-11-23 09:00") -> pd.DataFrame:
    times = pd.date_range(local(start), periods=len(path) - 1, freq="1h")
    return pd.DataFrame(
        {
            "incident_id": incident,
            "from_status": path[:-1],
            "to_status": path[1:],
            "actor": "张三",
            "at": times,
        }
    )


def test_status_labels_are_chinese():
    assert [STATUSES[s] for s in HAPPY_PATH] == ["上报", "立案", "派遣", "处置", "核查", "结案"]


def test_the_happy_path_is_legal():
    for a, b in itertools.pairwise(HAPPY_PATH):
        transition(a, b)
    validate_events(events_for("A", HAPPY_PATH))


def test_sent_back_loop_from_verification_to_handling():
    path = ["reported", "registered", "dispatched", "handled", "dispatched", "handled"]
    path += ["dispatched", "handled", "verified", "closed"]  # failed the check twice
    events = events_for("A", path)
    validate_events(events)
    assert current_status(events)["A"] == "closed"
    assert is_sent_back("handled", "dispatched")
    assert is_sent_back("dispatched", "registered")  # a wrong dispatch refused
    assert not is_sent_back("handled", "verified")


@pytest.mark.parametrize(
    ("current", "target", "allowed"),
    [
        ("reported", "closed", "registered (立案), rejected (不予立案)"),
        ("reported", "dispatched", "registered (立案)"),
        ("registered", "handled", "dispatched (派遣)"),
        ("verified", "handled", "closed (结案)"),
        ("closed", "reported", "none: the case is finished"),
        ("rejected", "registered", "none: the case is finished"),
        ("handled", "closed", "verified (核查), dispatched (派遣)"),
    ],
)
def test_illegal_transitions_list_the_allowed_steps(current, target, allowed):
    with pytest.raises(IllegalTransition) as info:
        transition(current, target)
    assert f"allowed next: {allowed}" in str(info.value)
    assert isinstance(info.value, Conflict)
    assert status_of(info.value) == 409


def test_every_pair_is_either_allowed_or_refused():
    for a in STATUSES:
        for b in STATUSES:
            if b in allowed_next(a):
                transition(a, b)
            else:
                with pytest.raises(IllegalTransition):
                    transition(a, b)
    assert sum(len(v) for v in TRANSITIONS.values()) == 8  # 6 forward steps, 2 sent back


def test_unknown_status_is_an_input_error():
    with pytest.raises(UnknownStatusError, match="unknown status 'done'") as info:
        transition("handled", "done")
    assert isinstance(info.value, InputError)


def test_event_chains_that_skip_or_jump_are_refused():
    skipping = events_for("B", ["reported", "registered", "handled"])
    with pytest.raises(IllegalTransition, match="incident B"):
        validate_events(skipping)
    broken = events_for("C", HAPPY_PATH)
    broken.loc[3, "from_status"] = "registered"  # says registered, but the case was handled
    with pytest.raises(IllegalTransition, match=r"incident C: event at .* starts from registered"):
        validate_events(broken)


# Friday 27 November 2026, 16:00 in Shanghai
FRIDAY_4PM = local("2026-11-27 16:00")


@pytest.mark.parametrize(
    ("start", "limit", "expected"),
    [
        (FRIDAY_4PM, "1h", "2026-11-27 17:00"),
        (FRIDAY_4PM, "4h", "2026-11-30 11:00"),  # 1.5 h on Friday, 2.5 h on Monday
        (FRIDAY_4PM, "2wd", "2026-12-01 16:00"),  # same clock two working days on
        (FRIDAY_4PM, "3d", "2026-11-30 16:00"),  # calendar days ignore the weekend
        (local("2026-11-28 10:00"), "1h", "2026-11-30 09:30"),  # reported on Saturday
        (local("2026-11-30 11:00"), "2h", "2026-11-30 14:30"),  # over the lunch break
        (local("2026-11-30 12:30"), "1h", "2026-11-30 14:30"),  # starts in the lunch break
        (local("2026-11-30 07:00"), "7.5h", "2026-11-30 17:30"),  # a whole working day
        (local("2026-11-30 18:00"), "0.5h", "2026-12-01 09:00"),
    ],
)
def test_deadlines_in_working_time(start, limit, expected):
    assert deadline(start, None, limit) == local(expected).tz_convert("UTC")


def test_deadline_counts_from_registration():
    reported = local("2026-11-23 09:00")
    registered = local("2026-11-24 09:00")
    assert deadline(reported, registered, "2h") == local("2026-11-24 11:00")
    assert deadline(reported, pd.NaT, "2h") == local("2026-11-23 11:00")


def test_holidays_and_make_up_workdays():
    # 国庆: 1-7 October 2026 off; Saturday 10 October is a make-up working day (调休)
    calendar = WorkCalendar(
        holidays=[f"2026-10-0{d}" for d in range(1, 8)], workdays=["2026-10-10"]
    )
    start = local("2026-09-30 17:00")
    assert deadline(start, None, "1h", calendar=calendar) == local("2026-10-08 09:00")
    friday = local("2026-10-09 17:00")
    assert deadline(friday, None, "1h", calendar=calendar) == local("2026-10-10 09:00")
    assert deadline(friday, None, "1h") == local("2026-10-12 09:00")  # no make-up day


def test_calendar_rejects_bad_periods_and_naive_times():
    with pytest.raises(InputError, match="increasing"):
        WorkCalendar(periods=(("13:30", "12:00"),))
    with pytest.raises(InputError, match="HH:MM"):
        WorkCalendar(periods=(("8h", "12:00"),))
    with pytest.raises(InputError, match="no time zone"):
        deadline(pd.Timestamp("2026-11-27 16:00"), None, "1h")


@settings(max_examples=60, deadline=None)
@given(
    st.datetimes(min_value=dt.datetime(2026, 1, 1), max_value=dt.datetime(2026, 12, 31)),
    st.integers(0, 40 * 4),
    st.integers(0, 40 * 4),
)
@example(dt.datetime(2026, 1, 1), 74, 0)  # 18.5 h ends at Monday's lunch break; then + 0 h
def test_working_hours_add_up(start, quarters_a, quarters_b):
    calendar = WorkCalendar()
    begin = pd.Timestamp(start).tz_localize(SH)
    a, b = quarters_a / 4, quarters_b / 4
    step = calendar.add_working_hours(calendar.add_working_hours(begin, a), b)
    assert step == calendar.add_working_hours(begin, a + b)
    assert calendar.add_working_hours(begin, a) >= begin


def test_deadlines_vectorised_uses_the_catalogue():
    catalogue = load_catalogue()
    incidents = pd.DataFrame(
        {
            "category_code": ["09009", "06001", "10099"],
            "reported_at": [FRIDAY_4PM] * 3,
            "registered_at": [pd.NaT, FRIDAY_4PM, pd.NaT],
        },
        index=[7, 8, 9],
    )
    result = deadlines(incidents, catalogue)
    assert list(result.index) == [7, 8, 9]
    assert result[7] == local("2026-11-27 17:00")  # 1h
    assert result[8] == local("2026-12-04 16:00")  # 5wd
    with pytest.raises(InputError, match="not in the catalogue: 99999"):
        deadlines(incidents.assign(category_code="99999"), catalogue)


def test_is_overdue_open_late_and_closed_late():
    limit = local("2026-11-30 11:00")
    df = pd.DataFrame(
        {
            "deadline": [limit] * 5,
            "closed_at": [
                pd.NaT,
                pd.NaT,
                limit - pd.Timedelta("1min"),
                limit + pd.Timedelta("1min"),
                pd.NaT,
            ],
            "status": ["dispatched", "dispatched", "closed", "closed", "rejected"],
        }
    )
    now = [local("2026-11-30 10:00"), local("2026-11-30 12:00")]
    assert is_overdue(df, now=now[0]).tolist() == [False, False, False, True, False]
    assert is_overdue(df, now=now[1]).tolist() == [True, True, False, True, False]
