"""Load run of the HTTP API on loopback: GET /locate, then a mix with incident POSTs.

Run: ``.venv/bin/python bench/api.py`` (30 s per phase) or ``--quick`` (5 s); ``--db`` to use an
existing project (default: Suzhou's 8,242 footprints imported and partitioned into a temporary
project). uvicorn runs in its own processes (``--workers``, default 2 for 2 cores). The locate
load comes from ``wrk`` (Debian package ``wrk``) when installed, else from httpx async clients
(which cost more CPU than the server and so measure the client); incident POSTs always come from
httpx async clients. Everything runs on the same machine. Writes the ``api`` section of
docs/benchmarks.md.

Targets (issue 8): GET /locate at 50 clients p99 < 20 ms, >= 1,500 req/s, zero errors.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api.auth import create_token  # noqa: E402
from bench._report import write_section  # noqa: E402
from geo.storage.store import Store, open_store  # noqa: E402
from geo.usecases import district as project  # noqa: E402
from geo.usecases.partition import partition_project  # noqa: E402

SUZHOU = ROOT.parent / "shared" / "data" / "suzhou_gusu_buildings.geojson"


@dataclass
class Tally:
    """Latencies (ms) and failures of one kind of request."""

    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    #: from wrk, which reports counts and percentiles rather than every latency
    count: int | None = None
    summary: tuple[float, float, float] | None = None

    def add_error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1

    def row(self, name: str, seconds: float) -> str:
        n = self.count if self.count is not None else len(self.latencies)
        if self.summary is not None:
            p50, p99, top = self.summary
        else:
            lat = np.array(self.latencies) if self.latencies else np.array([np.nan])
            p50, p99, top = np.percentile(lat, 50), np.percentile(lat, 99), lat.max()
        failed = sum(self.errors.values())
        detail = ", ".join(f"{k}: {v}" for k, v in sorted(self.errors.items())) or "none"
        return (
            f"| {name} | {n:,} | {n / seconds:,.0f} | {p50:.1f} | {p99:.1f} | {top:.1f} | "
            f"{failed} ({detail}) |"
        )


def build_project(folder: Path) -> Path:
    db = folder / "suzhou.gpkg"
    store = open_store(db, create=True)
    project.import_buildings(store, SUZHOU)
    partition_project(store, author="bench")
    store.engine.dispose()
    return db


def start_server(db: Path, port: int, workers: int) -> subprocess.Popen:
    env = {**os.environ, "GRIDMAP_DB": str(db)}
    command = [sys.executable, "-m", "uvicorn", "--factory", "api.app:create_app"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    command += ["--log-level", "warning", "--no-access-log"]
    process = subprocess.Popen(command, env=env, cwd=ROOT)
    for _ in range(600):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.terminate()
    raise RuntimeError("uvicorn did not start")


async def timed_request(tally: Tally, request) -> None:
    """Await ``request`` (an httpx call not yet awaited); a 200's latency or the error goes to ``tally``."""
    start = time.perf_counter()
    try:
        response = await request
    except httpx.HTTPError as error:
        tally.add_error(type(error).__name__)
        return
    if response.status_code == 200:
        tally.latencies.append((time.perf_counter() - start) * 1000)
    else:
        tally.add_error(str(response.status_code))


async def locate_client(client, points, stop, tally: Tally) -> None:
    for lon, lat in itertools.cycle(points):
        if time.perf_counter() >= stop:
            return
        await timed_request(tally, client.get("/locate", params={"lon": lon, "lat": lat}))


async def post_client(client, points, stop, tally: Tally, number: int) -> None:
    """One case per POST (the intake row of issue #16: a 12345 system pushing each call)."""
    rng = np.random.default_rng(number)
    for k in itertools.count():
        if time.perf_counter() >= stop:
            return
        lon, lat = points[int(rng.integers(len(points)))]
        case = {
            "source": "bench",
            "id": f"b{number}-{k}",
            "category": "暴露垃圾",
            "reported_at": "2026-01-06T09:00:00+08:00",
            "lon": lon,
            "lat": lat,
        }
        await timed_request(tally, client.post("/incidents", json=case))


async def mixed_with_wrk(url, token, points, seconds, locators, posters, folder):
    """wrk locates while httpx clients post cases, for the same time."""
    loop = asyncio.get_running_loop()
    located = loop.run_in_executor(
        None,
        lambda: wrk_locate(
            url, token, points, seconds=seconds, connections=locators, folder=folder
        ),
    )
    _, posted = await run_phase(url, token, points, seconds=seconds, locators=0, posters=posters)
    return await located, posted


