"""Four writers in three streets of one PostGIS database at once (issue #18 §5), then every write
accounted for.

``gridmap serve --workers 4`` serves a database of three streets while, for ``--seconds``:

- street A: ``gridmap import --replace`` then ``gridmap partition``, again and again, each a
  fresh CLI process (a planner re-importing the street);
- street B: two planners edit one draft plan through the API, in lock-step rounds: both read the
  plan's revision, both post an edit made against it, so one wins and the other must get 409
  (a stale revision), never a lost update; each toggles the lock of a grid of its own;
- street C: cases arrive through ``POST /divisions/C/incidents``, one per request, every tenth
  repeating an earlier id (ids are idempotent);
- readers: ``GET /locate`` in C and ``GET /grids`` in B all the while, their latency recorded
  (readers never wait on writers).

Then the database is read: street B's plan has exactly the revision and history of the edits
answered 200, C holds each acknowledged case once, A ends with its buildings and one published
plan; no answer was a 5xx, no request timed out (a deadlock would). :func:`run` returns the tally
and the list of what went wrong; ``tests/test_concurrent_writers.py`` runs it for 20 s and
``bench/concurrency.py`` for 60 s (writing the ``concurrency`` section of docs/benchmarks.md).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from api_support import free_port, wait_for_health

ROOT = Path(__file__).resolve().parents[1]

STREETS = {"A": "530102001", "B": "530102002", "C": "530102003"}
SERVE = [sys.executable, "-m", "api", "serve"]
TIMEOUT = 60.0  # a request that takes longer is counted as hung (a deadlock would)


@dataclass
class Tally:
    """What each writer and reader did, and what went wrong."""

    imports: int = 0
    edits_ok: int = 0
    edits_stale: int = 0
    cases_acknowledged: set[str] = field(default_factory=set)
    cases_posted: int = 0
    reads: int = 0
    read_ms: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, problem: str) -> None:
        with self.lock:
            if len(self.problems) < 50:
                self.problems.append(problem)


def gridmap(*args: object, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``gridmap ARGS`` in a fresh process, as a user runs it."""
    command = [sys.executable, "-m", "api", *map(str, args)]
    return subprocess.run(
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "GRIDMAP_LANG": "en", **(env or {})},
        check=False,
    )


def prepare(url: str, source: Path) -> dict[str, str]:
    """The three streets imported and partitioned; the tokens the writers and readers use."""
    from geo.people.tokens import create_token
    from geo.storage.store import open_store

    for code in STREETS.values():
        for args in (
            ("import", source, "--community-field", "community"),
            ("partition",),
        ):
            done = gridmap(*args, "--db", url, "--division", code)
            if done.returncode:
                raise RuntimeError(f"{args[0]} {code}: {done.stderr[-500:]}")
    tokens = {}
    for key, (street, role) in {
        "planner": ("B", "planner"),
        "staff": ("C", "staff"),
        "reader_b": ("B", "viewer"),
    }.items():
        store = open_store(url, division=STREETS[street])
        tokens[key] = create_token(store, f"concurrency-{key}", role)
        store.engine.dispose()
    return tokens


