"""Load run of the HTTP API on loopback: GET /locate, then a mix with incident POSTs.

Run: ``.venv/bin/python bench/api.py`` (30 s per phase) or ``--quick`` (5 s), ``--seconds N``;
``--db`` to use an existing project (default: Suzhou's 8,242 footprints imported and
partitioned into a temporary project); ``--postgis`` runs the same phases again on a copy of
the project in a throw-away PostGIS cluster (tests/pgcluster.py), side by side. uvicorn runs in
its own processes (``--workers``, default 2 for 2 cores). The load comes from ``wrk`` (Debian
package ``wrk``; POSTs through a Lua script, one case per request) when installed, else from
httpx async clients (which cost more CPU than the server and so measure the client).
Everything runs on the same machine. Writes the ``api`` section of docs/benchmarks.md (another
``--workers N``: the ``api-N-workers`` section).

Targets: GET /locate at 50 clients p99 < 20 ms, >= 1,500 req/s, zero errors (issue 8); POST
/incidents 200 cases/s with p99 < 100 ms beside the locate load (issue 16); 500 cases/s across
4 workers on PostGIS with p99 < 100 ms (issue 18).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
from sqlalchemy import text as sa_text

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
    process = subprocess.Popen(command, env=env, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    lines, echo = _echo_stderr(process)
    for _ in range(600):
        if process.poll() is not None:  # a worker whose start failed stops the parent with 0
            echo.join(timeout=5)
            raise RuntimeError(
                f"uvicorn exited at start-up (code {process.returncode}): {_last_error(lines)}"
            )
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:  # its parent was busy restarting workers that fail
        process.kill()
    raise RuntimeError(f"uvicorn did not start: {_last_error(lines)}")


def _echo_stderr(process: subprocess.Popen) -> tuple[collections.deque, threading.Thread]:
    """Pass the server's stderr on as before, keeping its last lines: when it stops during
    start-up the report says why, not only uvicorn's exit code."""
    lines: collections.deque = collections.deque(maxlen=60)

    def echo() -> None:
        for line in process.stderr:
            sys.stderr.write(line)
            lines.append(line.rstrip())

    thread = threading.Thread(target=echo, daemon=True)
    thread.start()
    return lines, thread


def _last_error(lines: collections.deque) -> str:
    """The last exception line of a traceback on stderr (else its last line)."""
    errors = [line for line in lines if re.match(r"^[\w.]+(Error|Exception)\b", line)]
    found = errors[-1] if errors else next((x for x in reversed(lines) if x.strip()), "")
    return found or "nothing on stderr"


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
    run = time.time_ns()  # ids of their own: the PostGIS copy holds the GeoPackage run's cases
    for k in itertools.count():
        if time.perf_counter() >= stop:
            return
        lon, lat = points[int(rng.integers(len(points)))]
        case = {
            "source": "bench",
            "id": f"b{run}-{number}-{k}",
            "category": "暴露垃圾",
            "reported_at": "2026-01-06T09:00:00+08:00",
            "lon": lon,
            "lat": lat,
        }
        await timed_request(tally, client.post("/incidents", json=case))


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


WRK_POST_SCRIPT = """
wrk.headers["Content-Type"] = "application/json"  -- beside -H's token (a table would drop it)
local points = {%s}
local i = 0
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
request = function()
  i = i + 1
  local p = points[(i %% #points) + 1]
  local body = string.format(
    '{"source":"bench","id":"%s-%%d-%%d","category":"暴露垃圾",' ..
    '"reported_at":"2026-01-06T09:00:00+08:00","lon":%%s,"lat":%%s}', tid, i, p[1], p[2])
  return wrk.format("POST", "/incidents", nil, body)
end
"""


def wrk_post(url, token, points, *, seconds, connections, folder: Path, tag: str) -> Tally:
    """POST /incidents with wrk, one case per request, each with an id of its own (``tag``
    names the phase): the server's figures, where httpx posters measured their own CPU."""
    script = folder / f"post-{tag}.lua"
    listed = ",".join(f"{{{lon},{lat}}}" for lon, lat in points)
    script.write_text(WRK_POST_SCRIPT % (listed, tag), encoding="utf-8")
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:.0f}s", "--latency"]
    command += ["-s", str(script), "-H", f"Authorization: Bearer {token}", url]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    (folder / f"wrk-post-{tag}.txt").write_text(output, encoding="utf-8")
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


