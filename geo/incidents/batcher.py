"""Group commit for posted cases: one writer task per process stores the waiting cases together.

Why: a case stored alone costs a whole write transaction (the write lock, the layout checks, a
commit), and the store lets one writer in at a time, so posts that arrive together queue behind
each other's commits: about 100 cases/s beside the locate load, with a p99 of half a second.
Here a post hands its prepared case (:func:`geo.incidents.intake.prepare_posted_case`) to
:class:`CaseWriter` and awaits its answer; the writer task takes every case waiting (up to
``max_batch``) and stores them in one transaction (:func:`geo.incidents.intake.
store_prepared_cases`), answering each post when that transaction commits. The invariants stay in
the database: the UNIQUE index on ``incident_id`` and ``ON CONFLICT DO NOTHING`` store a case once
however many posts, batches or processes carry it, and a case that fails answers its own error.

The writer runs on the event loop (a transaction of many cases takes a few ms; in a worker thread
each SQLite call would wait for the GIL while the loop serves locates). When another process
holds the write lock it tries again after short sleeps, gathering the cases that arrive
meanwhile, and after those waits in a worker thread instead.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from geo.incidents.intake import (
    Outcome,
    PreparedCase,
    WriterBusy,
    store_prepared_cases,
)
from geo.storage.store import Store

#: how long the writer waits, in turns, for another process's writer before a thread waits
_RETRIES = (0.0, 0.001, 0.002, 0.004, 0.008, 0.016)
_Waiting = tuple[PreparedCase, asyncio.Future]


@dataclass
class CaseWriter:
    """The writer task of one store in one process (see the module).

    Parameters
    ----------
    store
        Where the cases go.
    max_batch
        The most cases one transaction stores.
    linger
        Seconds the writer waits after the first case of a batch for others to join it (0: one
        turn of the event loop, so the posts already received join; under load, the cases that
        arrive while a batch is written make the next one).
    """

    store: Store
    max_batch: int = 200
    linger: float = 0.0
    _queue: asyncio.Queue[_Waiting] | None = field(default=None, init=False, repr=False)
    _task: asyncio.Task | None = field(default=None, init=False, repr=False)

    async def store_case(self, case: PreparedCase) -> Outcome:
        """Store ``case`` with the others waiting; its answer when their transaction commits
        (the summary, or None where the lean path does not apply). Its own error is raised."""
        loop = asyncio.get_running_loop()
        queue = self._running_queue(loop)
        answer: asyncio.Future = loop.create_future()
        queue.put_nowait((case, answer))
        outcome = await answer
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def _running_queue(self, loop: asyncio.AbstractEventLoop) -> asyncio.Queue[_Waiting]:
        """The queue of the writer task on ``loop``, started where there is none (a new loop:
        a test client's, or a server restarted in the same process)."""
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self._queue = asyncio.Queue()
            self._task = loop.create_task(self._run(self._queue), name="gridmap case writer")
        return self._queue

    async def _run(self, queue: asyncio.Queue[_Waiting]) -> None:
        while True:
            batch = [await queue.get()]
            await asyncio.sleep(self.linger)
            _take_waiting(queue, batch, self.max_batch)
            try:
                await self._store(queue, batch)
            except Exception as error:  # every post of the batch hears of it; the task lives on
                _answer(batch, [error] * len(batch))

    async def _store(self, queue: asyncio.Queue[_Waiting], batch: list[_Waiting]) -> None:
        """Store ``batch`` (and the cases that join it while the write lock is held elsewhere)."""
        while batch:
            outcomes = None
            for delay in _RETRIES:
                await asyncio.sleep(delay)
                _take_waiting(queue, batch, self.max_batch)
                try:
                    outcomes = store_prepared_cases(self.store, [c for c, _ in batch], wait=False)
                    break
                except WriterBusy:
                    continue
            if outcomes is None:
                cases = [c for c, _ in batch]
                outcomes = await asyncio.to_thread(store_prepared_cases, self.store, cases)
            # a case of a failed group that met another writer when tried alone: again
            again = [w for w, o in zip(batch, outcomes, strict=True) if isinstance(o, WriterBusy)]
            _answer(batch, outcomes)
            batch = again


def _take_waiting(queue: asyncio.Queue[_Waiting], batch: list[_Waiting], most: int) -> None:
    while len(batch) < most and not queue.empty():
        batch.append(queue.get_nowait())


def _answer(batch: list[_Waiting], outcomes: list[Outcome]) -> None:
    for (_, answer), outcome in zip(batch, outcomes, strict=True):
        if answer.done() or isinstance(outcome, WriterBusy):
            continue  # its post went away (the case is stored all the same), or it is tried again
        answer.set_result(outcome)  # an error is raised by store_case, in the post's own task
