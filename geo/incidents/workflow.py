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

import numpy as np
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
#: Statuses a case cannot leave (结案, 不予立案); every other status is open.
FINAL_STATUSES = tuple(status for status, onward in TRANSITIONS.items() if not onward)
OPEN_STATUSES = tuple(status for status in STATUSES if status not in FINAL_STATUSES)
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


def is_open(status: pd.Series) -> pd.Series:
    """Whether each case is still open: the one rule the maps, exports and statistics share.

    A status is a key of :data:`STATUSES` or its Chinese label, in any case; only the
    :data:`FINAL_STATUSES` are closed, so a case without a status (a layer from elsewhere) or
    with one the loop does not know still counts as open: nobody closed it.

    Examples
    --------
    >>> is_open(pd.Series(["handled", "结案", "Rejected", None, "?"])).tolist()
    [True, False, False, True, True]
    """
    key_of = {label: key for key, label in STATUSES.items()}
    text = status.astype(object).where(status.notna(), "").astype(str).str.strip()
    keys = text.map(key_of).fillna(text.str.lower())
    return (~keys.isin(FINAL_STATUSES)).rename("open")


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
        return self.add_working_hours_many([_as_aware(start)], hours)[0]

    def add_working_hours_many(self, starts, hours) -> pd.DatetimeIndex:
        """:meth:`add_working_hours` for many tz-aware ``starts`` (``hours``: one number or one
        per start): the same moments, in UTC.

        Each working period of the days concerned becomes an interval of absolute time, laid
        end to end in a running total of working time; a start's place on that total plus its
        hours is found by binary search (``numpy.searchsorted``), so 100,000 deadlines cost
        milliseconds instead of a walk over days each. No time to add (``hours <= 0``) gives
        the moment itself, even outside working time (so that adding a, then b, is adding
        a + b also where a ends exactly at the close of a period).
        """
        moments = _aware_index(starts)
        wanted = np.broadcast_to(np.asarray(hours, dtype=float), (len(moments),))
        need = _hours_ns(wanted)
        result = moments.as_unit("ns").asi8.copy()
        todo = need > 0
        if todo.any():
            day = moments[todo].tz_convert(self.tz).tz_localize(None).normalize()
            result[todo] = self._working_ends(result[todo], day, need[todo], wanted[todo])
        return pd.DatetimeIndex(result.astype("datetime64[ns]")).tz_localize("UTC")

    def _working_ends(
        self, start: np.ndarray, day: pd.DatetimeIndex, need: np.ndarray, hours: np.ndarray
    ) -> np.ndarray:
        """Where ``need`` ns of working time after ``start`` (UTC ns) end, within ten years of
        days from each start's local ``day``; ``hours`` only names a limit that does not."""
        first, last = day.min(), day.max()
        guess = int(need.max() / 3.6e12 / max(self.hours_per_day, 0.25) * 2) + 31
        for days in dict.fromkeys((min(guess, _MAX_DAYS), _MAX_DAYS)):
            begin, end, of_day = self._periods(first, last + pd.Timedelta(days=days))
            placed = _place(begin, end, start, need)
            if placed is not None:
                break
        limit = (day - first).days.to_numpy() + _MAX_DAYS - 1
        late = np.ones(len(start), dtype=bool) if placed is None else of_day[placed[0]] > limit
        if late.any():
            raise InputError(
                f"a time limit of {hours[late][0]} working hours does not end within ten years"
            )
        return placed[1]

    def _periods(self, first: pd.Timestamp, last: pd.Timestamp):
        """Every working period of the local days ``first`` to ``last``: begins and ends (UTC
        ns, in time order) and the day each falls on (days after ``first``)."""
        days = pd.date_range(first, last, freq="D")
        dates = days.date
        work = np.isin(days.day_of_week, list(self.weekdays))
        if self.holidays:
            work &= ~np.isin(dates, list(self.holidays))
        if self.workdays:
            work |= np.isin(dates, list(self.workdays))
        days = days[work]
        clocks = [(_clock_offset(a), _clock_offset(b)) for a, b in self.periods]
        if not clocks or days.empty:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, empty
        # one column per period, one row per day: raveled, the periods in time order
        begin = np.column_stack([_localised(days + a, self.tz) for a, _ in clocks]).ravel()
        end = np.column_stack([_localised(days + b, self.tz) for _, b in clocks]).ravel()
        if not (
            np.all(np.diff(begin) > 0) and np.all(end > begin) and np.all(end[:-1] <= begin[1:])
        ):
            raise InputError("working periods overlap in absolute time (a time-zone change)")
        return begin, end, np.repeat((days - first).days.to_numpy(), len(clocks))


