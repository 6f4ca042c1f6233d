"""Benchmark geo.plans.editing: how fast a planner's edit answers on a real district.

Run: ``.venv/bin/python -m bench.editing`` (``--double`` adds a 16,484-building run: Suzhou
twice, the copy shifted 20 km east; ``--db FILE`` reuses a partitioned project file).
Each edit is one store transaction: revision check, regrouping, polygons, codes and facts of the
touched grids only, writes, history step. Writes the ``editing`` section of docs/benchmarks.md.

Besides the in-process timings, each district is served by a fresh ``gridmap serve`` process on
loopback: the first edit posted once the server answers ``/health`` against the edits after it,
as a planner meets them (issue #16: the first took 1.1 s, later ones 0.1 s).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from api.auth import create_token
from bench._report import write_section
from geo.plans import editing
from geo.plans import store as plans
from geo.storage.store import Store, open_store
from geo.usecases import district as project
from geo.usecases.partition import partition_project

ROOT = Path(__file__).resolve().parents[1]
SUZHOU = ROOT.parent / "shared" / "data" / "suzhou_gusu_buildings.geojson"
#: seconds a served run may take to start, and one request to answer (a shared machine is slow)
START_TIMEOUT_S, REQUEST_TIMEOUT_S = 180.0, 60.0


def build_project(folder: Path, *, double: bool = False) -> Path:
    """Import and partition Suzhou (or Suzhou twice) into ``folder``; returns the project file."""
    folder.mkdir(parents=True, exist_ok=True)
    source = SUZHOU
    if double:
        frame = gpd.read_file(SUZHOU)
        metric = frame.to_crs(frame.estimate_utm_crs())
        shifted = metric.copy()
        shifted["geometry"] = metric.geometry.translate(xoff=20_000)
        both = pd.concat([metric, shifted], ignore_index=True).to_crs(4326)
        source = folder / "suzhou_x2.gpkg"
        both["osm_index"] = np.arange(len(both))  # the copy needs ids of its own
        both.to_file(source)
    db = folder / "project.gpkg"
    store = open_store(db, create=True)
    project.import_buildings(store, source)
    partition_project(store, author="bench")
    store.engine.dispose()
    return db


def _moves(plan: plans.Plan, rng: np.random.Generator, n: int) -> list[tuple[str, str]]:
    """(building, target grid) pairs: a building to the nearest other grid of its community."""
    grids = plan.grids
    counts = grids.groupby("community").size()
    busy = grids[grids["community"].isin(counts.index[counts >= 2]) & (grids["n_buildings"] >= 2)]
    centre = busy.geometry.centroid
    out = []
    for code in rng.choice(busy.index.to_numpy(), size=n, replace=False):
        same = busy.index[(busy["community"] == busy.at[code, "community"]) & (busy.index != code)]
        target = centre[same].distance(centre[code]).idxmin()
        building = plan.labels.index[plan.labels == code][0]
        out.append((str(building), str(target)))
    return out


def _timed(fn) -> tuple[tuple[float, float], object]:
    """(wall ms, this process's CPU ms) of ``fn()``, and its result."""
    start, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return ((time.perf_counter() - start) * 1000, (time.process_time() - cpu) * 1000), result


def _stats(ms: list[tuple[float, float]]) -> str:
    wall = sorted(m[0] for m in ms)
    cpu = sorted(m[1] for m in ms)
    p95 = wall[min(len(wall) - 1, round(0.95 * (len(wall) - 1)))]
    cpu_ms = f"{statistics.median(cpu):.0f}" if any(cpu) else "(server)"
    return f"{statistics.median(wall):.0f} | {p95:.0f} | {max(wall):.0f} | {cpu_ms}"


class _Session:
    """The draft being edited, its revision, and the timings of each kind of step."""

    def __init__(self, store: Store, draft: int) -> None:
        self.store, self.draft, self.revision = store, draft, 0
        self.times: dict[str, list[tuple[float, float]]] = {}

    def step(self, name: str, call: Callable[[int], Any], *, extra=(0.0, 0.0)) -> Any:
        """Time ``call(revision)``, keep the revision it returns, record the time under ``name``."""
        ms, result = _timed(lambda: call(self.revision))
        self.revision = result.revision
        self.times.setdefault(name, []).append((ms[0] + extra[0], ms[1] + extra[1]))
        return result

    def edit(self, name: str, op: str, args: dict, **kwargs: Any) -> Any:
        return self.step(
            name,
            lambda r: editing.apply_edit(self.store, self.draft, op, args, revision=r, **kwargs),
        )

    def plan(self) -> Any:
        return editing.plan_state(self.store, self.draft)


def _moves_undo_redo(session: _Session, rng: np.random.Generator, n: int, cold: tuple) -> None:
    """Moves (the first with the cold cache loading added), then undo and redo n/2 times each."""
    for i, (building, target) in enumerate(_moves(session.plan(), rng, n)):
        session.step(
            "move" if i else "move (first, cold caches)",
            lambda r, b=building, t=target: editing.apply_edit(
                session.store,
                session.draft,
                "move",
                {"buildings": [b], "to": t},
                revision=r,
                author="bench",
            ),
            extra=(0.0, 0.0) if i else cold,
        )
    for _ in range(n // 2):
        session.step("undo", lambda r: editing.undo(session.store, session.draft, revision=r))
    for _ in range(n // 2):
        session.step("redo", lambda r: editing.redo(session.store, session.draft, revision=r))


def _swaps_merges_splits(session: _Session, rng: np.random.Generator, n: int) -> None:
    plan = session.plan()
    for building, target in _moves(plan, rng, n // 2):
        other = plan.labels.index[plan.labels == target][0]
        session.edit("swap", "swap", {"a": building, "b": other})
    plan = session.plan()
    for building, target in _moves(plan, rng, n // 2):
        result = session.edit("merge", "merge", {"grids": [plan.labels[building], target]})
        session.edit("split (automatic)", "split", {"grid": result.touched.index[0]})
        plan = session.plan()


def _locks_and_stale(session: _Session, n: int) -> None:
    codes = list(session.plan().grids.index[: n // 2])
    for code in codes:
        session.edit("lock", "lock", {"grids": [code]})
    for _ in range(5):
        start, cpu = time.perf_counter(), time.process_time()
        try:
            editing.apply_edit(
                session.store, session.draft, "lock", {"grids": [codes[-1]]}, revision=0
            )
        except editing.StaleRevision:
            session.times.setdefault("stale revision refused (409)", []).append(
                ((time.perf_counter() - start) * 1000, (time.process_time() - cpu) * 1000)
            )


def run(
    db: Path, *, n: int = 30, seed: int = 0
) -> tuple[int, int, dict[str, list[tuple[float, float]]]]:
    """Edit a copy of the published plan of ``db``; returns buildings, grids and timings (ms)."""
    editing.clear_cache()
    store = open_store(db)
    session = _Session(
        store, editing.copy_plan(store, plans.published_plan_id(store), author="bench")
    )
    cold, _ = _timed(session.plan)
    rng = np.random.default_rng(seed)
    _moves_undo_redo(session, rng, n, cold)
    _swaps_merges_splits(session, rng, n)
    _locks_and_stale(session, n)
    plan = session.plan()
    return len(plan.labels), len(plan.grids), session.times


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_ready(base: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2):
                return
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("gridmap serve did not start") from None
            time.sleep(0.05)


def _post(url: str, token: str, body: dict) -> dict:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as answer:
        return json.load(answer)


def run_served(db: Path, *, n: int = 20, seed: int = 1) -> dict[str, list[tuple[float, float]]]:
    """Edits posted to a fresh ``gridmap serve`` on a copy of ``db``: the first one once the
    server answers, then ``n`` more; wall ms (the CPU column is the server's, not measured: 0)."""
    served = db.with_name("served.gpkg")
    shutil.copy(db, served)
    store = open_store(served)
    draft = editing.copy_plan(store, plans.published_plan_id(store), author="bench")
    token = create_token(store, "bench", "planner")
    moves = _moves(plans.load_plan(store, draft), np.random.default_rng(seed), n + 1)
    store.engine.dispose()
    editing.clear_cache()
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "api", "serve", "--db", str(served), "--port", str(port)]
    times: dict[str, list[tuple[float, float]]] = {}
    with tempfile.TemporaryFile() as output:
        started = time.perf_counter()
        server = subprocess.Popen(command, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT)
        try:
            _wait_ready(base, server)
            times["gridmap serve: start until /health answers"] = [
                ((time.perf_counter() - started) * 1000, 0.0)
            ]
            for revision, (building, target) in enumerate(moves):
                body = {"op": "move", "args": {"buildings": [building], "to": target}}
                start = time.perf_counter()
                _post(f"{base}/plans/{draft}/edits", token, {**body, "revision": revision})
                name = "served: first move" if revision == 0 else "served: later moves"
                times.setdefault(name, []).append(((time.perf_counter() - start) * 1000, 0.0))
        finally:
            server.terminate()
            server.wait(timeout=30)
    return times


#: what the table measures, printed above it
EXPLANATION = [
    "Each edit is one store transaction on a draft copy of the published plan: revision "
    "check, regrouping, polygons/codes/facts of the touched grids only, writes and the "
    "history step. Target: an edit answers in under 200 ms on a 10,000-building district. "
    "The in-process 'first, cold caches' move includes loading the district, its adjacency "
    "and the plan into the in-process cache. Wall time on this shared machine is "
    "mostly waiting for a core; CPU ms is the process's own work per edit.",
    "",
    "The 'served' rows are a fresh `gridmap serve` process on loopback (a draft copied and "
    "a planner token made before it starts): the first move is posted as soon as `/health` "
    "answers, then 20 more, timed by the client over HTTP. The service loads the district, "
    "its adjacency, the newest drafts and the engine's compiled functions while it starts "
    "(`geo.plans.editing.warm`), so the first edit costs what later ones cost. Issue #16's "
    "target: the first edit after the server starts under 300 ms (it took 1.1 s on "
    "Suzhou, 1.5 s on Suzhou twice, while later edits took 100 ms).",
]


def _first_edit_verdict(label: str, served: dict[str, list[tuple[float, float]]]) -> str:
    first = served["served: first move"][0][0]
    later = statistics.median(m[0] for m in served["served: later moves"])
    verdict = "met" if first < 300 else f"not met (by {first - 300:.0f} ms)"
    return (
        f"- {label}: the first move after `gridmap serve` answered in {first:.0f} ms, "
        f"later moves in {later:.0f} ms (median): the < 300 ms target is {verdict}."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, help="a partitioned project file (copied, not changed)")
    parser.add_argument("--double", action="store_true", help="also run Suzhou twice (16,484)")
    parser.add_argument("-n", type=int, default=30, help="edits per kind")
    args = parser.parse_args()
    rows, verdicts = [], []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        runs = []
        if args.db:
            runs.append(("given project", shutil.copy(args.db, folder / "given.gpkg")))
        else:
            runs.append(("Suzhou Gusu (real footprints)", build_project(folder / "one")))
        if args.double:
            runs.append(
                ("Suzhou twice (copy shifted 20 km)", build_project(folder / "two", double=True))
            )
        for label, db in runs:
            buildings, grids, times = run(Path(db), n=args.n)
            served = run_served(Path(db), n=min(args.n, 20))
            times.update(served)
            verdicts.append(_first_edit_verdict(label, served))
            for name, ms in times.items():
                rows.append(
                    f"| {label} | {buildings:,} | {grids:,} | {name} | {len(ms)} | {_stats(ms)} |"
                )
            print(label, buildings, grids, {k: _stats(v) for k, v in times.items()})
    text = "\n".join(
        [
            "Command: `.venv/bin/python -m bench.editing"
            + (" --double" if args.double else "")
            + f"` ({platform.machine()}, Python {platform.python_version()}, 2 cores shared with "
            f"other jobs: load average {os.getloadavg()[0]:.1f} at the end of the run).",
            "",
            *EXPLANATION,
            "",
            "| district | buildings | grids | step | n | median ms | p95 ms | max ms | median CPU ms |",
            "|---|---:|---:|---|---:|---:|---:|---:|---:|",
            *rows,
            "",
            *verdicts,
        ]
    )
    write_section("editing", text)


if __name__ == "__main__":
    main()