async def run_phase(url, token, points, *, seconds, locators, posters) -> tuple[Tally, Tally]:
    limits = httpx.Limits(max_connections=max(locators + posters, 1), max_keepalive_connections=100)
    headers = {"Authorization": f"Bearer {token}"}
    located, posted = Tally(), Tally()
    async with httpx.AsyncClient(
        base_url=url, headers=headers, limits=limits, timeout=30
    ) as client:
        stop = time.perf_counter() + seconds
        shuffled = [points[i :: max(locators, 1)] for i in range(max(locators, 1))]
        tasks = [locate_client(client, shuffled[i], stop, located) for i in range(locators)]
        tasks += [post_client(client, points, stop, posted, i) for i in range(posters)]
        await asyncio.gather(*tasks)
    return located, posted


WRK_SCRIPT = """
local points = {%s}
local i = 0
request = function()
  i = i + 1
  local p = points[(i %% #points) + 1]
  return wrk.format("GET", "/locate?lon=" .. p[1] .. "&lat=" .. p[2])
end
"""


def wrk_locate(url, token, points, *, seconds, connections, folder: Path) -> Tally:
    """GET /locate with wrk (C, from Debian): the server's figures, not the client's."""
    script = folder / "locate.lua"
    listed = ",".join(f"{{{lon},{lat}}}" for lon, lat in points)
    script.write_text(WRK_SCRIPT % listed, encoding="utf-8")
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds:.0f}s", "--latency"]
    command += ["-s", str(script), "-H", f"Authorization: Bearer {token}", url]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    (folder / f"wrk-{connections}.txt").write_text(output, encoding="utf-8")
    try:
        return _parse_wrk(output, seconds)
    except (AttributeError, KeyError) as error:
        raise RuntimeError(f"cannot read wrk's report:\n{output}") from error


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def _parse_wrk(output: str, seconds: float) -> Tally:
    total = int(re.search(r"(\d+) requests in", output).group(1))
    percentiles = dict(re.findall(r"^\s+(50|99)(?:\.0+)?%\s+(\S+)", output, flags=re.MULTILINE))
    maximum = re.search(r"Latency\s+\S+\s+\S+\s+(\S+)", output).group(1)
    tally = Tally(
        count=total, summary=(_ms(percentiles["50"]), _ms(percentiles["99"]), _ms(maximum))
    )
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if bad:
        tally.errors["non-2xx"] = int(bad.group(1))
    socket = re.search(r"Socket errors: (.*)", output)
    if socket:
        tally.errors["socket"] = sum(int(n) for n in re.findall(r"\d+", socket.group(1)))
    return tally


def intake_verdict(posted: Tally, seconds: float) -> str:
    """Whether the intake row met issue #16's target, and by how much it missed."""
    rate = len(posted.latencies) / seconds
    p99 = float(np.percentile(posted.latencies, 99)) if posted.latencies else float("nan")
    if rate >= 200 and p99 < 100:
        return "met."
    return (
        f"not met ({rate:,.0f} cases/s, {200 / max(rate, 1e-9):.1f}x short; p99 {p99:,.0f} ms, "
        f"{p99 / 100:.0f}x the bound). A single-case POST takes about 3 ms in the server "
        "(geo.incidents.intake, run on the event loop; 14 ms by the pandas feed path, 0.5 s "
        "before issue #16) and 8 ms through the in-process test client. The rest is waiting: "
        "for a core (wrk, the httpx posters and other work on this machine share its two), "
        "for the event loop that also serves the locates, and for the one SQLite writer (a "
        "post finding the file locked by the other worker tries again for up to 31 ms, then "
        "waits in a thread). Run in a worker thread instead, a post waited for the GIL at "
        "every SQLite call while the loop served locates: 32-36 cases/s, p50 150-220 ms. "
        "What is left to try: group commit (one writer task storing the cases of many posts "
        "in one transaction) and a server on its own cores."
    )


TARGETS_TEXT = (
    "Targets: GET /locate p99 < 20 ms and >= 1,500 req/s at 50 clients, zero errors. "
    "The load generator shares the two cores with the server, so the figures are a floor "
    "for a server on its own machine. With 50 clients each waiting for its answer, the "
    "mean latency is 50 / throughput (Little's law): a p99 under 20 ms needs well over "
    "2,500 req/s, about 0.8 ms of CPU per request on two cores with the load generator "
    "taking its share; the lookup itself (GridIndex.locate_lonlat_point) takes about 55 us, "
    "the rest of a request is HTTP, routing and the token check. "
    "Each POST /incidents is one case and one write transaction (SQLite lets one writer "
    "at a time); it is assigned by the locate index the service caches for GET /locate "
    "(issue #16; before, every POST read the whole grids layer for an sjoin: p50 444 ms, "
    "11 cases/s; then 18 cases/s, p50 535 ms, through the pandas feed reader). One case now "
    "takes the lean path (geo.incidents.intake: plain values, the cached category match, "
    "the deadline walked from the case's day, one INSERT ... ON CONFLICT DO NOTHING), which "
    "stores exactly the row a feed of that case stores (tests/test_incident_intake.py). "
    "The 'alone' row is the posts without the locate load: the ceiling on this machine. "
    "Target (issue #16): 200 cases/s with p99 < 100 ms alongside the locate load: "
)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", type=Path, help="project file (default: build Suzhou)")
    parser.add_argument("--quick", action="store_true", help="5 s per phase instead of 30 s")
    parser.add_argument("--seconds", type=float, help="seconds per phase")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--httpx", action="store_true", help="load with httpx even if wrk exists")
    parser.add_argument("--posters", type=int, default=10, help="clients posting cases in the mix")
    return parser.parse_args()