#: :meth:`WorkCalendar.add_working_hours` looks this many days ahead of a start, no further
_MAX_DAYS = 3700  # ten years of days: a bound, not an expectation


def _place(begin: np.ndarray, end: np.ndarray, start: np.ndarray, need: np.ndarray):
    """Index of the working period where each start plus its need ends, and that moment (UTC
    ns); None when the periods run out first."""
    if begin.size == 0:
        return None
    length = end - begin
    total = np.cumsum(length)
    before = total - length
    i = np.searchsorted(end, start, side="right")  # the first period not over at the start
    if (i >= end.size).any():
        return None
    target = before[i] + np.maximum(start - begin[i], 0) + need
    j = np.searchsorted(total, target, side="left")  # the first period reaching the target
    if (j >= end.size).any():
        return None
    return j, begin[j] + (target - before[j])


def _hours_ns(hours: np.ndarray) -> np.ndarray:
    """``pd.Timedelta(hours=h)`` in ns for every h (each distinct value converted once)."""
    values, where = np.unique(hours, return_inverse=True)
    if not np.isfinite(values).all():
        bad = values[~np.isfinite(values)][0]
        raise InputError(f"a time limit of {bad} working hours does not end within ten years")
    return np.array([pd.Timedelta(hours=h).value for h in values], dtype=np.int64)[where]


def _clock_offset(text: str) -> pd.Timedelta:
    clock = _parse_clock(text)
    return pd.Timedelta(
        hours=clock.hour, minutes=clock.minute, seconds=clock.second, microseconds=clock.microsecond
    )


def _localised(naive: pd.DatetimeIndex, tz: str) -> np.ndarray:
    """Local wall-clock times as UTC ns (as ``Timestamp.tz_localize`` reads each one)."""
    return naive.tz_localize(tz).as_unit("ns").asi8


def _aware_index(moments) -> pd.DatetimeIndex:
    """Tz-aware moments as one UTC index; a naive one is refused as :func:`_as_aware` does."""
    if isinstance(getattr(moments, "dtype", None), pd.DatetimeTZDtype):
        return pd.DatetimeIndex(moments).tz_convert("UTC")
    values = moments if isinstance(moments, pd.Series) else pd.Series(list(moments), dtype=object)
    if values.empty:
        return pd.DatetimeIndex([], tz="UTC")
    return pd.DatetimeIndex([_as_aware(v).tz_convert("UTC") for v in values])


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
    optional ``registered_at``), aligned to its index: the same moments, computed for all rows
    at once (:meth:`WorkCalendar.add_working_hours_many`)."""
    calendar = calendar or WorkCalendar()
    limits = catalogue.set_index("code")["time_limit"]
    unknown = sorted(set(incidents["category_code"]) - set(limits.index))
    if unknown:
        raise InputError(f"category code(s) not in the catalogue: {', '.join(unknown)}")
    starts = _aware_index(_start_times(incidents))
    parsed = {text: parse_time_limit(text) for text in pd.unique(limits)}
    text = incidents["category_code"].map(limits)
    value = text.map({t: v for t, (v, _) in parsed.items()}).to_numpy(dtype=float)
    unit = text.map({t: u for t, (_, u) in parsed.items()}).to_numpy(dtype=object)
    result = starts.as_unit("ns").asi8.copy()
    days = unit == "d"
    if days.any():
        result[days] += _days_ns(value[days])
    hours = np.where(unit == "wd", value * calendar.hours_per_day, value)
    if (~days).any():
        result[~days] = calendar.add_working_hours_many(starts[~days], hours[~days]).asi8
    moments = pd.DatetimeIndex(result.astype("datetime64[ns]")).tz_localize("UTC")
    if (result % 1000 == 0).all():  # whole microseconds: the unit pandas gave the moments before
        moments = moments.as_unit("us")
    return pd.Series(moments, index=incidents.index, name="deadline")


def _start_times(incidents: pd.DataFrame) -> pd.Series:
    """Each case's registration time, or its report time while it is not registered."""
    reported = incidents["reported_at"]
    if "registered_at" not in incidents.columns:
        return reported
    registered = incidents["registered_at"]
    use = registered.notna()
    if not use.any():
        return reported
    return reported.astype(object).where(~use, registered.astype(object))


def _days_ns(days: np.ndarray) -> np.ndarray:
    """``pd.Timedelta(days=d)`` in ns for every d."""
    values, where = np.unique(days, return_inverse=True)
    return np.array([pd.Timedelta(days=d).value for d in values], dtype=np.int64)[where]


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
