"""Micro-batching: concurrent requests of one joinable form computed as one pass.

A pipeline offers a `Joinable` for the forms it can compute together with numbers bitwise equal
to each alone (the random model: `app/pipelines/random/batching.py`, on `attention.joint`); the
key says which requests may share a pass. With `ATTENTION_BATCH_WAIT_MS` = 0 nothing here runs.

How a group forms, on the event loop, without a timer:

- a request that is its worker's only one in progress (no other head read and not yet answered,
  app.http.edge) runs at once: nobody can join it;
- the first request of a key opens a group and lets the loop turn once: requests that arrived
  with it, parsed in that turn, join it;
- while each turn brings a newcomer and less than `batch_wait_ms` has passed since the opening,
  the group waits one turn more; the first quiet turn closes it. A request with nobody beside it
  (concurrency 1) waits one turn of the loop and is then computed alone, exactly as without
  batching (`Admission.run`, inline or in a thread);
- a group is one computation, so it closes at once when full: its members' estimates together
  at `max_request_bytes`, or as many members as the admission gate holds.

At the close each member passes the gate and reserves its own estimate in the memory budget, one
by one as if it came alone (429 or 503 to that member only); the admitted ones are computed as
one computation of `Admission` (one slot), on the event loop when each of them would have been.
A member that leaves (its deadline, 504, or its client gone) before the pass starts is dropped
and its bytes released at once; once the pass runs, its answer is skipped and its bytes come
back when the pass ends, as for any abandoned computation. The pass is abandoned only when every
member has left. An error of the pass reaches every member; an error of one member's answer
(its cutting or encoding), that member alone, each as it would have been without batching.
"""

from __future__ import annotations

import asyncio
import enum
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

from app.http.encoding import Body
from app.http.errors import DeadlineExceeded
from app.serving.runtime import Admission, Timing, is_allocation_failure, out_of_memory

Outcome = Body | BaseException | None  # None: the member had left, nothing was made for it


class Joinable(Protocol):
    """A prepared request that may be computed in one pass with others of its `key`."""

    @property
    def key(self) -> Hashable: ...

    def run_together(self, members: Sequence[Any], wanted: Callable[[int], bool]) -> list[Outcome]:
        """Every member's answer, in order (members: joinables of this key, this one among
        them); `wanted(i)` says whether member i still waits for it. Runs in the computation's
        thread (or inline), under its stop condition."""
        ...


class State(enum.Enum):
    GATHERING = "gathering"  # in an open group; holds nothing yet
    QUEUED = "queued"  # admitted: its bytes reserved, the pass not started
    RUNNING = "running"  # in the pass
    LEFT = "left"  # gone (deadline, client), refused, or answered alone


class Alone:
    """A member's outcome when its group had nobody else: it runs its own work, unchanged."""


ALONE = Alone()


@dataclass(eq=False)
class Member:
    join: Joinable
    timing: Timing
    held: int  # bytes it holds in the memory budget while admitted
    inline: bool
    arrived: float
    future: asyncio.Future[Body | Alone]
    state: State = State.GATHERING

    @property
    def present(self) -> bool:
        return self.state is State.GATHERING and not self.future.done()


@dataclass(eq=False)
class Group:
    key: Hashable
    opened: float
    members: list[Member] = field(default_factory=list)
    held: int = 0
    seen: int = 1  # members at the last turn of the loop
    closed: bool = False
    started: bool = False  # the pass has taken its members
    runner: asyncio.Task[None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)  # states, with the pass's thread


