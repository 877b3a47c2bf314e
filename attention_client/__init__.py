"""A typed Python client of the attention service: requests from keyword arguments, MessagePack
arrays as numpy, retries after Retry-After, typed errors carrying the service's detail.

    from attention_client import AttentionClient

    with AttentionClient("http://127.0.0.1:8000") as client:
        answer = client.attention(text="The man who passes", num_heads=2, d_model=8, top_k=2)
        answer["results"][0]["top_k"]["keys"]  # a numpy array, H × L × k

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

__all__ = [
    "AttentionClient",
    "ClientError",
    "InvalidRequest",
    "NotAuthorized",
    "Overloaded",
    "ServerError",
    "ServiceError",
    "TooLarge",
    "build_request",
    "decode_arrays",
]
