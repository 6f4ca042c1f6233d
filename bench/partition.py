"""Benchmark the partition engine against k-means-constrained and spopt's MaxP heuristic.

Every method partitions the same buildings per community; every result is judged by the same
:func:`geo.grids.partition.grid_report` on the same trimmed adjacency graph. Writes the ``partition``
section of ``docs/benchmarks.md``.

Usage::

    .venv/bin/python bench/partition.py            # Suzhou, Kunming, demo (+ anchors), 100k, 1M
    .venv/bin/python bench/partition.py --quick    # Kunming and Suzhou only
    .venv/bin/python bench/partition.py --inputs suzhou synthetic-100000 --anchors-up-to 200000
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._report import write_section  # noqa: E402
from geo.grids.adjacency import building_adjacency  # noqa: E402
from geo.grids.partition import grid_report, partition_buildings, partition_summary  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
MIN_SIZE, MAX_SIZE = 4, 5
#: wall-clock budget of one anchor on one input, in seconds
BUDGET_S = 600.0


class OverBudgetError(Exception):
    """An anchor ran past BUDGET_S; carries how many communities it finished."""


# --------------------------------------------------------------------------- inputs


def suzhou() -> gpd.GeoDataFrame:
    """Suzhou Gusu footprints; communities are 500 m squares of centroids (no community field)."""
    gdf = gpd.read_file(DATA / "suzhou_gusu_buildings.geojson").to_crs(4549)
    return with_square_communities(gdf, 500.0)


def with_square_communities(gdf: gpd.GeoDataFrame, side: float) -> gpd.GeoDataFrame:
    c = gdf.geometry.centroid
    col = np.floor(c.x / side).astype(int).astype(str)
    row = np.floor(c.y / side).astype(int).astype(str)
    return gdf.assign(community=col + "_" + row)


def kunming() -> gpd.GeoDataFrame:
    gdf = gpd.read_file(DATA / "kunming_buildings.geojson")
    return gdf.to_crs(gdf.estimate_utm_crs())


def demo() -> gpd.GeoDataFrame:
    from geo.demo import demo_district

    return demo_district(seed=2026).buildings


def synthetic(n: int, seed: int = 0) -> gpd.GeoDataFrame:
    """A district of ``n`` buildings: 400 m blocks of jittered row houses with courtyards left empty.

    Each block is a community of about 300 buildings; a share of lattice sites is left empty
    (courtyards, squares) so the adjacency graph has gaps, and rows are rotated per block.
    """
    rng = np.random.default_rng(seed)
    per_block = 300
    blocks = int(np.ceil(1.05 * n / per_block))  # lattice sites are kept at random: leave headroom
    side = int(np.ceil(np.sqrt(blocks)))
    spacing = 20.0
    lattice = np.stack(np.meshgrid(np.arange(20), np.arange(20)), axis=-1).reshape(-1, 2) * spacing
    xs, ys, comm = [], [], []
    for b in range(blocks):
        keep = rng.random(len(lattice)) < per_block / len(lattice)
        pts = lattice[keep] + rng.normal(0, 2.0, (int(keep.sum()), 2))
        angle = rng.uniform(0, np.pi / 6)
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        pts = pts @ rot + np.array([b % side, b // side]) * 450.0
        xs.append(pts[:, 0])
        ys.append(pts[:, 1])
        comm.append(np.full(len(pts), b))
    x, y, c = np.concatenate(xs)[:n], np.concatenate(ys)[:n], np.concatenate(comm)[:n]
    geom = shapely.box(x - 6, y - 4, x + 6, y + 4)
    return gpd.GeoDataFrame(
        {
            "building_id": np.char.add("b", np.arange(len(x)).astype(str)),
            "community": np.char.add("c", c.astype(str)),
            "households": pd.array([pd.NA] * len(x), dtype="Int64"),
        },
        geometry=geom,
        crs=32651,
    )


def load(name: str) -> gpd.GeoDataFrame:
    if name == "suzhou":
        return suzhou()
    if name == "kunming":
        return kunming()
    if name == "demo":
        return demo()
    if name.startswith("synthetic-"):
        return synthetic(int(name.split("-", 1)[1]))
    raise SystemExit(f"unknown input {name!r}")


# --------------------------------------------------------------------------- methods


def run_gridmap(gdf: gpd.GeoDataFrame, restarts: int | None = None) -> pd.Series:
    return partition_buildings(gdf, min_size=MIN_SIZE, max_size=MAX_SIZE, restarts=restarts).labels


def _check_budget(started: float, done: int, total: int) -> None:
    if time.perf_counter() - started > BUDGET_S:
        raise OverBudgetError(f"{done} of {total} communities")


def run_kmeans_constrained(
    gdf: gpd.GeoDataFrame, grids_per_comm: pd.Series, n_init: int
) -> pd.Series:
    from k_means_constrained import KMeansConstrained

    xy = shapely.get_coordinates(gdf.geometry.centroid.array)
    labels = pd.Series("", index=gdf.index, dtype=object)
    groups = gdf.groupby("community").indices
    started = time.perf_counter()
    for done, (comm, idx) in enumerate(groups.items()):
        _check_budget(started, done, len(groups))
        n, k = len(idx), int(grids_per_comm.get(comm, 1))
        if k <= 1 or n <= 1:
            labels.iloc[idx] = f"{comm}/0"
            continue
        lo, hi = min(MIN_SIZE, n // k), max(MAX_SIZE, -(-n // k))
        model = KMeansConstrained(
            n_clusters=k, size_min=lo, size_max=hi, n_init=n_init, random_state=0
        )
        found = model.fit_predict(xy[idx])
        labels.iloc[idx] = [f"{comm}/{g}" for g in found]
    return labels


def run_maxp(gdf: gpd.GeoDataFrame, adjacency) -> pd.Series:
    from libpysal.weights import WSP
    from spopt.region import MaxPHeuristic

    xy = shapely.get_coordinates(gdf.geometry.centroid.array)
    labels = pd.Series("", index=gdf.index, dtype=object)
    groups = gdf.groupby("community").indices
    started = time.perf_counter()
    for done, (comm, idx) in enumerate(groups.items()):
        _check_budget(started, done, len(groups))
        sub = adjacency[idx][:, idx]
        frame = gpd.GeoDataFrame(
            {"x": xy[idx, 0], "y": xy[idx, 1], "one": 1.0}, geometry=gdf.geometry.iloc[idx].values
        )
        found = np.zeros(len(idx), dtype=np.int64)
        if len(idx) >= 2 * MIN_SIZE and sub.nnz:
            w = WSP(sub.tocsr().astype(bool).astype(float)).to_W(silence_warnings=True)
            model = MaxPHeuristic(
                frame, w, ["x", "y"], "one", MIN_SIZE, top_n=2, max_iterations_construction=20
            )
            model.solve()
            found = np.asarray(model.labels_)
        if len(idx) >= 2 * MIN_SIZE and sub.nnz:
            # buildings MaxP leaves unassigned (label <= 0) keep a one-building region each
            found = np.where(found <= 0, -1 - np.arange(len(idx)), found)
        labels.iloc[idx] = [f"{comm}/{g}" for g in found]
    return labels


# --------------------------------------------------------------------------- measurement


def judge(gdf, labels, adjacency) -> dict:
    grids = grid_report(gdf, labels, adjacency=adjacency, min_size=MIN_SIZE, max_size=MAX_SIZE)
    return partition_summary(grids, min_size=MIN_SIZE, max_size=MAX_SIZE)


def peak_memory_gb(name: str) -> float:
    """Peak resident memory of a fresh process that loads ``name`` and partitions it."""
    out = subprocess.run(
        [sys.executable, __file__, "--memory-of", name],
        capture_output=True,
        text=True,
        check=True,
        timeout=900,
    )
    return float(out.stdout.strip().splitlines()[-1])


def row(
    input_name: str, method: str, took: tuple[float, float], summary: dict, memory: str = ""
) -> dict:
    return {
        "input": input_name,
        "method": method,
        "wall s": f"{took[0]:.3f}",
        "cpu s": f"{took[1]:.3f}",
        "grids": summary["grids"],
        "in [4,5]": f"{100 * summary['share_in_range']:.1f} %",
        "contiguous": f"{100 * summary['share_contiguous']:.1f} %",
        "mean diam m": f"{summary['mean_diameter_m']:.0f}",
        "p95 diam m": f"{summary['p95_diameter_m']:.0f}",
        "max diam m": f"{summary['max_diameter_m']:.0f}",
        "peak mem": memory,
    }


def timed(func, *args, budget: float | None = None):
    """Run ``func``; with ``budget`` (seconds) an alarm stops it even inside one long community.

    As timeit does, the garbage collector is paused while the clock runs (and collects first):
    every method runs in this one process, beside the others' imports and data, and a full
    collection that happens to fall inside one method's timing says nothing about that method.
    """

    def stop(signum, frame):
        raise OverBudgetError("the time budget")

    gc.collect()
    gc.disable()
    wall, cpu = time.perf_counter(), time.process_time()
    if budget:
        signal.signal(signal.SIGALRM, stop)
        signal.alarm(int(budget))
    try:
        out = func(*args)
    finally:
        signal.alarm(0)
        took = (time.perf_counter() - wall, time.process_time() - cpu)
        gc.enable()
    return out, took


def failed_row(label: str, method: str, why: str) -> dict:
    return {"input": label, "method": method, "wall s": f"> {BUDGET_S:.0f} (stopped: {why})"}


def warm_up() -> None:
    """Load every method's code once (imports, numba's compiled functions) before any timing."""
    small = kunming().iloc[:60]
    labels = run_gridmap(small)
    grids_per_comm = pd.Series(labels.to_numpy()).groupby(small["community"].to_numpy()).nunique()
    run_kmeans_constrained(small, grids_per_comm, 1)
    run_maxp(small, building_adjacency(small, min_size=MIN_SIZE))


def bench_input(name: str, anchors: bool, memory: bool) -> list[dict]:
    gdf = load(name)
    label = f"{name} ({len(gdf):,} bldgs, {gdf['community'].nunique():,} communities)"
    adjacency = building_adjacency(gdf, min_size=MIN_SIZE)
    labels, took = timed(run_gridmap, gdf)
    mem = f"{peak_memory_gb(name):.2f} GB" if memory else ""
    rows = [row(label, "gridmap (default)", took, judge(gdf, labels, adjacency), mem)]
    gridmap_took = took
    print(rows[-1], flush=True)
    if not anchors:
        return rows
    more, took = timed(run_gridmap, gdf, 4)
    rows.append(row(label, "gridmap restarts=4", took, judge(gdf, more, adjacency)))
    print(rows[-1], flush=True)
    grids_per_comm = pd.Series(labels.to_numpy()).groupby(gdf["community"].to_numpy()).nunique()
    anchors_run = [
        (
            f"k-means-constrained n_init={n_init}",
            run_kmeans_constrained,
            (gdf, grids_per_comm, n_init),
        )
        for n_init in (1, 10)
    ] + [("spopt MaxPHeuristic (floor 4)", run_maxp, (gdf, adjacency))]
    for method, func, args in anchors_run:
        try:
            found, took = timed(func, *args, budget=BUDGET_S)
        except OverBudgetError as stop:
            rows.append(failed_row(label, method, str(stop)))
        else:
            rows.append(row(label, method, took, judge(gdf, found, adjacency)))
            rows[-1]["gridmap faster"] = (
                f"{took[0] / gridmap_took[0]:.1f}x / {took[1] / gridmap_took[1]:.1f}x"
            )
        print(rows[-1], flush=True)
    return rows


def rows_in_fresh_process(name: str, anchors: bool) -> list[dict]:
    """Benchmark one input in a process of its own: no method's threads or garbage reach the next."""
    command = [sys.executable, __file__, "--rows-of", name, "--budget", str(BUDGET_S)]
    out = subprocess.run(
        command + (["--with-anchors"] if anchors else []),
        capture_output=True,
        text=True,
        check=True,
        timeout=6 * BUDGET_S + 1200,
    )
    print(out.stdout, end="", flush=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def markdown(rows: list[dict], command: str, notes: list[str]) -> str:
    table = pd.DataFrame(rows, dtype=object).fillna("")
    head = "| " + " | ".join(table.columns) + " |\n|" + "---|" * len(table.columns) + "\n"
    body = "".join("| " + " | ".join(str(v) for v in r) + " |\n" for r in table.to_numpy())
    text = f"Command: `{command}` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})\n\n{head}{body}"
    return text + "\n" + "\n".join(f"- {n}" for n in notes)


def _notes() -> list[str]:
    """What the table's columns mean and how each was measured."""
    return [
        "All methods partition each community separately; every result is judged by `geo.grids.partition.grid_report` "
        "on the same trimmed adjacency graph (`geo.grids.adjacency.building_adjacency`).",
        "k-means-constrained gets the number of grids gridmap chose in each community; where that count cannot "
        "hold 4-5 each its bounds are widened to the nearest feasible sizes.",
        "gridmap's time is the whole `partition_buildings` call: adjacency graph, partition and the grid "
        "report; the anchors' time is their labelling alone. Every method ran once on a small input before "
        "the timings (imports, numba's compiled functions loaded), each input in a fresh process. Peak "
        "memory is the resident peak of a "
        "fresh process that loads the input and partitions it (data loading included).",
        "'gridmap faster' is an anchor's time over gridmap (default)'s on the same input in the same run: "
        "wall / CPU. gridmap uses every core (one worker thread per core triangulates communities and "
        "regroups units): CPU seconds count all threads, so the CPU ratio is the single-core comparison. "
        "On a few hundred buildings (Kunming) both take milliseconds and gridmap's fixed per-call work "
        "(adjacency graph, grid report) decides the ratio. As with timeit, the garbage collector is paused "
        "during each timing (after a collection), since every method shares this one process.",
        "gridmap (default) is one run; `restarts=4` turns the curve three more times and keeps each "
        f"community's best run. Load average when the run ended: {os.getloadavg()[0]:.1f} on 2 cores.",
        f"Anchors get at most {BUDGET_S:.0f} s of wall time per input; a row reading '> {BUDGET_S:.0f}' did "
        "not finish (its results are not shown).",
        "Suzhou has no community field: communities are 500 m squares of building centroids.",
        "'in [4,5]' counts all grids; the others lie in communities whose count cannot be split into 4-5 "
        "(1-3, 6, 7, 11 buildings) and are flagged undersized/oversized with a reason.",
        "'contiguous' is judged on the trimmed graph; a community cut into pieces by open space needs a "
        "bridging grid wherever a piece is too small for a grid of its own (gridmap flags it non_contiguous).",
    ]


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--inputs",
        nargs="+",
        default=["kunming", "suzhou", "demo", "synthetic-100000", "synthetic-1000000"],
    )
    parser.add_argument("--quick", action="store_true", help="Kunming and Suzhou only")
    parser.add_argument(
        "--anchors-up-to", type=int, default=20000, help="run the anchors only on inputs this small"
    )
    parser.add_argument(
        "--no-write", action="store_true", help="print, do not touch docs/benchmarks.md"
    )
    parser.add_argument(
        "--budget", type=float, default=BUDGET_S, help="seconds per anchor and input"
    )
    parser.add_argument("--memory-of", help=argparse.SUPPRESS)
    parser.add_argument("--rows-of", help=argparse.SUPPRESS)
    parser.add_argument("--with-anchors", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args()


def _child(args: argparse.Namespace) -> None:
    """The work of a fresh child process: a peak-memory reading or one input's rows."""
    if args.memory_of:
        gdf = load(args.memory_of)
        partition_buildings(gdf, min_size=MIN_SIZE, max_size=MAX_SIZE)
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2)
        return
    if args.rows_of:
        warm_up()
        time.sleep(1.0)  # let worker threads the warm-up left spinning (BLAS, OpenMP) go idle
        print(json.dumps(bench_input(args.rows_of, args.with_anchors, memory=True)))
        return


def main() -> None:
    global BUDGET_S
    args = _arguments()
    BUDGET_S = args.budget
    if args.memory_of or args.rows_of:
        _child(args)
        return
    inputs = ["kunming", "suzhou"] if args.quick else args.inputs
    rows = []
    skipped = []
    for name in inputs:
        size = int(name.split("-", 1)[1]) if name.startswith("synthetic-") else 0
        anchors = size <= args.anchors_up_to
        if not anchors:
            skipped.append(name)
        rows.extend(rows_in_fresh_process(name, anchors))
    notes = _notes()
    if skipped:
        notes.append(
            "Anchors not run on "
            + ", ".join(skipped)
            + f" (above --anchors-up-to {args.anchors_up_to}); "
            "the largest input with anchors shows how they scale."
        )
    command = "python bench/partition.py " + " ".join(sys.argv[1:])
    text = markdown(rows, command.strip(), notes)
    print(text)
    if not args.no_write:
        write_section("partition", text)


if __name__ == "__main__":
    main()
