"""Cooperative interruption: a long computation stops at its next step when its caller gives up.

A thread cannot be killed, so a computation past its deadline would otherwise run to its end and
hold its memory and its slot. The caller sets a stop condition for the current thread with
`stop_when`; the library calls `checkpoint()` between steps and layers, which raises
`Interrupted` once the condition holds. Without a condition, `checkpoint()` costs one
thread-local look-up.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_local = threading.local()


class Interrupted(Exception):
    """The caller's stop condition held at a checkpoint: the computation was abandoned."""


@contextmanager
def stop_when(should_stop: Callable[[], bool]) -> Iterator[None]:
    """Within the block, `checkpoint()` in this thread raises once `should_stop()` is true."""
    previous = getattr(_local, "should_stop", None)
    _local.should_stop = should_stop
    try:
        yield
    finally:
        _local.should_stop = previous


def checkpoint() -> None:
    """Raise `Interrupted` if the current thread's stop condition holds."""
    should_stop = getattr(_local, "should_stop", None)
    if should_stop is not None and should_stop():
        raise Interrupted("the computation was stopped at a checkpoint")
