"""The city-management case loop, working-time deadlines and overdue cases.

The loop (数字城管 流程): 上报 ``reported`` -> 立案 ``registered`` -> 派遣 ``dispatched`` ->
处置 ``handled`` -> 核查 ``verified`` -> 结案 ``closed``. A status names the step last done, so
``handled`` means "the handler reports it done" and ``verified`` "the check passed". Two ways
back, both called 退回 (sent back): the check fails (``handled`` -> ``dispatched``: with the
handler again) and the department refuses a wrong dispatch (``dispatched`` -> ``registered``:
to be dispatched again). A report that is not a city-management case is not registered
(``reported`` -> ``rejected``, 不予立案).

Events (the ``incident_events`` table) have the columns :data:`EVENT_COLUMNS`:
``incident_id, from_status, to_status, actor, at`` (``at`` tz-aware).

Deadlines count working time on a :class:`WorkCalendar`: by default Monday-Friday
08:30-12:00 and 13:30-17:30 Asia/Shanghai (7.5 working hours a day), no holidays unless given.
A limit in working days is that many working-day lengths of working time, so "2wd" from
Friday 16:00 ends Tuesday 16:00; "d" limits are plain calendar days.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

import pandas as pd

from geo.errors import Conflict, InputError
from geo.incidents.catalogue import parse_time_limit

STATUSES = {
    "reported": "上报",
    "registered": "立案",
    "dispatched": "派遣",
    "handled": "处置",
    "verified": "核查",
    "closed": "结案",
    "rejected": "不予立案",
}
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "reported": ("registered", "rejected"),
    "registered": ("dispatched",),
    "dispatched": ("handled", "registered"),
    "handled": ("verified", "dispatched"),
    "verified": ("closed",),
    "closed": (),
    "rejected": (),
}
SENT_BACK = {("handled", "dispatched"), ("dispatched", "registered")}
OPEN_STATUSES = ("reported", "registered", "dispatched", "handled", "verified")
EVENT_COLUMNS = ["incident_id", "from_status", "to_status", "actor", "at"]


class UnknownStatusError(InputError):
    """A status that is not one of :data:`STATUSES`."""


class IllegalTransition(Conflict):
    """A step the case loop does not allow from the current status."""


def _label(status: str) -> str:
    return f"{status} ({STATUSES[status]})"


def _check_status(status: str) -> None:
    if status not in STATUSES:
        raise UnknownStatusError(
            f"unknown status {status!r}",
            hint="statuses: " + ", ".join(_label(s) for s in STATUSES),
        )


def allowed_next(status: str) -> tuple[str, ...]:
    """The statuses a case in ``status`` may move to.

    Examples
    --------
    >>> allowed_next("handled")
    ('verified', 'dispatched')
    """
    _check_status(status)
    return TRANSITIONS[status]


def transition(current_status: str, target_status: str) -> None:
    """Check one step of the case loop; raise if the loop does not allow it.

    Raises
    ------
    UnknownStatusError
        Either status is not a status.
    IllegalTransition
        The step is not allowed; the message lists the allowed next steps.

    Examples
    --------
    >>> transition("reported", "registered")
    >>> transition("reported", "closed")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    IllegalTransition: cannot go from reported (上报) to closed (结案); allowed next: ...
    """
    _check_status(current_status)
    _check_status(target_status)
    allowed = TRANSITIONS[current_status]
    if target_status not in allowed:
        steps = ", ".join(_label(s) for s in allowed) or "none: the case is finished"
        raise IllegalTransition(
            f"cannot go from {_label(current_status)} to {_label(target_status)}; "
            f"allowed next: {steps}"
        )


def is_sent_back(from_status: str, to_status: str) -> bool:
    """Whether a step is a 退回 (sent back)."""
    return (from_status, to_status) in SENT_BACK


def validate_events(events: pd.DataFrame) -> None:
    """Check that every incident's events, in time order, form a legal chain from ``reported``.

    Raises :class:`IllegalTransition` naming the incident and the step.
    """
    missing = [c for c in EVENT_COLUMNS if c not in events.columns]
    if missing:
        raise InputError(f"events lack the column(s) {', '.join(missing)}")
    ordered = events.sort_values(["incident_id", "at"], kind="stable")
    for incident, chain in ordered.groupby("incident_id", sort=False):
        expected = "reported"
        for step in chain.itertuples(index=False):
            if step.from_status != expected:
                raise IllegalTransition(
                    f"incident {incident}: event at {step.at} starts from {step.from_status} "
                    f"but the case was {expected}"
                )
            try:
                transition(step.from_status, step.to_status)
            except IllegalTransition as exc:
                raise IllegalTransition(f"incident {incident}: {exc.message}") from exc
            expected = step.to_status


def current_status(events: pd.DataFrame) -> pd.Series:
    """The latest ``to_status`` per incident (incidents without events are ``reported``)."""
    ordered = events.sort_values("at", kind="stable")
    return ordered.groupby("incident_id")["to_status"].last()


def _parse_clock(text: str) -> dt.time:
    return dt.time.fromisoformat(text)


@dataclass(frozen=True)
class WorkCalendar:
    """Working time: weekday periods in a time zone, holidays off, make-up workdays on.

    ``holidays`` and ``workdays`` are local dates (``datetime.date`` or ``"2026-10-01"``);
    a make-up working day (调休) on a weekend goes in ``workdays``.

    Examples
    --------
    >>> WorkCalendar().hours_per_day
    7.5
    """

    tz: str = "Asia/Shanghai"
    periods: tuple[tuple[str, str], ...] = (("08:30", "12:00"), ("13:30", "17:30"))
    weekdays: tuple[int, ...] = (0, 1, 2, 3, 4)
    holidays: frozenset = field(default_factory=frozenset)
    workdays: frozenset = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        object.__setattr__(self, "holidays", frozenset(_dates(self.holidays)))
        object.__setattr__(self, "workdays", frozenset(_dates(self.workdays)))
        try:
            clocks = [(_parse_clock(a), _parse_clock(b)) for a, b in self.periods]
        except ValueError as exc:
            raise InputError(f"working periods must be HH:MM pairs: {exc}") from exc
        if any(a >= b for a, b in clocks) or clocks != sorted(clocks):
            raise InputError("working periods must be increasing HH:MM-HH:MM ranges")

    @property
    def hours_per_day(self) -> float:
        total = dt.timedelta()
        for start, end in self.periods:
            day = dt.date(2000, 1, 1)
            total += dt.datetime.combine(day, _parse_clock(end)) - dt.datetime.combine(
                day, _parse_clock(start)
            )
        return total.total_seconds() / 3600

    def is_workday(self, day: dt.date) -> bool:
        if day in self.workdays:
            return True
        return day.weekday() in self.weekdays and day not in self.holidays

    def add_working_hours(self, start: pd.Timestamp, hours: float) -> pd.Timestamp:
        """The moment ``hours`` of working time after ``start`` (returned in UTC)."""
        cursor = _as_aware(start).tz_convert(self.tz)
        remaining = pd.Timedelta(hours=hours)
        if remaining <= pd.Timedelta(0):
            # no time to add: the moment itself, even outside working time (so that adding a,
            # then b, is adding a + b also where a ends exactly at the close of a period)
            return cursor.tz_convert("UTC")
        for _ in range(3700):  # ten years of days: a bound, not an expectation
            day = cursor.date()
            if self.is_workday(day):
                for a, b in self.periods:
                    begin = pd.Timestamp.combine(day, _parse_clock(a)).tz_localize(self.tz)
                    end = pd.Timestamp.combine(day, _parse_clock(b)).tz_localize(self.tz)
                    if cursor >= end:
                        continue
                    begin = max(begin, cursor)
                    if remaining <= end - begin:
                        return (begin + remaining).tz_convert("UTC")
                    remaining -= end - begin
                    cursor = end
            next_day = pd.Timestamp.combine(day + dt.timedelta(days=1), dt.time())
            cursor = next_day.tz_localize(self.tz)
        raise InputError(f"a time limit of {hours} working hours does not end within ten years")


def _dates(values: Iterable) -> set[dt.date]:
    return {pd.Timestamp(v).date() for v in values}


def _as_aware(moment) -> pd.Timestamp:
    stamp = pd.Timestamp(moment)
    if stamp.tzinfo is None:
        raise InputError(f"time {stamp} has no time zone; incident times are tz-aware")
    return stamp


def deadline(
    reported_at,
    registered_at,
    category_time_limit: str,
    *,
    calendar: WorkCalendar | None = None,
) -> pd.Timestamp:
    """When a case must be closed: its time limit counted from registration (立案).

    Counted from ``registered_at``, or from ``reported_at`` while the case is not registered.

    Parameters
    ----------
    reported_at, registered_at : Timestamp or None
        Tz-aware times; ``registered_at`` may be None/NaT.
    category_time_limit : str
        ``"4h"`` (working hours), ``"2wd"`` (working days) or ``"3d"`` (calendar days).
    calendar : WorkCalendar, optional
        Default: Mon-Fri 08:30-12:00, 13:30-17:30 Asia/Shanghai, no holidays.

    Returns
    -------
    Timestamp
        UTC.

    Examples
    --------
    >>> friday = pd.Timestamp("2026-11-27 16:00", tz="Asia/Shanghai")
    >>> str(deadline(friday, None, "4h").tz_convert("Asia/Shanghai"))
    '2026-11-30 11:00:00+08:00'
    """
    calendar = calendar or WorkCalendar()
    start = registered_at if registered_at is not None and not pd.isna(registered_at) else None
    start = _as_aware(reported_at if start is None else start)
    value, unit = parse_time_limit(category_time_limit)
    if unit == "d":
        return (start + pd.Timedelta(days=value)).tz_convert("UTC")
    hours = value * calendar.hours_per_day if unit == "wd" else value
    return calendar.add_working_hours(start, hours)


def deadlines(
    incidents: pd.DataFrame,
    catalogue: pd.DataFrame,
    *,
    calendar: WorkCalendar | None = None,
) -> pd.Series:
    """:func:`deadline` for every row of ``incidents`` (``category_code``, ``reported_at``,
    optional ``registered_at``), aligned to its index."""
    limits = catalogue.set_index("code")["time_limit"]
    unknown = sorted(set(incidents["category_code"]) - set(limits.index))
    if unknown:
        raise InputError(f"category code(s) not in the catalogue: {', '.join(unknown)}")
    registered = incidents.get("registered_at", pd.Series(pd.NaT, index=incidents.index))
    values = [
        deadline(rep, reg, limits[code], calendar=calendar)
        for rep, reg, code in zip(
            incidents["reported_at"], registered, incidents["category_code"], strict=True
        )
    ]
    return pd.Series(pd.to_datetime(values, utc=True), index=incidents.index, name="deadline")


def is_overdue(df: pd.DataFrame, *, now) -> pd.Series:
    """Whether each case is overdue: closed after its deadline, or still open past it.

    ``df`` needs ``deadline`` and ``closed_at`` (NaT while open); a ``status`` of ``rejected``
    is never overdue.

    Examples
    --------
    >>> t = pd.Timestamp("2026-01-05 10:00", tz="UTC")
    >>> df = pd.DataFrame({"deadline": [t, t], "closed_at": [pd.NaT, t - pd.Timedelta("1h")]})
    >>> is_overdue(df, now=t + pd.Timedelta("1h")).tolist()
    [True, False]
    """
    now = _as_aware(now)
    closed = pd.to_datetime(df["closed_at"], utc=True)
    limit = pd.to_datetime(df["deadline"], utc=True)
    late = closed.notna() & (closed > limit)
    still_open = closed.isna() & (limit < now)
    if "status" in df.columns:
        still_open &= df["status"].ne("rejected")
    return (late | still_open).rename("overdue")
