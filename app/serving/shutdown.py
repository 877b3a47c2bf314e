"""How a worker stops on SIGTERM: readiness turns 503 at once, the listeners close without
resetting the connections in their backlog, then the server's own handler drains.

The server installs its handler before the lifespan starts, so this one wraps it. uvicorn
closes its listener within 0.1 s of its handler, so a load balancer that routes by readiness
would never see the 503: with `drain_delay_s` the server's handler is called that much later,
the server accepting and answering (readiness 503) meanwhile. A second SIGTERM stops at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Any

import uvicorn

if TYPE_CHECKING:
    from app.service import Service

logger = logging.getLogger("app")

Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


def drain_on_sigterm(service: Service) -> Callable[[], None]:
    """Wrap the server's SIGTERM handler in `SigtermDrain`; returns what puts it back."""
    try:
        previous = signal.getsignal(signal.SIGTERM)
    except ValueError:  # not the main thread (an embedded server): nothing to wrap
        return lambda: None
    delay = service.settings.drain_delay_s
    drain = SigtermDrain(service, previous, asyncio.get_running_loop(), delay)
    try:
        signal.signal(signal.SIGTERM, drain.handle)
    except ValueError:
        return lambda: None
    return lambda: _restore_signal(previous)


@dataclass(frozen=True)
class SigtermDrain:
    """The first SIGTERM drains (readiness 503), then hands over to the server's handler
    `drain_delay_s` later; a second one hands over at once."""

    service: Service
    previous: Handler  # the server's handler
    loop: asyncio.AbstractEventLoop
    delay: float  # drain_delay_s

    def handle(self, signum: int, frame: FrameType | None) -> None:
        first = not self.service.draining
        self.service.draining = True
        if not callable(self.previous):
            return
        if first and self.delay > 0:
            logger.info("SIGTERM: draining, readiness is now 503; stopping in %g s", self.delay)
            # from a signal handler: wake the loop, which then schedules the call
            later = self.loop.call_later
            self.loop.call_soon_threadsafe(later, self.delay, self.hand_over, signum)
            return
        logger.info("SIGTERM: draining, readiness is now 503")
        if first:
            self.loop.call_soon_threadsafe(self.hand_over, signum)
        else:
            self.previous(signum, frame)

    def hand_over(self, signum: int) -> None:
        """The server's handler, once the listeners are closed without resetting the
        connections in their backlog (`stop_accepting`; uvicorn's own close would reset
        them)."""
        server = getattr(self.previous, "__self__", None)
        try:
            if isinstance(server, uvicorn.Server):
                taken = stop_accepting(server)
                logger.info("listener closed; %d connections taken from its backlog", taken)
        finally:  # whatever happened there, the server must still stop
            if callable(self.previous):
                self.previous(signum, None)


def stop_accepting(server: uvicorn.Server) -> int:
    """Close the server's listeners, first accepting the connections waiting in their backlog.

    Closing a listening socket resets every connection the kernel has completed but the
    server not yet accepted: their clients, who may have sent a request already, get a reset
    instead of an answer. Taken first, they are served (with `Connection: close`, as the
    server drains). A copy of each listening descriptor keeps the socket open while uvicorn's
    listener closes, so nothing is reset between the two; what arrives in the microseconds
    between the last accept and the close still is. Returns how many were taken.
    """
    loop = asyncio.get_running_loop()
    protocol = protocol_factory(server)
    taken = 0
    for listener in getattr(server, "servers", []):
        held = [socket.socket(fileno=os.dup(sock.fileno())) for sock in listener.sockets]
        listener.close()
        for sock in held:
            with sock:
                taken += take_backlog(loop, server, protocol, sock)
                stop_listening(sock)
    return taken


def protocol_factory(server: uvicorn.Server) -> Callable[[], asyncio.Protocol]:
    """The protocol the server makes for each connection it accepts, guard included."""
    config, state = server.config, server.server_state

    def protocol() -> asyncio.Protocol:
        made: asyncio.Protocol = config.http_protocol_class(  # type: ignore[call-arg]
            config=config, server_state=state, app_state=server.lifespan.state
        )
        return made

    return protocol


def take_backlog(
    loop: asyncio.AbstractEventLoop,
    server: uvicorn.Server,
    protocol: Callable[[], asyncio.Protocol],
    sock: socket.socket,
) -> int:
    """Accept every connection waiting on `sock`, each served as the server serves its own;
    returns how many."""
    state = server.server_state

    async def serve(connection: socket.socket) -> None:
        await loop.connect_accepted_socket(protocol, connection)

    sock.setblocking(False)
    taken = 0
    while True:
        try:
            connection, _ = sock.accept()
        except OSError:  # none waiting; or another worker stopped the listening
            return taken
        task = loop.create_task(serve(connection))
        state.tasks.add(task)  # uvicorn's shutdown waits for its tasks
        task.add_done_callback(state.tasks.discard)
        taken += 1


def stop_listening(sock: socket.socket) -> None:
    """Stop listening, for every process that shares the socket (other workers, uvicorn's
    parent): while any holds it open it would go on completing connections that none accepts,
    to reset them when the last one exits. New connections are refused from here on, which a
    client can safely retry."""
    with suppress(OSError):
        sock.shutdown(socket.SHUT_RD)


def _restore_signal(previous: Handler) -> None:
    with suppress(ValueError, TypeError):
        signal.signal(signal.SIGTERM, previous)
