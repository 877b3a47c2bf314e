from __future__ import annotations

import numpy as np
import orjson
import ormsgpack
import pytest

from app.http.encoding import (
    JSON,
    MSGPACK,
    MSGPACK_SEQ,
    NDJSON,
    decode_msgpack_arrays,
    encode,
    encode_frame,
    frames_encoding,
    negotiate,
    prepare_arrays,
)


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [
        (None, JSON),
        ("", JSON),
        ("application/json", JSON),
        ("*/*", JSON),
        ("application/msgpack", MSGPACK),
        ("application/x-msgpack", MSGPACK),
        ("application/vnd.msgpack", MSGPACK),
        ("Application/MsgPack; q=0.9", MSGPACK),
        ("application/json;q=0.5, application/msgpack;q=0.9", MSGPACK),
        ("application/json, application/msgpack", MSGPACK),  # a tie: the one asked for by name
        ("text/html, application/msgpack;q=0.5", MSGPACK),
        ("application/*;q=0.1, application/msgpack;q=0.1", MSGPACK),
        ("text/html, application/xhtml+xml", JSON),
        # q-values: 0 means "not this one", and a preferred JSON wins
        ("application/msgpack;q=0", JSON),
        ("application/msgpack; Q=0.000", JSON),
        ("application/x-msgpack;q=0, */*", JSON),
        ("application/json, application/msgpack;q=0.1", JSON),
        ("application/msgpack;q=0.5, */*;q=0.8", JSON),
        ("application/msgpack;q=0.5, application/*;q=0.9", JSON),
        ("application/msgpack;q=0.5, application/json;q=0.9, */*;q=0.1", JSON),
        # a malformed q counts as absent (1)
        ("application/msgpack;q=high", MSGPACK),
        ("application/msgpack;q=nan, application/json;q=0.5", MSGPACK),
        ("application/msgpack;q=2", MSGPACK),
    ],
)
def test_msgpack_only_when_asked_for_and_not_less_wanted_than_json(
    accept: str | None, media_type: str
) -> None:
    assert negotiate(accept) == media_type


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [
        ("application/x-ndjson", NDJSON),
        ("application/vnd.msgpack-seq", MSGPACK_SEQ),
        ("application/json, application/x-ndjson", NDJSON),  # a tie: the stream asked for
        ("application/msgpack, application/vnd.msgpack-seq", MSGPACK_SEQ),
        ("application/x-ndjson;q=0.5, application/json", JSON),
        ("application/x-ndjson;q=0.5, application/vnd.msgpack-seq;q=0.8", MSGPACK_SEQ),
        ("application/x-ndjson;q=0, */*", JSON),
        ("*/*", JSON),
    ],
)
def test_a_stream_only_when_named_and_not_less_wanted_than_a_whole_answer(
    accept: str, media_type: str
) -> None:
    assert negotiate(accept) == media_type


def test_a_frame_is_one_line_of_json_or_one_messagepack_object() -> None:
    payload = {"frame": "layer", "text": "two\nlines", "values": np.array([0.5, np.nan])}

    line = encode_frame(payload, NDJSON)
    packed = encode_frame(payload, MSGPACK_SEQ, float16=True)

    assert line.count(b"\n") == 1
    assert line.endswith(b"\n")
    assert orjson.loads(line) == {"frame": "layer", "text": "two\nlines", "values": [0.5, None]}
    decoded = decode_msgpack_arrays(ormsgpack.unpackb(packed))
    assert decoded["values"].dtype == np.float16
    assert frames_encoding(NDJSON) == JSON
    assert frames_encoding(MSGPACK) == MSGPACK


def test_precision_rounds_float_arrays_in_nested_containers() -> None:
    payload = {"a": [np.array([0.12345, 1.98765])], "b": {"c": np.array([2.5551], np.float32)}}

    prepared = prepare_arrays(payload, 2)

    np.testing.assert_array_equal(prepared["a"][0], [0.12, 1.99])
    np.testing.assert_allclose(prepared["b"]["c"], [2.56], rtol=1e-6)
    assert prepared["b"]["c"].dtype == np.float32


def test_precision_leaves_integer_arrays_and_plain_numbers_alone() -> None:
    prepared = prepare_arrays({"ids": np.array([3, 7]), "scale": 0.123456}, 1)

    assert prepared["ids"].dtype.kind == "i"
    assert prepared["ids"].tolist() == [3, 7]
    assert prepared["scale"] == 0.123456


