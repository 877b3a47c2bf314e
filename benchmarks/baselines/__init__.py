"""Baselines, not the service: peers that `make bench` measures beside it in the same run.

- `minimal`: a minimal FastAPI + orjson app running the same seeded attention layer on the same
  body, without validation, limits, admission, metrics, middlewares or the answer's labels;
  the floor that the service's features are measured against.
- `transformers_server`: a hand-rolled FastAPI + transformers server (eager attention,
  `output_attentions=True`) on the same pretrained weights as the service's encoder path.
"""