@contextmanager
def served(url: str, *, workers: int) -> object:
    """``gridmap serve --workers N`` on the database; yields the base URL once it answers."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as output:
        server = subprocess.Popen(
            [*SERVE, "--db", url, "--port", str(port), "--workers", str(workers)],
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, "GRIDMAP_LANG": "en"},
        )
        try:
            wait_for_health(base, server, output, timeout=240)
            yield base
        finally:
            server.terminate()
            server.wait(timeout=60)


def _answer(tally: Tally, what: str, call) -> httpx.Response | None:
    """Make one request; record its status; a 5xx or a hang is a problem."""
    try:
        response = call()
    except httpx.TimeoutException:
        tally.note(f"{what}: no answer within {TIMEOUT:.0f} s")
        return None
    except httpx.HTTPError as error:
        tally.note(f"{what}: {type(error).__name__}: {error}")
        return None
    with tally.lock:
        tally.statuses[response.status_code] += 1
    if response.status_code >= 500:
        tally.note(f"{what}: {response.status_code} {response.text[:200]}")
    return response


def importer(url: str, source: Path, tally: Tally, until: float) -> None:
    """Street A: the CLI re-imports and re-partitions the street until the time is up."""
    code = STREETS["A"]
    while time.monotonic() < until:
        for args in (
            ("import", source, "--community-field", "community", "--replace"),
            ("partition",),
        ):
            done = gridmap(*args, "--db", url, "--division", code)
            if done.returncode:
                tally.note(f"gridmap {args[0]} in A: exit {done.returncode}: {done.stderr[-300:]}")
                return
        tally.imports += 1


class Planners:
    """Street B: two planners in lock-step rounds on one draft, each toggling its own grid."""

    def __init__(self, client: httpx.Client, tally: Tally, draft: int, grids: list[str]):
        self.client, self.tally, self.draft, self.grids = client, tally, draft, grids
        self.round = threading.Barrier(2, timeout=TIMEOUT)
        self.locked = [False, False]

    def planner(self, index: int, until: float) -> None:
        plan = f"/divisions/{STREETS['B']}/plans/{self.draft}"
        while time.monotonic() < until:
            shown = _answer(self.tally, "GET plan", lambda: self.client.get(plan))
            if shown is None or shown.status_code != 200:
                return self.round.abort()
            revision = shown.json()["revision"]
            try:
                self.round.wait()  # both post against the same revision
            except threading.BrokenBarrierError:
                return None
            op = "unlock" if self.locked[index] else "lock"
            body = {"op": op, "revision": revision, "args": {"grids": [self.grids[index]]}}
            posted = _answer(
                self.tally, "POST edit", lambda b=body: self.client.post(f"{plan}/edits", json=b)
            )
            if posted is None:
                return self.round.abort()
            self._count(index, posted)
        self.round.abort()  # the other planner stops waiting too
        return None

    def _count(self, index: int, posted: httpx.Response) -> None:
        with self.tally.lock:
            if posted.status_code == 200:
                self.tally.edits_ok += 1
                self.locked[index] = not self.locked[index]
            elif posted.status_code == 409:
                self.tally.edits_stale += 1
            else:
                self.tally.problems.append(f"edit: {posted.status_code} {posted.text[:200]}")


def intake(client: httpx.Client, tally: Tally, until: float, point: tuple[float, float]) -> None:
    """Street C: cases one per request; every tenth repeats an earlier id."""
    n = 0
    while time.monotonic() < until:
        n += 1
        ident = f"K{n // 2}" if n % 10 == 0 else f"K{n}"
        case = {
            "source": "concurrency",
            "id": ident,
            "category": "暴露垃圾",
            "lon": point[0],
            "lat": point[1],
        }
        tally.cases_posted += 1
        posted = _answer(
            tally,
            "POST incident",
            lambda c=case: client.post(f"/divisions/{STREETS['C']}/incidents", json=c),
        )
        if posted is not None and posted.status_code == 200:
            with tally.lock:
                tally.cases_acknowledged.add(ident)
        elif posted is not None:
            tally.note(f"incident: {posted.status_code} {posted.text[:200]}")


def reader(clients: dict[str, httpx.Client], tally: Tally, until: float, point) -> None:
    """Reads in B and C all the while; their latency is the readers' wait."""
    paths = [
        ("staff", f"/divisions/{STREETS['C']}/locate?lon={point[0]}&lat={point[1]}"),
        ("reader_b", f"/divisions/{STREETS['B']}/grids?limit=20"),
    ]
    while time.monotonic() < until:
        for who, path in paths:
            started = time.perf_counter()
            got = _answer(tally, f"GET {path}", lambda p=path, w=who: clients[w].get(p))
            if got is not None and got.status_code != 200:
                tally.note(f"read {path}: {got.status_code}")
            with tally.lock:
                tally.reads += 1
                tally.read_ms.append((time.perf_counter() - started) * 1000)


