"""How fast the client goes: what it reports as it goes, how long the server may hold it
back in all, how many requests it keeps in flight, and how long it backs off."""

from __future__ import annotations

import asyncio
import random
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from orgaudit.settings import RetryPolicy


@dataclass
class ClientStats:
    """Counters of what the client did; read by the pull summary and the benchmark."""

    requests: int = 0
    retries: int = 0
    throttled: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    waited: float = 0.0  # seconds spent held back by "slow down" answers


def _ignore(*_args: object) -> None:
    pass


@dataclass(frozen=True)
class Progress:
    """What the client reports as it goes: each response, and each wait the server asks
    for ("rate limited (HTTP 429): waiting 4 s, 37 s waited so far")."""

    response: Callable[[], None] = _ignore
    waiting: Callable[[str], None] = _ignore
    notice: Callable[[str], None] = _ignore  # a one-off line for the user (a pull set aside)


QUIET = Progress()  # reports nothing


class WaitBudget:
    """The time a pull may spend held back by the server, counted once however many
    requests wait at the same moment (16 requests each told to wait 4 s cost 4 s)."""

    def __init__(self, limit: float, clock: Callable[[], float]) -> None:
        self.limit = limit
        self.spent = 0.0
        self._clock = clock
        self._held_until = float("-inf")

    def take(self, delay: float) -> bool:
        """Charge a wait of ``delay`` seconds starting now; False if over the budget."""
        now = self._clock()
        extra = max(0.0, now + delay - max(now, self._held_until))
        if self.spent + extra > self.limit:
            return False
        self.spent += extra
        self._held_until = max(self._held_until, now + delay)
        return True


class AdaptiveLimit:
    """How many requests may be in flight: additive increase, multiplicative decrease.

    It starts at the ceiling (``--concurrency``), halves on a 429 (once per window of
    requests, so a burst of 429s from one overload counts once), and grows by one after
    each window of successes, never above the ceiling: the user need not guess the right
    concurrency. A release wakes only as many waiters as may now run (thousands of queued
    requests must not all wake on every release).

    Waiters queue first in, first out, in two lanes: the next page of a list already
    being read goes before any first page. A list's pages can only be asked one after
    another, so a long list (500 pages of audit log) queued behind a thousand fan-out
    requests at every page would end the pull alone, with the other slots idle.
    """

    def __init__(self, ceiling: int) -> None:
        self.ceiling = ceiling
        self.limit = ceiling
        self.lowest = ceiling
        self._in_flight = 0
        self._successes = 0
        self._since_cut = ceiling  # requests finished since the last cut
        self._next_pages: deque[asyncio.Future[None]] = deque()
        self._first_pages: deque[asyncio.Future[None]] = deque()

    @asynccontextmanager
    async def slot(self, next_page: bool = False) -> AsyncIterator[None]:
        """Hold one of the allowed slots while the body runs."""
        await self._acquire(self._next_pages if next_page else self._first_pages)
        try:
            yield
        finally:
            self._since_cut += 1
            self._release()

    async def _acquire(self, lane: deque[asyncio.Future[None]]) -> None:
        if self._in_flight < self.limit and not self._next_pages and not self._first_pages:
            self._in_flight += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        lane.append(waiter)
        try:
            await waiter  # the slot was taken for us by _wake
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()
            raise

    def _release(self) -> None:
        self._in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        while self._in_flight < self.limit and (self._next_pages or self._first_pages):
            waiter = (self._next_pages or self._first_pages).popleft()
            if not waiter.done():
                self._in_flight += 1
                waiter.set_result(None)

    def throttled(self) -> None:
        """A 429: halve the limit, unless it was just cut for the same overload."""
        if self._since_cut >= self.limit:
            self.limit = max(1, self.limit // 2)
            self.lowest = min(self.lowest, self.limit)
            self._since_cut = 0
        self._successes = 0

    def succeeded(self) -> None:
        """A success: after a window of them, allow one more request in flight."""
        self._successes += 1
        if self._successes >= self.limit and self.limit < self.ceiling:
            self.limit += 1
            self._successes = 0
            self._wake()


def backoff(policy: RetryPolicy, attempt: int) -> float:
    """Capped exponential backoff with full jitter, for the ``attempt``-th retry."""
    return random.uniform(0, min(policy.max_delay, policy.base_delay * 2 ** min(attempt - 1, 30)))
