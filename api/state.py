"""What the service keeps between requests: the store, the locate index, WGS84 layers, tokens.

A few things are too slow to rebuild per request (the :class:`~geo.locate.engine.GridIndex`, the
buildings in WGS84) and too important to serve stale (a revoked token, a newly published plan).
The project tells, in microseconds, whether anyone committed since the last look
(:class:`geo.usecases.service.ChangeWatch`); only then are the parts of the project's
*fingerprint* a request needs (published plan, its revision, the layers' last change, workers,
tokens; :func:`geo.usecases.service.fingerprint`) read again, and a cache rebuilt when they
differ. Each uvicorn worker process holds its own copy.

A PostGIS database of many streets (issue #18) is served as many projects: the database's own
(public schema) at ``/``, and each street at ``/divisions/{code}/`` with a state of its own,
opened on its first request and closed again when :class:`DivisionStates` keeps too many. A
street's state knows its own tokens and asks the database's own project for the tokens scoped
to a division above it (a county's viewer): the token's role then holds in every street under it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely

from api.auth import Principal, verify_token
from api.settings import Settings
from geo.divisions import covers
from geo.errors import GridmapError, NotFound, Unauthorized
from geo.locate import kept as locate_index
from geo.locate.engine import GridIndex
from geo.people import tokens
from geo.people.tokens import holder_in
from geo.plans import editing
from geo.storage.store import Store, open_store
from geo.usecases import service
from geo.usecases.service import EVERYTHING, PLAN

__all__ = [
    "EVERYTHING",
    "MAX_CACHED",
    "PLAN",
    "DivisionStates",
    "Locator",
    "ProjectState",
    "one_look_per_request",
]
#: entries kept (layers, the locate index, map pages); the oldest built goes first
MAX_CACHED = 48
log = logging.getLogger("gridmap.api")
#: the states that looked for commits during this request (None outside a request)
_LOOKED: ContextVar[set[ProjectState] | None] = ContextVar("gridmap_looked", default=None)


@contextmanager
def one_look_per_request() -> Iterator[None]:
    """Within the block (one request), each state looks for other connections' commits once.

    A post asks for the fingerprint four times (its token, the locate index, the published
    plan twice): on PostGIS each look is a round trip to the server, and while cases arrive
    every look finds a commit and reads the parts again. The request now sees the project as
    it was at its first look, the same rule a database snapshot gives one transaction.
    """
    token = _LOOKED.set(set())
    try:
        yield
    finally:
        _LOOKED.reset(token)


@dataclass(frozen=True)
class Locator:
    """The published plan's locate index."""

    plan_id: int
    index: GridIndex


