"""Write one benchmark's section into ``docs/benchmarks.md``; time a command as a user runs it."""

from __future__ import annotations

import resource
import subprocess
import time
from pathlib import Path

BENCHMARKS_MD = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def write_section(name: str, text: str, *, path: Path = BENCHMARKS_MD) -> None:
    """Replace the text between ``<!-- name:start -->`` and ``<!-- name:end -->`` with ``text``."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    document = path.read_text(encoding="utf-8")
    if start not in document:
        document += f"\n## {name.title()}\n{start}\n{end}\n"
    head, rest = document.split(start, 1)
    _, tail = rest.split(end, 1)
    path.write_text(f"{head}{start}\n{text.strip()}\n{end}{tail}", encoding="utf-8")


def timed_process(argv: list[str], **run: object) -> tuple[float, float]:
    """Wall and CPU seconds (user + system, the child's) of ``argv`` in a fresh process, as a
    user meets the command; raises if it fails. ``run`` goes to :func:`subprocess.run`. On a
    shared machine the CPU time is the steadier figure."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, **run)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
