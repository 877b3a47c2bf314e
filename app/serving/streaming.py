"""Streamed answers: frames computed in a worker thread, written to the client as they come.

    worker thread (Admission.run)                 event loop
    produce(put) ─ put(frame) ─▶ FrameChannel ─▶ FrameStreamResponse ─▶ client
                     ▲ waits while FRAMES_IN_FLIGHT frames are not yet written (back-pressure)

The stream is admitted as any answer (a slot, its estimated bytes in the memory budget, the
deadline) and holds them until its last frame is written or the client leaves: the worker, its
frames handed over, waits for them to be written before it returns. A slow reader pauses the
computation instead of letting frames pile up; the deadline covers the whole stream, reading
included, so no reader holds a slot longer than it. Errors before the first frame are ordinary
HTTP errors; after it, the 200 is sent, and the stream ends with an error frame
(`error_frame`). A client that leaves abandons the computation: it stops at its next checkpoint
(a layer), and its slot and bytes come back (docs/architecture.md, streaming).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from app.http.encoding import encode_frame
from app.http.errors import ServiceError
from app.serving.runtime import Admission, Timing
from attention import AttentionError, checkpoint

logger = logging.getLogger("app")

FRAMES_IN_FLIGHT = 2  # encoded and not yet written: the computation waits past this many
POLL_S = 0.05  # how often a worker waiting for a slow reader checks whether to stop

Put = Callable[[bytes], None]  # hands an encoded frame to the event loop (may block)
Produce = Callable[[Put], None]  # computes an answer, frame by frame (the worker thread)


def error_frame(status: int, detail: str) -> dict[str, Any]:
    """The last frame of a stream that failed after its 200 was sent."""
    return {"frame": "error", "error": {"status": status, "detail": detail}}


def error_status(error: BaseException) -> tuple[int, str]:
    """The status and detail the error would have had as an ordinary HTTP answer (errors.py)."""
    if isinstance(error, ServiceError):
        return error.status_code, error.message
    if isinstance(error, AttentionError):
        return 422, error.message
    logger.error("unexpected error in a stream", exc_info=error)
    return 500, f"internal error: {type(error).__name__}"


class FrameChannel:
    """Encoded frames from one worker thread to the event loop, at most `capacity` unwritten."""

    def __init__(self, loop: asyncio.AbstractEventLoop, capacity: int = FRAMES_IN_FLIGHT) -> None:
        self._loop, self._capacity = loop, capacity
        self._room = threading.Semaphore(capacity)
        self._frames: asyncio.Queue[bytes | None] = asyncio.Queue()  # None: the worker ended

    def put(self, frame: bytes) -> None:
        """The worker's side: waits for room, stopping at a checkpoint if its request ends."""
        self._wait_for_room()
        self._loop.call_soon_threadsafe(self._frames.put_nowait, frame)

    def drain(self) -> None:
        """The worker's side, after its last frame: wait until every frame has been written."""
        for _ in range(self._capacity):
            self._wait_for_room()

    def _wait_for_room(self) -> None:
        while not self._room.acquire(timeout=POLL_S):
            checkpoint()  # raises once the deadline passed or the client left

    async def get(self) -> bytes | None:
        return await self._frames.get()

    def written(self) -> None:
        self._room.release()

    def close(self) -> None:
        self._frames.put_nowait(None)


class FrameStream:
    """One admitted computation's frames, the first already computed (`start`)."""

    def __init__(self, channel: FrameChannel, task: asyncio.Future[None], first: bytes) -> None:
        self.channel, self.task, self.first = channel, task, first

    @classmethod
    async def start(
        cls, admission: Admission, produce: Produce, timing: Timing, memory_bytes: int
    ) -> FrameStream:
        """Admit and start the computation, and wait for its first frame: an error before it
        (429, 503, 504, 422, ...) is raised here, to be answered as any other."""
        channel = FrameChannel(asyncio.get_running_loop())

        def work() -> None:
            produce(channel.put)
            channel.drain()

        task = asyncio.ensure_future(admission.run(work, timing, memory_bytes))
        task.add_done_callback(_retrieve)
        task.add_done_callback(lambda _: channel.close())
        try:
            first = await channel.get()
        except BaseException:
            task.cancel()
            raise
        if first is None:  # the work ended before its first frame: its error
            await task
            raise RuntimeError("a stream's work ended without a frame")
        return cls(channel, task, first)

    async def frames(self) -> AsyncIterator[bytes]:
        """Every frame, the first included; the caller calls `channel.written()` after each.
        An error of the computation ends the frames with `(status, detail)` in `self.failure`."""
        yield self.first
        while (frame := await self.channel.get()) is not None:
            yield frame

    def failure(self) -> tuple[int, str] | None:
        """The computation's error once its frames are over; None if it finished."""
        if not self.task.done() or self.task.cancelled():
            return None
        error = self.task.exception()
        return None if error is None else error_status(error)

    def abandon(self) -> None:
        """The client left, or the response ended early: stop the computation (Admission.run
        marks it abandoned; it stops at its next checkpoint and gives its slot back)."""
        if not self.task.done():
            self.task.cancel()


class FrameStreamResponse(Response):
    """200, then the frames as they come, each written as soon as it exists (never buffered,
    never compressed: a compressor would hold them back), then an error frame if one failed."""

    def __init__(self, stream: FrameStream, media_type: str) -> None:
        self.stream, self.frame_type = stream, media_type
        self.status_code = 200
        self.media_type = media_type
        self.background = None
        self.init_headers({"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gone = asyncio.ensure_future(_until_disconnect(receive))
        gone.add_done_callback(lambda _: self.stream.abandon())
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            async for frame in self.stream.frames():
                await send({"type": "http.response.body", "body": frame, "more_body": True})
                self.stream.channel.written()
            failure = None if gone.done() else self.stream.failure()
            last = b"" if failure is None else encode_frame(error_frame(*failure), self.frame_type)
            await send({"type": "http.response.body", "body": last, "more_body": False})
        except OSError:  # a server of ASGI spec 2.4 says so when the client has left
            pass
        finally:
            gone.cancel()
            self.stream.abandon()


def _retrieve(task: asyncio.Future[None]) -> None:
    """Mark the error retrieved: a stream whose client left never reads it."""
    if not task.cancelled():
        task.exception()


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