class ProjectState:
    """The service's view of one project: the app's own, or one street of a database of many.

    Parameters
    ----------
    settings
        The service's settings; ``settings.division`` is the street when ``division`` is not given.
    division
        The street (9-digit code) of the PostGIS database ``settings.db`` this state serves.
    above
        The database's own project, which holds the tokens scoped to divisions above streets.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        division: str | None = None,
        above: ProjectState | None = None,
    ) -> None:
        self.settings = settings
        self.division = division or settings.division
        self.above = above
        self.store: Store = open_store(settings.db, division=self.division)
        self._watch = service.ChangeWatch(self.store)
        self._build_lock = threading.Lock()
        self._fresh_lock = threading.Lock()
        self._checked_at = 0.0
        self._parts: dict[str, tuple] = {}
        self._tokens: tuple[tuple | None, dict[str, Principal]] = (None, {})
        self._cache: dict[str, tuple[tuple, Any]] = {}

    def close(self) -> None:
        self._watch.close()
        self.store.engine.dispose()

    # -- freshness ---------------------------------------------------------------------------------
    def fingerprint(
        self, parts: tuple[str, ...] = EVERYTHING, *, fresh: bool = False
    ) -> dict[str, tuple]:
        """The ``parts`` of the project's fingerprint (:data:`geo.usecases.service.PARTS`).

        All are forgotten when another connection committed, and each is read again only when
        asked for: after a batch of posted cases a locate reads the plan's parts, not the
        cases'. ``fresh``: look for a commit now, even within ``refresh_seconds`` of the last
        look (what stores a case must not lag behind a publish). Within a request, the first
        look holds for the rest of it (:func:`one_look_per_request`).
        """
        looked = _LOOKED.get()
        with self._fresh_lock:
            now = time.monotonic()
            if looked is not None and self in looked:
                pass  # this request has looked already (one_look_per_request)
            elif fresh or now - self._checked_at >= self.settings.refresh_seconds:
                if self._watch.changed():
                    self._parts = {}
                self._checked_at = now
                if looked is not None:
                    looked.add(self)
            missing = tuple(part for part in parts if part not in self._parts)
            if missing:
                self._parts = {**self._parts, **service.fingerprint(self.store, missing)}
            return {part: self._parts[part] for part in parts}

    def cached(
        self,
        key: str,
        build: Callable[[], Any],
        *,
        depends: tuple[str, ...] = EVERYTHING,
        keep: int | None = None,
    ) -> Any:
        """``build()`` once per state of the parts of the project it ``depends`` on.

        ``keep``: at most this many entries of the key's kind (its text before the first ``:``,
        e.g. ``map``) stay cached, the oldest built going first, so that pages clients can ask
        for in many variants never push the locate index or the layers out.
        """
        current = self.fingerprint(depends)
        fingerprint = tuple(current[part] for part in depends)
        hit = self._cache.get(key)
        if hit is not None and hit[0] == fingerprint:
            return hit[1]
        with self._build_lock:
            hit = self._cache.get(key)
            if hit is not None and hit[0] == fingerprint:
                return hit[1]
            value = build()
            self._cache.pop(key, None)
            self._cache[key] = (fingerprint, value)
            self._evict(key, keep)
            return value

    def _evict(self, key: str, keep: int | None) -> None:
        """Drop the oldest entries of ``key``'s kind beyond ``keep``, then beyond MAX_CACHED."""
        if keep is not None:
            kind = key.split(":", 1)[0] + ":"
            same = [k for k in self._cache if k.startswith(kind)]
            for oldest in same[: max(len(same) - keep, 0)]:
                del self._cache[oldest]
        while len(self._cache) > MAX_CACHED:  # map pages: drop the least recently built
            del self._cache[next(iter(self._cache))]

    # -- tokens ------------------------------------------------------------------------------------
    def principal(self, token: str) -> Principal:
        """The caller behind ``token``: a token of this project, or (a street's) a token of the
        database's own project whose division covers the street; else
        :class:`~geo.errors.Unauthorized`. A token scoped to a division is refused by the
        database's own project: it reads and writes its streets, not that project."""
        above = self.above
        return holder_in(
            self.division,
            lambda: self._verified(token),
            None if above is None else lambda: above._verified(token),
        )

    def _verified(self, token: str) -> Principal:
        """The holder of a token of this project's own table (cached until a token is made or
        revoked)."""
        version = self.fingerprint(("tokens",))["tokens"]  # a revoke changes it
        if self._tokens[0] != version:
            self._tokens = (version, {})
        known = self._tokens[1]
        found = known.get(token)
        if found is None:
            found = verify_token(self.store, token)
            if len(known) > 10_000:
                known.clear()
            known[token] = found
        return found

    # -- published data ----------------------------------------------------------------------------
    def published_plan_id(self) -> int:
        plan = self.fingerprint(("plan",))["plan"]
        if not plan:
            raise NotFound(
                "no published plan yet; run 'gridmap partition' first",
                zh="尚无已发布的网格方案，请先运行 gridmap partition",
            )
        return int(plan[0])

    def locator(self) -> Locator:
        """The published plan's :class:`GridIndex`, loaded again when the published plan changes.

        It is the index kept in the project file (:func:`geo.locate.kept.grid_index`), the one
        ``gridmap locate`` and case intake use: ``GET /locate`` and ``POST /incidents`` answer
        from this one object, so a point's grid is decided by one rule everywhere.
        """
        plan_id = self.published_plan_id()

        def build() -> Locator:
            return Locator(plan_id=plan_id, index=locate_index.grid_index(self.store, plan_id))

        return self.cached("locator", build, depends=PLAN)

    def warm_editor(self) -> None:
        """Load what the first edit would wait for: the district, its adjacency, the newest
        drafts and the engine's compiled functions (:func:`geo.plans.editing.warm`).

        Called when the service starts, so that the first edit costs what later edits cost
        (1.1 s cold on Suzhou, 0.1 s warm). A project that cannot be read for editing yet is
        only slower: the reason is logged and the first edit loads what it needs.
        """
        try:
            editing.warm(self.store)
            _warm_display(self.store)
        except GridmapError as error:
            log.warning("the editor's caches are loaded by the first edit: %s", error)

    def case_index(self) -> GridIndex | None:
        """The locator's index for assigning posted cases; None while nothing is published, or
        when the plan published now is not the locator's (``refresh_seconds`` lets locate lag
        behind a publish; a case is stored for good, so it is assigned from the project file)."""
        try:
            locator = self.locator()
        except NotFound:
            return None
        now = self.fingerprint(("plan",), fresh=True)["plan"]
        return locator.index if now and int(now[0]) == locator.plan_id else None

    def layer(self, name: str) -> gpd.GeoDataFrame:
        """``grids``, ``buildings`` or ``communities`` of the published plan in WGS84 (cached)."""
        return self.cached(
            f"layer:{name}", lambda: service.layer_in_wgs84(self.store, name), depends=PLAN
        )

    def roster(self) -> pd.DataFrame:
        return self.cached("roster", lambda: service.roster(self.store), depends=("workers",))


