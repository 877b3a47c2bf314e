"""PretrainedRegistry in-process: whatever a model folder holds, preload leaves the service able
to start, and says why in `unavailable`, after the model's source and with no filesystem path."""

from __future__ import annotations

import logging
from importlib.util import find_spec
from pathlib import Path

import pytest
import torch

from app.pipelines.encoder.registry import BUNDLED_PACKAGE, PretrainedRegistry, folder_name
from attention import InputError
from attention.bert import bundled_model_path, num_parameters, parameter_bytes
from attention.bert.config import BertConfig
from tests.support.broken_folders import CASES
from tests.support.tiny_bert import CONFIG, write_tiny_bert

pytestmark = pytest.mark.skipif(
    find_spec("safetensors") is None or find_spec("tokenizers") is None,
    reason="safetensors and tokenizers build the test folders: "
    "pip install 'attention-service[model]'",
)
CPU = torch.device("cpu")


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    return write_tiny_bert(tmp_path / "Tiny-BERT")


@pytest.mark.parametrize("name", list(CASES))
def test_preload_says_why_after_the_source_and_without_a_path(tiny: Path, name: str) -> None:
    breaks, _, expected = CASES[name]
    path = breaks(tiny)
    registry = PretrainedRegistry.from_setting(str(path), CPU)
    registry.preload()
    assert registry.names == []
    assert registry.unavailable is not None
    assert registry.unavailable.startswith(f"folder:{folder_name(path)}: ")
    assert expected in registry.unavailable
    assert str(tiny.parent) not in registry.unavailable
    assert registry.describe() == []


def test_a_sound_folder_is_described_by_its_source(tiny: Path) -> None:
    registry = PretrainedRegistry.from_setting(str(tiny), CPU)
    registry.preload()
    assert registry.unavailable is None
    assert registry.names == ["tiny-bert"]
    (entry,) = registry.describe()
    assert entry["source"] == "folder:tiny-bert"
    config = BertConfig.from_dict(CONFIG)
    assert entry["parameters"] == num_parameters(config)
    assert entry["parameter_bytes"] == parameter_bytes(config)
    assert str(tiny) not in repr(entry)


def test_any_exception_while_loading_leaves_a_reason_without_its_text(
    tiny: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError(f"cannot allocate memory for {tiny}/model.safetensors")

    monkeypatch.setattr("app.pipelines.encoder.registry.load_bert", explode)
    registry = PretrainedRegistry.from_setting(str(tiny), CPU)
    with caplog.at_level(logging.ERROR, logger="app"):
        registry.preload()
    assert registry.unavailable == (
        "folder:tiny-bert: could not be loaded (RuntimeError); the server's log has the details"
    )
    assert "cannot allocate memory" in caplog.text  # the operator sees it, the client does not


def test_the_limit_refuses_the_model_and_names_the_setting(tiny: Path) -> None:
    needed = parameter_bytes(BertConfig.from_dict(CONFIG))
    registry = PretrainedRegistry.from_setting(str(tiny), CPU, max_bytes=needed - 1)
    registry.preload()
    assert registry.unavailable is not None
    assert "over the limit of" in registry.unavailable
    assert registry.unavailable.endswith("ATTENTION_MAX_MODEL_BYTES sets the limit")


def test_a_float64_copy_over_the_limit_is_the_requests_error(tiny: Path) -> None:
    needed = parameter_bytes(BertConfig.from_dict(CONFIG))
    registry = PretrainedRegistry.from_setting(str(tiny), CPU, max_bytes=needed)
    registry.preload()
    assert registry.unavailable is None
    with pytest.raises(InputError, match="ATTENTION_MAX_MODEL_BYTES") as caught:
        registry.get(torch.float64)
    assert caught.value.field == "config.dtype"
    assert registry.get(torch.float32).info.dtype == torch.float32


@pytest.mark.parametrize(
    ("setting", "name"),
    [("models/My-BERT", "my-bert"), ("models/My-BERT/", "my-bert"), ("/", "model")],
)
def test_folder_name_reads_nothing_from_the_disk(setting: str, name: str) -> None:
    assert folder_name(Path(setting)) == name


def test_dot_names_the_working_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert PretrainedRegistry.from_setting(".", CPU).source == f"folder:{tmp_path.name.lower()}"


def test_the_bundled_model_is_named_by_its_package() -> None:
    registry = PretrainedRegistry.from_setting(None, CPU)
    assert registry.source == f"package:{BUNDLED_PACKAGE}"
    if bundled_model_path() is None:
        assert registry.unavailable == "no model folder: install the 'model' extra"
