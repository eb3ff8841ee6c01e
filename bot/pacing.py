"""Keep sends within Telegram's flood limits so that no 429 is ever provoked.

Telegram counts a message when it receives it, somewhere between the moment we start the
request and the moment its answer comes back. So a send holds its token from the start of the
request until `window` seconds after the answer: then no window of `window` seconds, wherever
Telegram puts it, can hold more sends than there are tokens. The cost is one round trip per
window (a few milliseconds on a good line), far less than a 429 would cost.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager


class _Tokens:
    """`size` tokens, each given back `hold` seconds after its send finished."""

    def __init__(self, size: int, hold: float) -> None:
        self.hold = hold
        self.free = asyncio.Semaphore(size)

    async def take(self) -> None:
        await self.free.acquire()

    def give_back_later(self) -> None:
        asyncio.get_running_loop().call_later(self.hold, self.free.release)


class _Bucket:
    """A leaky bucket for one private chat: `rate` a second, bursts of up to `burst`.

    Nothing drains while a send is on the wire, so with `burst` 1 the next send starts a full
    1/rate after the answer to the previous one, as the flood window is seen by Telegram.
    """

    def __init__(self, rate: float, burst: int, now: Callable[[], float]) -> None:
        self.rate = rate
        self.burst = burst
        self.now = now
        self.level = 0.0
        self.at = now()
        self.lock = asyncio.Lock()

    def _drain(self) -> None:
        now = self.now()
        self.level = max(0.0, self.level - (now - self.at) * self.rate)
        self.at = now

    async def take(self) -> None:
        await self.lock.acquire()
        try:
            while True:
                self._drain()
                if self.level + 1 <= self.burst:
                    self.level += 1
                    return
                await asyncio.sleep((self.level + 1 - self.burst) / self.rate)
        except BaseException:
            self.lock.release()
            raise

    def done(self) -> None:
        self.at = self.now()
        self.lock.release()

    def idle(self) -> bool:
        return not self.lock.locked() and self.level - (self.now() - self.at) * self.rate <= 0


class Pacer:
    """Overall, per private chat and per group limits, plus pauses Telegram asked for with 429."""

    def __init__(
        self,
        per_second: int = 30,
        *,
        per_private_chat: float = 1.0,
        private_burst: int = 1,
        per_group_per_minute: int = 20,
        window: float = 1.0,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_second = per_second
        self.window = window
        self.per_private_chat = per_private_chat
        # Telegram tolerates short bursts in one chat (a reply of two messages then comes at once).
        self.private_burst = max(1, private_burst)
        self.per_group_per_minute = per_group_per_minute
        self._now = now
        self._overall = _Tokens(per_second, window)
        self._groups: dict[int, _Tokens] = {}
        self._chats: dict[int, _Bucket] = {}
        self._paused: dict[int, float] = {}

    def _bucket(self, chat_id: int) -> _Bucket:
        bucket = self._chats.get(chat_id)
        if bucket is None:
            if len(self._chats) > 10_000:
                for idle in [c for c, b in self._chats.items() if b.idle()]:
                    del self._chats[idle]
            bucket = _Bucket(self.per_private_chat / self.window, self.private_burst, self._now)
            self._chats[chat_id] = bucket
        return bucket

    def _group(self, chat_id: int) -> _Tokens:
        tokens = self._groups.get(chat_id)
        if tokens is None:
            tokens = self._groups[chat_id] = _Tokens(self.per_group_per_minute, 60.0)
        return tokens

    def pause(self, chat_id: int, seconds: float) -> None:
        """Telegram said to wait before writing to this chat again (429 retry_after)."""
        until = self._now() + seconds
        self._paused[chat_id] = max(until, self._paused.get(chat_id, 0.0))

    def paused_for(self, chat_id: int) -> float:
        """Seconds left of a pause Telegram asked for on this chat (0 when none)."""
        until = self._paused.get(chat_id)
        if until is None:
            return 0.0
        left = until - self._now()
        if left <= 0:
            del self._paused[chat_id]
            return 0.0
        return left

    async def _take_chat(self, chat_id: int) -> Callable[[], None]:
        """Wait for the chat's turn; returns what to call once the send is over."""
        if chat_id < 0:  # a group or channel: 20 a minute
            group = self._group(chat_id)
            await group.take()
            return group.give_back_later
        bucket = self._bucket(chat_id)
        await bucket.take()
        return bucket.done

    async def turn(
        self,
        chat_id: int,
        *,
        wait_at_most: float | None = None,
        still_wanted: Callable[[], Awaitable[bool]] | None = None,
    ) -> Callable[[], None] | None:
        """Wait for the chat's turn and an overall token; returns what to call as soon as the
        request is answered, or None if the chat's turn took longer than `wait_at_most` or
        `still_wanted` (asked once the chat's turn has come, before an overall token is taken,
        so that its cost is not counted against the overall rate) says no."""
        try:
            if wait_at_most is None:
                finish_chat = await self._take_chat(chat_id)
            else:
                finish_chat = await asyncio.wait_for(self._take_chat(chat_id), wait_at_most)
        except TimeoutError:
            return None
        try:
            if still_wanted is not None and not await still_wanted():
                finish_chat()
                return None
        except BaseException:
            finish_chat()
            raise
        try:
            await self._overall.take()
        except BaseException:
            finish_chat()
            raise
        done = False

        def finish() -> None:
            # Whatever the answer (even an error), Telegram may have counted the request.
            nonlocal done
            if not done:
                done = True
                self._overall.give_back_later()
                finish_chat()

        return finish

    @asynccontextmanager
    async def slot(self, chat_id: int, *, wait_at_most: float | None = None) -> AsyncIterator[bool]:
        """`turn` as a context: yields False (holding nothing) when the turn did not come in time."""
        finish = await self.turn(chat_id, wait_at_most=wait_at_most)
        try:
            yield finish is not None
        finally:
            if finish is not None:
                finish()