def _rate_p99(tally: Tally, seconds: float) -> tuple[float, float]:
    n = tally.count if tally.count is not None else len(tally.latencies)
    if tally.summary is not None:
        return n / seconds, tally.summary[1]
    p99 = float(np.percentile(tally.latencies, 99)) if tally.latencies else float("nan")
    return n / seconds, p99


def intake_verdict(posted: Tally, seconds: float, *, rate: float = 200, what: str) -> str:
    """Whether an intake row met its target (``rate`` cases/s, p99 < 100 ms), and by how much."""
    got, p99 = _rate_p99(posted, seconds)
    if got >= rate and p99 < 100 and not posted.errors:
        return f"{what}: met ({got:,.0f} cases/s, p99 {p99:,.0f} ms)."
    pace = (
        f"{got:,.0f} cases/s, at least {rate:,.0f}: met"
        if got >= rate
        else f"{got:,.0f} cases/s, {rate / max(got, 1e-9):.1f}x short of {rate:,.0f}"
    )
    bound = "under 100 ms: met" if p99 < 100 else f"{p99 / 100:.1f}x the 100 ms bound"
    return (
        f"{what}: not met ({pace}; p99 {p99:,.0f} ms, {bound}"
        f"{'; errors' if posted.errors else ''})."
    )


