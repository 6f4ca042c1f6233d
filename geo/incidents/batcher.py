"""Group commit for posted cases: one writer per process stores the waiting cases together.

Why: a case stored alone costs a whole write transaction (the write lock, the layout checks, a
commit), and the store lets one writer in at a time, so posts that arrive together queue behind
each other's commits: about 100 cases/s beside the locate load, with a p99 of half a second.
Here a post hands its prepared case (:func:`geo.incidents.intake.prepare_posted_case`) to
:class:`CaseWriter` and awaits its answer; the writer takes every case waiting (up to
``max_batch``) and stores them in one transaction (:func:`geo.incidents.intake.
store_prepared_cases`), answering each post when that transaction commits. The invariants stay in
the database: the UNIQUE index on ``incident_id`` and ``ON CONFLICT DO NOTHING`` store a case once
however many posts, batches or processes carry it, and a case that fails answers its own error.

The transaction runs on the event loop (a few ms for a batch): posts that arrive meanwhile wait
in their sockets, are read and checked as soon as it ends, and make the next batch. In the
writer's own thread instead (``in_thread=True``), the loop would go on reading posts during a
write, but each SQLite call of the thread waits for the GIL while the loop is busy: on this
2-core machine, under other load, 52-307 cases/s against 115-175 on the loop (10 posting
clients, 2 workers). When another process holds the write lock, the writer tries again after
short sleeps, then waits in its thread rather than in the store's busy handler.

Beside the locate load every turn of the event loop is long (each of the 20 or so locates
waiting is answered in it: 8-16 ms), and a post waits a whole turn for each time it gives way.
So the first case of a batch starts a writer task, whose first step runs in the next turn and
writes at once: the post's answer takes two turns (the write, then the post's own reply), where
a standing writer task that woke from its queue, gave way once to let cases join and once more
before its first try took four.

A commit costs more than its transaction (0.5 ms for a few cases): every uvicorn worker looks
at the project again after any commit (api.state) and reads again the parts of its fingerprint
its next request needs (about 0.5 ms for a locate's; it was 10 ms of CPU per commit across two
workers when each re-read all of it). So the writer of a process starts a batch at most every
``spacing`` seconds (10 ms): a post that comes after a quiet spell is written at once, while
under load the cases of the next 10 ms join one transaction. Measured, same machine and load, alternated: 2.7-3.2 ms of server CPU per case
against 4.1 without, 235 cases/s with a p99 of 59 ms beside the locates against 203 and 162 ms.
"""

from __future__ import annotations

import asyncio
import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from geo.incidents.intake import (
    Outcome,
    PreparedCase,
    WriterBusy,
    store_prepared_cases,
)
from geo.storage.store import Store

#: the writer's short sleeps (s) while another process writes, before it waits in the store
_RETRIES = (0.0, 0.001, 0.002, 0.004, 0.008, 0.016)
_Waiting = tuple[PreparedCase, asyncio.Future]


@dataclass
class CaseWriter:
    """The writer of one store in one process (see the module).

    Parameters
    ----------
    store
        Where the cases go.
    max_batch
        The most cases one transaction stores.
    linger
        Seconds the writer waits after the first case of a batch for others to join it (0: the
        posts read in the same turn of the event loop join; under load, the cases that arrive
        while a batch is written make the next one).
    in_thread
        Write in the writer's thread instead of on the event loop (see the module).
    spacing
        Seconds at least between the starts of two batches (see the module; 0: none).
    """

    store: Store
    max_batch: int = 200
    linger: float = 0.0
    in_thread: bool = False
    spacing: float = 0.01
    _last: float = field(default=-math.inf, init=False, repr=False)
    _waiting: list[_Waiting] = field(default_factory=list, init=False, repr=False)
    _task: asyncio.Task | None = field(default=None, init=False, repr=False)
    _thread: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="gridmap-cases"),
        init=False,
        repr=False,
    )

    async def store_case(self, case: PreparedCase) -> Outcome:
        """Store ``case`` with the others waiting; its answer when their transaction commits
        (the summary, or None where the lean path does not apply). Its own error is raised."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future = loop.create_future()
        self._waiting_on(loop).append((case, answer))
        outcome = await answer
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def _waiting_on(self, loop: asyncio.AbstractEventLoop) -> list[_Waiting]:
        """The cases waiting for the writer task on ``loop``, that task started where none
        runs (its first step comes in the next turn of the loop). Another loop (a test
        client's, or a server restarted in the same process) gets a list of its own: a task
        still running on the old loop keeps the old one."""
        task = self._task
        if task is None or task.done() or task.get_loop() is not loop:
            if task is not None and not task.done():
                self._waiting = []
            self._task = loop.create_task(self._drain(self._waiting), name="gridmap case writer")
        return self._waiting

    async def _drain(self, waiting: list[_Waiting]) -> None:
        """Store the ``waiting`` cases, a batch at a time, until none waits (the task then
        ends: the next case starts another)."""
        if self.linger > 0:
            await asyncio.sleep(self.linger)
        while waiting:
            await self._spaced()
            batch = waiting[: self.max_batch]
            del waiting[: self.max_batch]
            cases = [case for case, _ in batch]
            try:
                if self.in_thread:
                    loop = asyncio.get_running_loop()
                    outcomes = await loop.run_in_executor(self._thread, _store, self.store, cases)
                else:
                    outcomes = await self._store_on_loop(cases)
            except Exception as error:  # every post of the batch hears of it
                outcomes = [error] * len(batch)
            _answer(batch, outcomes)

    async def _spaced(self) -> None:
        """Wait until ``spacing`` seconds have passed since the previous batch started."""
        wait = self._last + self.spacing - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        self._last = time.monotonic()

    async def _store_on_loop(self, cases: list[PreparedCase]) -> list[Outcome]:
        """Store ``cases`` on the event loop at once, trying again after short sleeps while
        another process writes; then waiting in the writer's thread."""
        for delay in _RETRIES:
            if delay:
                await asyncio.sleep(delay)
            try:
                outcomes = store_prepared_cases(self.store, cases, wait=False)
            except WriterBusy:
                continue
            if not any(isinstance(outcome, WriterBusy) for outcome in outcomes):
                return outcomes
            break
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, _store, self.store, cases)


def _store(store: Store, cases: list[PreparedCase]) -> list[Outcome]:
    """Store ``cases`` in one transaction, in the writer's thread: without waiting in the
    store's busy handler (SQLite's sleeps in steps of up to 100 ms) while another process
    writes, for a few short tries; then waiting."""
    for delay in _RETRIES:
        time.sleep(delay)
        try:
            outcomes = store_prepared_cases(store, cases, wait=False)
        except WriterBusy:
            continue
        busy = [at for at, outcome in enumerate(outcomes) if isinstance(outcome, WriterBusy)]
        if busy:  # cases of a failed group that met another writer when tried alone
            again = store_prepared_cases(store, [cases[at] for at in busy])
            for at, outcome in zip(busy, again, strict=True):
                outcomes[at] = outcome
        return outcomes
    return store_prepared_cases(store, cases)


def _take_waiting(queue: asyncio.Queue[_Waiting], batch: list[_Waiting], most: int) -> None:
    while len(batch) < most and not queue.empty():
        batch.append(queue.get_nowait())


def _answer(batch: list[_Waiting], outcomes: list[Outcome]) -> None:
    for (_, answer), outcome in zip(batch, outcomes, strict=True):
        if not answer.done():  # else its post went away (the case is stored all the same)
            answer.set_result(outcome)  # an error is raised by store_case, in the post's task
