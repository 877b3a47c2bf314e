"""A Service as a worker's lifespan makes it, for tests that call its parts directly."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from app.service import Service, torch_threads
from app.serving.settings import Settings


def service_of(settings: Settings) -> Iterator[Service]:
    """The service, with the torch threads its lifespan sets (numbers compared at the thread
    count production computes them with); the previous count and the pool restored after."""
    service = Service.from_settings(settings)
    previous = torch.get_num_threads()
    torch.set_num_threads(torch_threads(settings))
    yield service
    torch.set_num_threads(previous)
    service.admission.shutdown()
