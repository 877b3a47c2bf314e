"""The test-only references for the pretrained model: transformers, loaded with the hub off."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest


@contextmanager
def hub_offline() -> Iterator[None]:
    """Nothing may be downloaded: the references load from the bundled folder only."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setenv("TRANSFORMERS_OFFLINE", "1")
        yield


def reference_bert(folder: Path) -> Any:
    """transformers' BertModel with the plain (eager) attention, so that it returns weights."""
    from transformers import BertModel

    return BertModel.from_pretrained(str(folder), attn_implementation="eager").eval()