class Batcher:
    """Groups joinable requests in front of `admission` (one per worker, like it)."""

    def __init__(
        self,
        admission: Admission,
        wait_s: float,
        max_bytes: int,
        alone: Callable[[], bool] = lambda: False,
    ) -> None:
        """`alone()`: whether the calling request is the only one its worker has in progress
        (app.http.edge.alone_in_worker); such a request runs at once, without the loop's turn
        a group would wait. False when nobody can tell: the request then waits that turn."""
        self.admission, self.wait_s, self.max_bytes = admission, wait_s, max_bytes
        self.alone = alone
        self._open: dict[Hashable, Group] = {}
        self._runners: set[asyncio.Task[None]] = set()
        self.joined = 0  # requests answered by a pass of two or more (tests, docs)

    @property
    def max_members(self) -> int:
        return self.admission.max_concurrency + self.admission.max_queue

    async def run(
        self,
        work: Callable[[], Body],
        timing: Timing,
        memory_bytes: int,
        inline: bool = False,
        join: Joinable | None = None,
        arrived: float | None = None,
    ) -> Body:
        """The request's answer: from a pass with others of its key, or from `work` alone.
        Its deadline is `arrived` (perf_counter; now by default) plus the admission's timeout."""
        if join is None or self.wait_s <= 0 or self.alone():
            return await self.admission.run(work, timing, memory_bytes, inline)
        loop = asyncio.get_running_loop()
        arrived = time.perf_counter() if arrived is None else arrived
        member = Member(join, timing, memory_bytes, inline, arrived, loop.create_future())
        group = self._place(member, loop)
        outcome = await self._outcome(member, group)
        if isinstance(outcome, Alone):
            return await self.admission.run(work, timing, memory_bytes, inline)
        return outcome

    # -- gathering ----------------------------------------------------------------------------

    def _place(self, member: Member, loop: asyncio.AbstractEventLoop) -> Group:
        key = member.join.key
        group = self._open.get(key)
        if group is not None and not self._fits(group, member):
            self._close(group, loop)
            group = None
        if group is None:
            group = Group(key, time.perf_counter())
            self._open[key] = group
            loop.call_soon(self._gather, group, loop)
        group.members.append(member)
        group.held += member.held
        return group

    def _fits(self, group: Group, member: Member) -> bool:
        full = len(group.members) >= self.max_members
        return not full and group.held + member.held <= self.max_bytes

    def _gather(self, group: Group, loop: asyncio.AbstractEventLoop) -> None:
        """One turn of the loop after the opening, and one more while newcomers keep coming."""
        if group.closed:
            return
        arrived = len(group.members)
        if arrived > group.seen and time.perf_counter() - group.opened < self.wait_s:
            group.seen = arrived
            loop.call_soon(self._gather, group, loop)
            return
        self._close(group, loop)

    def _close(self, group: Group, loop: asyncio.AbstractEventLoop) -> None:
        group.closed = True
        if self._open.get(group.key) is group:
            del self._open[group.key]
        present = [member for member in group.members if member.present]
        if len(present) == 1:
            self._alone(present[0])
            return
        admitted = [member for member in present if self._admit(member)]
        if len(admitted) == 1:  # the others were refused: it runs as it would have alone
            self._unadmit(admitted[0])
            self._alone(admitted[0])
            return
        if not admitted:
            return
        group.members = admitted
        group.runner = loop.create_task(self._compute(group))
        self._runners.add(group.runner)
        group.runner.add_done_callback(self._runners.discard)

    def _alone(self, member: Member) -> None:
        member.state = State.LEFT
        member.future.set_result(ALONE)

    def _admit(self, member: Member) -> bool:
        """The gate and the memory budget, for this member as if it came alone."""
        admission = self.admission
        try:
            admission.refuse_if_full()
            admission.memory.reserve(member.held, admission.retry_after_s)
        except Exception as refusal:  # 429, 503 or 413: this member's answer
            member.state = State.LEFT
            member.future.set_exception(refusal)
            return False
        admission.waiting += 1  # it waits for the pass, as a request waits for a slot
        member.state = State.QUEUED
        return True

    def _unadmit(self, member: Member) -> None:
        self.admission.waiting -= 1
        self.admission.memory.release(member.held)

    # -- waiting and leaving ------------------------------------------------------------------

    async def _outcome(self, member: Member, group: Group) -> Body | Alone:
        timeout_s = self.admission.timeout_s
        try:
            async with asyncio.timeout(member.arrived + timeout_s - time.perf_counter()):
                return await member.future
        except TimeoutError:
            self._leave(member, group)
            raise DeadlineExceeded(
                f"the computation ran past its deadline of {timeout_s:g} s"
            ) from None
        except asyncio.CancelledError:  # the client went away
            self._leave(member, group)
            raise

    def _leave(self, member: Member, group: Group) -> None:
        with group.lock:
            previous, member.state = member.state, State.LEFT
        if previous is State.QUEUED:  # admitted, the pass not started: its bytes come back now
            self.admission.memory.release(member.held)
        if group.runner is not None and all(m.state is State.LEFT for m in group.members):
            group.runner.cancel()  # nobody waits: the pass stops at its next checkpoint

    # -- the pass -----------------------------------------------------------------------------

    async def _compute(self, group: Group) -> None:
        admission = self.admission
        admission.waiting -= len(group.members)  # from here the pass counts, as one computation
        inline = all(member.inline for member in group.members)
        try:
            answers = await admission.run(partial(self._together, group), Timing(), 0, inline)
        except BaseException as error:
            self._release_unstarted(group)
            if not isinstance(error, asyncio.CancelledError):
                for member in group.members:
                    if not member.future.done():
                        member.future.set_exception(error)
            return
        for member, outcome in answers:
            self._deliver(member, outcome)

    def _together(self, group: Group) -> list[tuple[Member, Outcome]]:
        """In the computation's thread (or inline): one pass for the members still waiting."""
        started = time.perf_counter()
        with group.lock:
            group.started = True
            taken = [member for member in group.members if member.state is State.QUEUED]
            for member in taken:
                member.state = State.RUNNING
        try:
            for member in taken:
                member.timing.queued_s = started - member.arrived
            if not taken:
                return []
            outcomes = taken[0].join.run_together(
                [member.join for member in taken], lambda i: taken[i].state is State.RUNNING
            )
        finally:
            for member in taken:
                self.admission.memory.release(member.held)
        self.joined += len(taken)
        return list(zip(taken, outcomes, strict=True))

    def _release_unstarted(self, group: Group) -> None:
        """The pass never ran (refused, past its deadline in the queue, shut down): the bytes
        of the members still admitted come back here."""
        with group.lock:
            if group.started:
                return
            queued = [member for member in group.members if member.state is State.QUEUED]
            for member in queued:
                member.state = State.LEFT
        for member in queued:
            self.admission.memory.release(member.held)

    def _deliver(self, member: Member, outcome: Outcome) -> None:
        if member.future.done() or outcome is None:
            return
        if isinstance(outcome, BaseException):
            if is_allocation_failure(outcome):
                outcome = out_of_memory(self.admission.retry_after_s)
            member.future.set_exception(outcome)
        else:
            member.future.set_result(outcome)