def test_arrays_are_made_contiguous() -> None:
    transposed = np.arange(6, dtype=np.float32).reshape(2, 3).T

    assert prepare_arrays(transposed, None).flags["C_CONTIGUOUS"]


@pytest.mark.parametrize("precision", [None, 2])
def test_a_non_contiguous_array_is_encoded_as_its_values(precision: int | None) -> None:
    transposed = np.arange(6, dtype=np.float32).reshape(2, 3).T

    assert orjson.loads(encode({"a": transposed}, JSON, precision)) == {
        "a": [[0.0, 3.0], [1.0, 4.0], [2.0, 5.0]]
    }
    decoded = decode_msgpack_arrays(ormsgpack.unpackb(encode([transposed], MSGPACK, precision)))
    np.testing.assert_array_equal(decoded[0], transposed)


def test_json_writes_non_finite_numbers_as_null() -> None:
    payload = {"x": np.array([1.5, np.nan, np.inf, -np.inf], dtype=np.float32)}

    assert orjson.loads(encode(payload, JSON)) == {"x": [1.5, None, None, None]}


def test_json_of_a_transposed_array_keeps_its_logical_order() -> None:
    transposed = np.arange(6, dtype=np.float64).reshape(2, 3).T

    assert orjson.loads(encode({"x": transposed}, JSON)) == {"x": transposed.tolist()}


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.bool_])
def test_msgpack_arrays_round_trip_with_dtype_and_shape(dtype: type) -> None:
    values = np.arange(24).reshape(2, 3, 4).astype(dtype)
    payload = {"results": [{"attention": values, "tokens": ["a", 1]}], "meta": {"ms": 1.5}}

    decoded = decode_msgpack_arrays(ormsgpack.unpackb(encode(payload, MSGPACK)))

    array = decoded["results"][0]["attention"]
    assert array.dtype == np.dtype(dtype)
    assert array.shape == (2, 3, 4)
    np.testing.assert_array_equal(array, values)
    assert decoded["results"][0]["tokens"] == ["a", 1]
    assert decoded["meta"] == {"ms": 1.5}


def test_msgpack_writes_big_endian_arrays_little_endian() -> None:
    big = np.array([1.0, -2.5], dtype=">f4")

    packed = ormsgpack.unpackb(encode({"x": big}, MSGPACK))

    assert packed["x"]["dtype"] == "float32"
    assert packed["x"]["data"] == np.array([1.0, -2.5], dtype="<f4").tobytes()
    np.testing.assert_array_equal(decode_msgpack_arrays(packed)["x"], big)


def test_msgpack_keeps_non_finite_numbers() -> None:
    values = np.array([np.nan, -np.inf], dtype=np.float32)

    decoded = decode_msgpack_arrays(ormsgpack.unpackb(encode({"x": values}, MSGPACK)))

    assert np.isnan(decoded["x"][0])
    assert np.isneginf(decoded["x"][1])


def test_a_dict_that_merely_looks_like_an_array_is_left_alone() -> None:
    value = {"dtype": "float32", "shape": [1], "data": "not bytes"}

    assert decode_msgpack_arrays(value) == value


def test_a_large_answer_written_in_pieces_is_the_same_json() -> None:
    payload = {
        "results": [
            {
                "tokens": ["a", "b"],
                "output": np.random.default_rng(0).random((300, 1000), dtype=np.float32),
                "attention": np.full((4, 300, 300), 0.25, dtype=np.float64),
                "odd": np.array([np.nan, np.inf, 1.5]),
                "steps": {},
                "metrics": None,
            }
        ],
        "config": {"d_model": 8},
    }

    body = encode(payload, JSON)

    assert isinstance(body, memoryview)  # 300,000 numbers: past PIECE_NUMBERS
    assert bytes(body) == orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)


def test_a_large_array_is_found_inside_lists_of_results_and_layers() -> None:
    # the pieces decision walks dicts and lists of containers, not lists of labels or numbers
    layers = [np.zeros((600, 600), dtype=np.float32) for _ in range(2)]
    payload = {"results": [{"tokens": ["a"] * 600, "layers": [0, 1], "steps": {"q": layers}}]}

    body = encode(payload, JSON)

    assert isinstance(body, memoryview)  # 360,000 numbers in one array: written in pieces
    assert bytes(body) == orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
    assert isinstance(encode({"tokens": ["a"] * 600, "layers": [0, 1]}, JSON), bytes)
