"""A typed Python client of the attention service: requests from keyword arguments, MessagePack
arrays as numpy, retries after Retry-After, typed errors carrying the service's detail.

    from attention_client import AttentionClient

    with AttentionClient("http://127.0.0.1:8000") as client:
        answer = client.attention(text="The man who passes", num_heads=2, d_model=8, top_k=2)
        answer["results"][0]["top_k"]["keys"]  # a numpy array, H × L × k

    # the same answer layer by layer, each drawn as soon as it is computed
    for frame in client.stream(model="all-minilm-l6-v2", text="The man who passes"):
        if isinstance(frame, Layer):
            frame.results[0]["attention"]  # a numpy array, H × L × L, of layer frame.layer

It imports neither `app` nor `attention`: httpx, numpy and ormsgpack only.
"""

from attention_client.arrays import decode_arrays
from attention_client.client import AttentionClient, build_request
from attention_client.errors import (
    ClientError,
    InvalidRequest,
    NotAuthorized,
    Overloaded,
    ServerError,
    ServiceError,
    TooLarge,
)
from attention_client.frames import End, Frame, Head, Layer, assemble

__all__ = [
    "AttentionClient",
    "ClientError",
    "End",
    "Frame",
    "Head",
    "InvalidRequest",
    "Layer",
    "NotAuthorized",
    "Overloaded",
    "ServerError",
    "ServiceError",
    "TooLarge",
    "assemble",
    "build_request",
    "decode_arrays",
]