TARGETS_TEXT = (
    "Targets: GET /locate p99 < 20 ms and >= 1,500 req/s at 50 clients, zero errors. "
    "The load generators share the two cores with the server (and with other work: see the "
    "load average), so the figures are a floor for a server on its own machine; the server's "
    "CPU per request does not depend on that. "
    "Each POST /incidents is one case, read and checked on the event loop (the lean path, "
    "geo.incidents.intake: it stores exactly the row a feed of that case stores, on both "
    "backends, tests/test_incident_intake.py) and handed to the process's writer "
    "(geo.incidents.batcher): group commit, every case waiting stored in one transaction, each "
    "post answered when it commits; ids stay idempotent in the database (UNIQUE incident_id, "
    "INSERT ... ON CONFLICT DO NOTHING). Per batch, not per case: the catalogue setting and "
    "the district's box (read inside the batch's transaction, kept for the next cases), the "
    "grids' community and worker (one query by the grids layer's index on grid_code). The "
    "writer starts a batch in the turn of the event loop after the first case (two turns per "
    "post instead of four) and at most every 10 ms per process. Posts come from "
    "wrk with a Lua script (one case per request, ids unique per run) where wrk exists, else "
    "from httpx async clients; 'stored' counts the cases in the store after the run against "
    "the posts answered 200 (the posts still in flight when wrk stops, one per connection and "
    "phase, are stored but not counted). Before (the same command on the same project, the "
    "code before and after alternated in one hour, four runs, load average 1.5-7): posts in "
    "the mix 75-102 cases/s, p99 340-522 ms; alone 290-439 cases/s, 1.6-3.5 ms of server CPU "
    "per case. Every commit (a batch of cases included) makes every uvicorn worker look at the "
    "project again, and it reads only the parts of the fingerprint its next request needs "
    "(api.state.ProjectState.fingerprint): a locate the plan's (the published plan, the layers' "
    "stamps, the grids' workers as fid:worker pairs from the index on grids.worker_id, about "
    "0.5 ms), a token check the tokens' (its cache is dropped only when a token is made or "
    "revoked), never the cases'. Before that (2026-12-05, same command, quiet machine) every "
    "worker re-read the whole fingerprint after every commit (the grids' workers from every row "
    "of the layer, count(*) of the case events, a scan on PostGIS) and dropped its token cache: "
    "31 % of the server's CPU in the mix (py-spy); GeoPackage posts alone 1.93 ms of server CPU "
    "per case (877/s), in the mix 158/s with p99 135 ms; PostGIS posts alone 5.40 ms per case "
    "(234/s, p99 149 ms). "
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
    parser.add_argument(
        "--postgis",
        action="store_true",
        help="run the same phases again on PostGIS (a throw-away cluster, tests/pgcluster.py, "
        "holding a copy of the project), side by side with the GeoPackage",
    )
    parser.add_argument("--no-geopackage", action="store_true", help="with --postgis: only it")
    return parser.parse_args()


def _sample_points(store: Store) -> tuple[list[tuple[float, float]], int]:
    """Up to 5,000 points inside buildings (WGS84) and the number of buildings."""
    buildings = store.read_layer("buildings", columns=["building_id"])
    sample = buildings.sample(min(len(buildings), 5_000), random_state=0)
    inside = sample.to_crs(4326).representative_point()
    points = list(zip(inside.x.round(7).tolist(), inside.y.round(7).tolist(), strict=True))
    return points, len(buildings)


def _use_wrk(args: argparse.Namespace) -> bool:
    return shutil.which("wrk") is not None and not args.httpx


def server_cpu(pid: int) -> float:
    """CPU seconds (user + system) so far of process ``pid`` and every process under it (the
    uvicorn workers), from /proc: the server's own work, whoever else shares the cores."""
    tick, total, todo = os.sysconf("SC_CLK_TCK"), 0.0, [pid]
    while todo:
        process = todo.pop()
        try:
            fields = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for thread in os.listdir(f"/proc/{process}/task"):
                children = Path(f"/proc/{process}/task/{thread}/children").read_text()
                todo += [int(child) for child in children.split()]
        except (FileNotFoundError, ProcessLookupError):  # it ended meanwhile
            continue
    return total


def _phases(
    args: argparse.Namespace, url: str, token: str, points: list, folder: Path, *, server: int
) -> dict:
    """Locates alone, locates with posts, posts alone: wrk where it exists. ``cpu``: the
    server's CPU seconds in each of the three phases (process ``server`` and its workers)."""
    seconds = args.seconds or (5.0 if args.quick else 30.0)
    posters = max(1, min(args.posters, args.clients - 1))
    _, warm = asyncio.run(run_phase(url, token, points[:200], seconds=2, locators=5, posters=1))
    cpu = [server_cpu(server)]
    if not _use_wrk(args):
        phase = {"url": url, "token": token, "points": points, "seconds": seconds}
        alone, _ = asyncio.run(run_phase(**phase, locators=args.clients, posters=0))
        cpu.append(server_cpu(server))
        mixed, posted = asyncio.run(
            run_phase(**phase, locators=args.clients - posters, posters=posters)
        )
        cpu.append(server_cpu(server))
        _, alone_posted = asyncio.run(run_phase(**phase, locators=0, posters=posters))
    else:
        run = {"url": url, "token": token, "points": points, "seconds": seconds, "folder": folder}
        tag = f"{time.time_ns()}"
        alone = wrk_locate(**run, connections=args.clients)
        cpu.append(server_cpu(server))
        with ThreadPoolExecutor(2) as pool:
            locating = pool.submit(wrk_locate, **run, connections=args.clients - posters)
            posting = pool.submit(wrk_post, **run, connections=posters, tag=f"m{tag}")
            mixed, posted = locating.result(), posting.result()
        cpu.append(server_cpu(server))
        alone_posted = wrk_post(**run, connections=posters, tag=f"a{tag}")
    cpu.append(server_cpu(server))
    spent = dict(zip(("alone", "mixed", "alone_posted"), np.diff(cpu).tolist(), strict=True))
    return {"alone": alone, "mixed": mixed, "posted": posted, "alone_posted": alone_posted,
            "warm": warm, "cpu": spent}  # fmt: skip


def _cpu_line(phases: dict) -> str:
    """The server's CPU seconds per phase, and per request where one kind ran alone."""
    cpu = phases["cpu"]

    def count(tally: Tally) -> int:
        return tally.count if tally.count is not None else len(tally.latencies)

    located, posted = max(count(phases["alone"]), 1), max(count(phases["alone_posted"]), 1)
    return (
        f"Server CPU (uvicorn, all workers; from /proc): locates alone {cpu['alone']:.1f} s "
        f"({cpu['alone'] / located * 1000:.2f} ms per locate), the mix {cpu['mixed']:.1f} s, "
        f"posts alone {cpu['alone_posted']:.1f} s ({cpu['alone_posted'] / posted * 1000:.2f} ms "
        "per case)."
    )


def _table(args: argparse.Namespace, phases: dict, *, seconds: float, stored: str) -> list[str]:
    posters = max(1, min(args.posters, args.clients - 1))
    return [
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
        stored,
        "",
        _cpu_line(phases),
    ]


def _report(args: argparse.Namespace, runs: dict, *, n_buildings: int, load: tuple) -> str:
    seconds = args.seconds or (5.0 if args.quick else 30.0)
    posters = max(1, min(args.posters, args.clients - 1))
    command = "python bench/api.py" + (" --quick" if args.quick else "")
    command += f" --seconds {args.seconds:g}" if args.seconds else ""
    command += f" --workers {args.workers}" if args.workers != 2 else ""
    command += f" --posters {args.posters}" if args.posters != 10 else ""
    command += " --postgis" if args.postgis else ""
    command += " --no-geopackage" if args.no_geopackage else ""
    command += " --db PROJECT" if args.db else ""
    poster = "wrk -t1 (Lua)" if _use_wrk(args) else "httpx async"
    lines = [
        f"`{command}` — {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"uvicorn {args.workers} workers (uvloop, httptools), {args.clients} clients "
        f"({'wrk -t2' if _use_wrk(args) else 'httpx async'} for GET /locate, {poster} for the "
        f"{posters} posting) on the same machine, {seconds:.0f} s per phase, project of "
        f"{n_buildings:,} buildings ({'Suzhou Gusu' if not args.db else args.db.name}); load "
        f"average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} before the run (other work on the "
        "machine).",
    ]
    verdicts = []
    for backend, (phases, stored) in runs.items():
        if phases is None:
            lines += ["", f"**{backend}**", "", stored]
            verdicts.append(f"{backend}: not measured ({stored.split(':')[0].lower()}).")
            continue
        lines += ["", f"**{backend}**", "", *_table(args, phases, seconds=seconds, stored=stored)]
        verdicts.append(
            intake_verdict(phases["posted"], seconds, what=f"#16 on {backend}, beside locates")
        )
        if backend == "PostGIS":
            verdicts.append(
                intake_verdict(
                    phases["alone_posted"],
                    seconds,
                    rate=500,
                    what=f"#18 on PostGIS, {args.workers} workers, posts alone",
                )
            )
    lines += ["", TARGETS_TEXT + " ".join(verdicts)]
    return "\n".join(lines)


def _bench_cases(store: Store) -> int:
    """How many cases of the source 'bench' the store holds."""
    with store.reading() as conn:
        return conn.execute(
            sa_text("SELECT count(*) FROM incidents WHERE source = 'bench'")
        ).scalar()


def _stored(store: Store, phases: dict, *, before: int) -> str:
    """How many bench cases the store gained, against the posts answered 200 (``before``: the
    bench cases it held before the phases, e.g. the GeoPackage's, copied into PostGIS)."""
    answered = sum(
        (t.count if t.count is not None else len(t.latencies)) - sum(t.errors.values())
        for t in (phases["posted"], phases["alone_posted"], phases["warm"])
    )
    held = _bench_cases(store) - before
    earlier = f"; {before:,} held before the run not counted" if before else ""
    return (
        f"Stored: {held:,} bench cases for {answered:,} posts answered 200 (warm-up "
        f"included{earlier})."
    )


def _serve_and_measure(args, db: str, token: str, points: list, folder: Path) -> dict:
    server = start_server(db, args.port, args.workers)
    try:
        return _phases(
            args, f"http://127.0.0.1:{args.port}", token, points, folder, server=server.pid
        )
    finally:
        server.terminate()
        server.wait(timeout=30)


def _on_postgis(args, db: Path, points: list, folder: Path) -> tuple[dict, str]:
    """The phases on a PostGIS copy of the project, in a throw-away cluster."""
    sys.path.insert(0, str(ROOT / "tests"))
    import pgcluster
    from pg_copy import copy_project

    with pgcluster.throwaway_cluster() as url:
        source = open_store(db)
        store = copy_project(source, url)
        source.engine.dispose()
        token = create_token(store, f"bench-{os.getpid()}-{time.time_ns()}", "staff")
        before = _bench_cases(store) if store.has_layer("incidents") else 0
        try:
            phases = _serve_and_measure(args, url, token, points, folder)
        except RuntimeError as error:  # said in the report, not hidden, with what can be measured
            said = f"The server did not start on PostGIS: {str(error)[:300]}. " + _writer_alone(
                store, source_db=db, points=points
            )
            store.engine.dispose()
            return None, said
        stored = _stored(store, phases, before=before)
        store.engine.dispose()
    return phases, stored


def _writer_alone(store: Store, *, source_db: Path, points: list) -> str:
    """The case writer's own rate on ``store``, in this process (no HTTP): cases read and
    checked, then stored one per transaction and 50 per transaction (group commit)."""
    from api.routers.incidents import POSTED
    from geo.incidents import intake
    from geo.incidents.cases import CaseImport
    from geo.locate import kept

    source = open_store(source_db)
    index, how = kept.grid_index(source), CaseImport(mapping=POSTED, source="bench-writer")
    source.engine.dispose()
    began = time.perf_counter()
    cases = [
        intake.prepare_posted_case(
            store,
            {"id": f"w{i}", "lon": lon, "lat": lat, "category": "暴露垃圾",
             "reported_at": "2026-01-06T09:00:00+08:00", "description": None, "address": None},
            how,
            time=intake.read_time("2026-01-06T09:00:00+08:00"),
            index=index,
        )
        for i, (lon, lat) in enumerate(points[:1_100])
    ]  # fmt: skip
    prepared = (time.perf_counter() - began) / len(cases) * 1000
    if intake.store_prepared(store, cases[0]) is None:
        return "The project has no incidents layer yet, so the lean path does not apply."
    began = time.perf_counter()
    for case in cases[1:100]:
        intake.store_prepared(store, case)
    alone = 99 / (time.perf_counter() - began)
    began = time.perf_counter()
    for start in range(100, len(cases), 50):
        intake.store_prepared_cases(store, cases[start : start + 50])
    grouped = (len(cases) - 100) / (time.perf_counter() - began)
    return (
        f"In this process instead (no HTTP), on the same PostGIS copy: a case read and checked "
        f"in {prepared:.1f} ms (its look-ups are round trips to the server), then stored at "
        f"{alone:,.0f} cases/s one per transaction and {grouped:,.0f} cases/s 50 per "
        "transaction (the writer's group commit)."
    )


def main() -> None:
    args = _arguments()
    load_before = os.getloadavg()
    runs: dict = {}
    with tempfile.TemporaryDirectory(prefix="gridmap-bench-api-") as folder:
        db = args.db or build_project(Path(folder))
        store = open_store(db)
        points, n_buildings = _sample_points(store)
        if not args.no_geopackage:
            token = create_token(store, f"bench-{os.getpid()}-{time.time_ns()}", "staff")
            before = _bench_cases(store) if store.has_layer("incidents") else 0
            phases = _serve_and_measure(args, str(db), token, points, Path(folder))
            runs["GeoPackage"] = (phases, _stored(store, phases, before=before))
        store.engine.dispose()
        if args.postgis:
            runs["PostGIS"] = _on_postgis(args, db, points, Path(folder))
    text = _report(args, runs, n_buildings=n_buildings, load=load_before)
    print(text)
    # The default (a worker per core) and other worker counts keep sections of their own.
    write_section("api" if args.workers == 2 else f"api-{args.workers}-workers", text)


if __name__ == "__main__":
    main()