def _sample_points(store: Store) -> tuple[list[tuple[float, float]], int]:
    """Up to 5,000 points inside buildings (WGS84) and the number of buildings."""
    buildings = store.read_layer("buildings", columns=["building_id"])
    sample = buildings.sample(min(len(buildings), 5_000), random_state=0)
    inside = sample.to_crs(4326).representative_point()
    points = list(zip(inside.x.round(7).tolist(), inside.y.round(7).tolist(), strict=True))
    return points, len(buildings)


def _phases(args: argparse.Namespace, url: str, token: str, points: list, folder: Path) -> dict:
    """Locates alone, locates with posts, posts alone: wrk for the locates where it exists."""
    seconds = args.seconds or (5.0 if args.quick else 30.0)
    posters = max(1, min(args.posters, args.clients - 1))
    asyncio.run(run_phase(url, token, points[:200], seconds=2, locators=5, posters=0))
    if shutil.which("wrk") is not None and not args.httpx:
        alone = wrk_locate(
            url, token, points, seconds=seconds, connections=args.clients, folder=folder
        )
        mixed, posted = asyncio.run(
            mixed_with_wrk(url, token, points, seconds, args.clients - posters, posters, folder)
        )
    else:
        phase = {"url": url, "token": token, "points": points, "seconds": seconds}
        alone, _ = asyncio.run(run_phase(**phase, locators=args.clients, posters=0))
        mixed, posted = asyncio.run(
            run_phase(**phase, locators=args.clients - posters, posters=posters)
        )
    _, alone_posted = asyncio.run(
        run_phase(url, token, points, seconds=seconds, locators=0, posters=posters)
    )
    return {"alone": alone, "mixed": mixed, "posted": posted, "alone_posted": alone_posted}


def _report(args: argparse.Namespace, phases: dict, *, n_buildings: int, load: float) -> str:
    seconds = args.seconds or (5.0 if args.quick else 30.0)
    posters = max(1, min(args.posters, args.clients - 1))
    use_wrk = shutil.which("wrk") is not None and not args.httpx
    command = "python bench/api.py" + (" --quick" if args.quick else "")
    command += f" --seconds {args.seconds:g}" if args.seconds else ""
    command += " --db PROJECT" if args.db else ""
    lines = [
        f"`{command}` — {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"uvicorn {args.workers} workers (uvloop, httptools), {args.clients} clients "
        f"({'wrk -t2' if use_wrk else 'httpx async'} for GET /locate, httpx async for the POSTs) "
        f"on the same machine, {seconds:.0f} s per phase, project of {n_buildings:,} buildings "
        f"({'Suzhou Gusu' if not args.db else args.db.name}); load average "
        f"{load:.1f} before the run (other work on the machine).",
        "",
        "| requests | count | per second | p50 ms | p99 ms | max ms | errors |",
        "|---|---|---|---|---|---|---|",
        phases["alone"].row(f"GET /locate alone ({args.clients} clients)", seconds),
        phases["mixed"].row(f"GET /locate in the mix ({args.clients - posters} clients)", seconds),
        phases["posted"].row(
            f"POST /incidents in the mix ({posters} clients, one case each)", seconds
        ),
        phases["alone_posted"].row(
            f"POST /incidents alone ({posters} clients, one case each)", seconds
        ),
        "",
        TARGETS_TEXT + intake_verdict(phases["posted"], seconds),
    ]
    return "\n".join(lines)


def main() -> None:
    args = _arguments()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="gridmap-bench-api-") as folder:
        db = args.db or build_project(Path(folder))
        store = open_store(db)
        token = create_token(store, f"bench-{os.getpid()}-{time.time_ns()}", "staff")
        points, n_buildings = _sample_points(store)
        server = start_server(db, args.port, args.workers)
        try:
            phases = _phases(args, f"http://127.0.0.1:{args.port}", token, points, Path(folder))
        finally:
            server.terminate()
            server.wait(timeout=30)
    text = _report(args, phases, n_buildings=n_buildings, load=load_before)
    print(text)
    write_section("api", text)


if __name__ == "__main__":
    main()