def _warm_display(store: Store) -> None:
    """Project one point of the district's CRS to WGS84: PROJ sets that transformation up once per
    process (0.1 s), and an edit's answer carries its grids in WGS84."""
    from maps.prepare import to_display

    if store.has_layer("buildings"):
        to_display(gpd.GeoSeries([shapely.Point(0.0, 0.0)], crs=store.layer_crs("buildings")))


class DivisionStates:
    """The streets of a PostGIS database of many, each served with a :class:`ProjectState` of
    its own: opened on the street's first request, the least recently used closed beyond
    ``settings.division_cache`` (each holds database connections; a province has hundreds).

    The registered streets are read from ``public.gridmap_divisions`` and read again when a
    code is not among them (at most once a second): a street imported while the service runs is
    served without a restart.
    """

    #: seconds between two readings of the registrations caused by unknown codes
    REREAD_SECONDS = 1.0
    #: seconds a street's state stays open after it was let go, for the requests still using it
    GRACE_SECONDS = 120.0

    def __init__(self, root: ProjectState) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._states: OrderedDict[str, ProjectState] = OrderedDict()
        self._let_go: list[tuple[float, ProjectState]] = []
        self._names: dict[str, str] = {}
        self._read_at: float | None = None

    def registered(self) -> dict[str, str]:
        """Code -> name of every street the database holds, by code (as last read)."""
        if self._read_at is None:
            self._read()
        return self._names

    def is_registered(self, code: str) -> bool:
        """Whether ``code`` is a street of the database (read again if not, once a second)."""
        if code in self.registered():
            return True
        self._reread()
        return code in self._names

    def open_state(self, code: str) -> ProjectState | None:
        """The street's state if it is open (its tokens and caches at hand), else None."""
        return self._states.get(code)

    def state(self, code: str) -> ProjectState:
        """The state of the registered street ``code``, opened on first use."""
        with self._lock:
            found = self._states.get(code)
            if found is not None:
                self._states.move_to_end(code)
                return found
            found = ProjectState(self.root.settings, division=code, above=self.root)
            self._states[code] = found
            now = time.monotonic()
            while len(self._states) > self.root.settings.division_cache:
                self._let_go.append((now, self._states.popitem(last=False)[1]))
            while self._let_go and now - self._let_go[0][0] > self.GRACE_SECONDS:
                self._let_go.pop(0)[1].close()
            return found

    def covered(self, token: str) -> list[str]:
        """The streets ``token`` reads: those under a scoped token's division, or the one street
        whose own table holds it; :class:`~geo.errors.Unauthorized` when no street's does."""
        self._reread()
        try:
            found = self.root._verified(token)
        except Unauthorized:
            return self._own_streets(token)
        scope = found.division
        return [code for code in self.registered() if scope is not None and covers(scope, code)]

    def admits(self, code: str, token: str) -> bool:
        """Whether ``token`` may enter the street ``code``, asked without opening the street:
        a token of the database's own project scoped above it, or one of its own tokens."""
        try:
            found = self.root._verified(token)
        except Unauthorized:
            return bool(tokens.streets_holding(self.root.store, token, [code]))
        return found.division is not None and covers(found.division, code)

    def close(self) -> None:
        with self._lock:
            while self._states:
                self._states.popitem()[1].close()
            while self._let_go:
                self._let_go.pop()[1].close()

    def _reread(self) -> None:
        if self._read_at is None or time.monotonic() - self._read_at >= self.REREAD_SECONDS:
            self._read()

    def _read(self) -> None:
        from geo.storage.postgis import registered_divisions

        listed = registered_divisions(self.root.settings.db)
        self._names = dict(zip(listed["code"].astype(str), listed["name"].fillna(""), strict=True))
        self._read_at = time.monotonic()

    def _own_streets(self, token: str) -> list[str]:
        """The streets whose own tokens table holds ``token`` unrevoked."""
        found = tokens.streets_holding(self.root.store, token, self.registered())
        if not found:
            raise Unauthorized("unknown token", zh="令牌无效")
        return found
