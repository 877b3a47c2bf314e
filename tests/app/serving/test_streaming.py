"""The pieces of a streamed answer: the channel's back-pressure and the error frames' statuses."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from app.http.errors import DeadlineExceeded, NotReady
from app.serving.streaming import FrameChannel, error_frame, error_status
from attention import InputError, Interrupted, stop_when

pytestmark = pytest.mark.anyio
WAIT_S = 30.0


def test_an_error_frame_has_the_status_and_detail_of_the_ordinary_answer() -> None:
    assert error_status(DeadlineExceeded("past its deadline of 1 s")) == (
        504, "past its deadline of 1 s",
    )  # fmt: skip
    assert error_status(NotReady("out of memory"))[0] == 503
    assert error_status(InputError("bad", field="layers")) == (422, "bad")
    # no message of an unexpected error is sent: it may carry paths
    assert error_status(RuntimeError("/srv/secret/path")) == (500, "internal error: RuntimeError")
    assert error_frame(504, "late") == {
        "frame": "error",
        "error": {"status": 504, "detail": "late"},
    }


async def test_the_worker_waits_while_two_frames_are_unwritten() -> None:
    channel = FrameChannel(asyncio.get_running_loop(), capacity=2)
    handed: list[int] = []

    def worker() -> None:
        for index in range(4):
            channel.put(bytes([index]))
            handed.append(index)
        channel.drain()
        handed.append(-1)  # everything written

    thread = threading.Thread(target=worker)
    thread.start()
    assert await channel.get() == b"\x00"
    assert await channel.get() == b"\x01"
    await asyncio.sleep(0.2)  # time enough for a third put, were there room for it
    assert handed == [0, 1]
    for expected in (b"\x02", b"\x03"):
        channel.written()
        assert await asyncio.wait_for(channel.get(), WAIT_S) == expected
    channel.written()
    assert handed == [0, 1, 2, 3]  # drain waits for the last two
    channel.written()
    thread.join(WAIT_S)
    assert handed[-1] == -1


def test_a_worker_waiting_for_room_stops_once_its_request_ends() -> None:
    loop = asyncio.new_event_loop()
    try:
        channel = FrameChannel(loop, capacity=1)
        channel.put(b"first")  # never written
        ended = time.monotonic() + 0.1
        with stop_when(lambda: time.monotonic() > ended), pytest.raises(Interrupted):
            channel.put(b"second")
    finally:
        loop.close()