def run(url: str, source: Path, *, seconds: float, workers: int = 4) -> Tally:
    """Prepare the three streets, run the writers and readers for ``seconds``, account."""
    tokens = prepare(url, source)
    tally = Tally()
    with served(url, workers=workers) as base:
        clients = {
            key: httpx.Client(
                base_url=base, timeout=TIMEOUT, headers={"Authorization": f"Bearer {token}"}
            )
            for key, token in tokens.items()
        }
        draft, grids = _draft(clients["planner"])
        point = _point_in_c(clients["staff"])
        planners = Planners(clients["planner"], tally, draft, grids)
        until = time.monotonic() + seconds
        threads = [
            threading.Thread(target=importer, args=(url, source, tally, until)),
            threading.Thread(target=planners.planner, args=(0, until)),
            threading.Thread(target=planners.planner, args=(1, until)),
            threading.Thread(target=intake, args=(clients["staff"], tally, until, point)),
            threading.Thread(target=reader, args=(clients, tally, until, point)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=seconds + 600)
            if thread.is_alive():
                tally.note(f"{thread.name} still running 10 minutes after the end (hung)")
        for client in clients.values():
            client.close()
    account(url, tally, draft)
    return tally


def _draft(client: httpx.Client) -> tuple[int, list[str]]:
    """A draft copy of B's published plan, and two grids the planners toggle."""
    street = f"/divisions/{STREETS['B']}"
    plans = client.get(f"{street}/plans").json()
    published = next(p["plan_id"] for p in plans if p["status"] == "published")
    draft = client.post(f"{street}/plans/{published}/copy", json={"note": "concurrency"}).json()
    shown = client.get(f"{street}/plans/{draft['plan_id']}").json()
    codes = sorted(grid["grid_code"] for grid in shown["grids"])
    return draft["plan_id"], codes[:2]


def _point_in_c(client: httpx.Client) -> tuple[float, float]:
    """A point inside a building of street C (WGS84)."""
    page = client.get(f"/divisions/{STREETS['C']}/buildings?limit=1").json()
    building = page["items"][0]
    return building["lon"], building["lat"]


def account(url: str, tally: Tally, draft: int) -> None:
    """Every write accounted for in the database."""
    from geo.storage.store import open_store

    b = open_store(url, division=STREETS["B"])
    plan = b.read_table("plans", where={"plan_id": draft})
    edits = b.count("edits", {"plan_id": draft})
    if int(plan["revision"].iloc[0]) != tally.edits_ok or edits != tally.edits_ok:
        tally.note(
            f"B: {tally.edits_ok} edits answered 200, the plan has revision "
            f"{int(plan['revision'].iloc[0])} and {edits} edits (a lost or phantom update)"
        )
    c = open_store(url, division=STREETS["C"])
    stored = c.read_layer("incidents", columns=["source_id"])["source_id"]
    if stored.duplicated().any() or not tally.cases_acknowledged <= set(stored):
        tally.note(
            f"C: {len(tally.cases_acknowledged)} cases acknowledged, {len(stored)} stored, "
            f"{int(stored.duplicated().sum())} twice"
        )
    a = open_store(url, division=STREETS["A"])
    if a.count("plans", {"status": "published"}) != 1:
        tally.note(f"A: {a.count('plans', {'status': 'published'})} published plans, not 1")
    for store in (a, b, c):
        store.engine.dispose()


def summary(tally: Tally, seconds: float) -> dict[str, object]:
    reads = sorted(tally.read_ms)
    p99 = reads[int(0.99 * (len(reads) - 1))] if reads else float("nan")
    return {
        "seconds": seconds,
        "street A imports + partitions": tally.imports,
        "street B edits answered 200": tally.edits_ok,
        "street B edits answered 409 (stale)": tally.edits_stale,
        "street C cases posted": tally.cases_posted,
        "street C distinct cases acknowledged": len(tally.cases_acknowledged),
        "reads": tally.reads,
        "read p50 ms": round(statistics.median(reads), 1) if reads else None,
        "read p99 ms": round(p99, 1),
        "statuses": dict(sorted(tally.statuses.items())),
        "problems": len(tally.problems),
    }
