"""Decoders in-process against transformers eager, on the same folder: one forward pass with
every layer's attention, per architecture and length, and greedy generation.

    .venv/bin/python -m benchmarks.decoders                # small models, 128 and 1,024 tokens
    .venv/bin/python -m benchmarks.decoders --smoke        # tiny models, 16 tokens, 1 run
    .venv/bin/python -m benchmarks.decoders --no-http      # in-process only (--http: HTTP only)

`make bench` (benchmarks/run.py) prints the same tables after its own.

The folders are built in a temporary directory with transformers (random weights, seeded): the
sizes, not the weights, make the time. Each case alternates ours and theirs run by run, so that
a change in the machine's load falls on both; the ratio is ours / theirs of the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import torch

SMALL = {  # a small model of each family: 4 layers, width 256, 8 heads
    "gpt2": {"n_embd": 256, "n_layer": 4, "n_head": 8, "n_positions": 1024},
    "llama": {
        "hidden_size": 256, "intermediate_size": 688, "num_hidden_layers": 4,
        "num_attention_heads": 8, "num_key_value_heads": 2, "max_position_embeddings": 2048,
    },
    "mistral": {
        "hidden_size": 256, "intermediate_size": 688, "num_hidden_layers": 4,
        "num_attention_heads": 8, "num_key_value_heads": 2, "max_position_embeddings": 2048,
        "sliding_window": 256,
    },
    "qwen2": {
        "hidden_size": 256, "intermediate_size": 688, "num_hidden_layers": 4,
        "num_attention_heads": 8, "num_key_value_heads": 2, "max_position_embeddings": 2048,
    },
}  # fmt: skip
VOCAB = 4096


def build(root: Path, model_type: str, fields: dict[str, Any], vocab: int) -> Path:
    import transformers

    from tests.support.tiny_decoder import write_tokenizer

    classes = {
        "gpt2": transformers.GPT2Config, "llama": transformers.LlamaConfig,
        "mistral": transformers.MistralConfig, "qwen2": transformers.Qwen2Config,
    }  # fmt: skip
    torch.manual_seed(0)
    config = classes[model_type](vocab_size=vocab, bos_token_id=1, eos_token_id=2, **fields)
    model = transformers.AutoModelForCausalLM.from_config(config, attn_implementation="eager")
    folder = root / model_type
    model.save_pretrained(str(folder))
    write_tokenizer(folder / "tokenizer.json", bos=model_type != "gpt2")
    return folder


def timed(function: Callable[[], object]) -> float:
    start = time.perf_counter()
    function()
    return (time.perf_counter() - start) * 1e3


def compare(
    ours: Callable[[], object], theirs: Callable[[], object], runs: int
) -> dict[str, float]:
    ours(), theirs()  # warm-up
    mine, reference = [], []
    for _ in range(runs):
        mine.append(timed(ours))
        reference.append(timed(theirs))
    ours_ms, theirs_ms = statistics.median(mine), statistics.median(reference)
    return {"ours_ms": ours_ms, "transformers_ms": theirs_ms, "ratio": ours_ms / theirs_ms}


@torch.inference_mode()
def run(lengths: list[int], runs: int, new_tokens: int, smoke: bool) -> list[dict[str, Any]]:
    from transformers import AutoModelForCausalLM

    from attention.decoder import load_decoder

    rows = []
    with tempfile.TemporaryDirectory() as root:
        for model_type, fields in SMALL.items():
            shape = _shape(model_type, fields, smoke)
            folder = build(Path(root), model_type, shape, 64 if smoke else VOCAB)
            model, _, info = load_decoder(folder)
            reference = AutoModelForCausalLM.from_pretrained(
                str(folder), attn_implementation="eager"
            ).eval()
            for row in measure(model, reference, lengths, runs, new_tokens):
                rows.append({"architecture": model_type, "parameters": info.num_parameters, **row})
    return rows


def measure(
    model: Any, reference: Any, lengths: list[int], runs: int, new_tokens: int
) -> list[dict[str, Any]]:
    from attention.decoder.generation import Sampling, generate

    rows = []
    for length in lengths:
        ids = torch.randint(3, 30, (1, length), generator=torch.Generator().manual_seed(0))
        row = compare(
            lambda ids=ids: model(ids, output_attentions=True),
            lambda ids=ids: reference(ids, output_attentions=True),
            runs,
        )
        rows.append({"case": f"forward {length} tokens", **row})
    prompt = torch.randint(3, 30, (1, 16), generator=torch.Generator().manual_seed(1))
    greedy = Sampling(max_new_tokens=new_tokens)
    row = compare(
        lambda: generate(model, prompt[0].tolist(), greedy, eos_token_ids=()),
        lambda: reference.generate(
            prompt, do_sample=False, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
            output_attentions=True, return_dict_in_generate=True, pad_token_id=0,
        ),
        max(1, runs // 2),
    )  # fmt: skip
    return [*rows, {"case": f"greedy {new_tokens} new, attention kept", **row}]


def http(runs: int, new_tokens: int, smoke: bool = False) -> list[dict[str, Any]]:
    """End to end: POST /attention to a real server (`tests.support.server.running_server`, 1
    worker) serving the four small models from ATTENTION_MODELS_DIR, JSON, every layer."""
    import httpx

    from tests.support.server import running_server

    lengths = [16] if smoke else [128, 1024]
    rows = []
    with tempfile.TemporaryDirectory() as root:
        models = Path(root) / "models"
        for model_type, fields in SMALL.items():
            build(models, model_type, _shape(model_type, fields, smoke), 64 if smoke else VOCAB)
        env = {"ATTENTION_MODELS_DIR": str(models), "ATTENTION_WORKERS": "1"}
        with (
            running_server(env) as server,
            httpx.Client(base_url=server.base_url, timeout=600) as client,
        ):
            for model_type in SMALL:
                for case, body in http_bodies(model_type, lengths, new_tokens):
                    rows.append(_post(client, body, model_type, case, runs))
    return rows


def http_bodies(
    model_type: str, lengths: list[int], new_tokens: int
) -> list[tuple[str, dict[str, Any]]]:
    """Per length the attention of every layer, per head up to 128 tokens (1,024 per head would
    be 33.5 M numbers: past the 256 MiB answer limit, 413), averaged beyond; at the longest, the
    8 largest weights of each head's rows (output.top_k); then greedy generation."""
    words = ["once", "upon", "a", "time", "there", "was", "an", "old", "king"]
    bodies = []
    for length in lengths:
        text = " ".join(words[i % len(words)] for i in range(length - 1))  # + <s> (not GPT-2)
        attention = "per_head" if length <= 128 else "average"
        output: dict[str, Any] = {"attention": attention}
        bodies.append((f"{length} tokens, {attention}", {"text": text, "output": output}))
    bodies.append((f"{length} tokens, per head top_k 8", {"text": text, "output": {"top_k": 8}}))
    greedy = {"text": "once upon a time", "generate": {"max_new_tokens": new_tokens}}
    bodies.append((f"greedy {new_tokens} new, per-head rows", greedy))
    return [(case, {"model": model_type, **body}) for case, body in bodies]


def _post(
    client: Any, body: dict[str, Any], model_type: str, case: str, runs: int
) -> dict[str, Any]:
    client.post("/attention", json=body).raise_for_status()  # the first loads the model
    totals, computes, size = [], [], 0
    for _ in range(runs):
        start = time.perf_counter()
        response = client.post("/attention", json=body)
        totals.append((time.perf_counter() - start) * 1e3)
        response.raise_for_status()
        computes.append(response.json()["meta"]["compute_ms"])
        size = len(response.content)
    return {
        "architecture": model_type, "case": case, "http_ms": statistics.median(totals),
        "server_compute_ms": statistics.median(computes), "response_bytes": size,
    }  # fmt: skip


def _shape(model_type: str, fields: dict[str, Any], smoke: bool) -> dict[str, Any]:
    return {**fields, **_tiny(model_type)} if smoke else fields


def _tiny(model_type: str) -> dict[str, Any]:
    if model_type == "gpt2":
        return {"n_embd": 16, "n_layer": 2, "n_head": 2, "n_positions": 64}
    return {
        "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 2,
        "num_attention_heads": 2, "num_key_value_heads": 1, "max_position_embeddings": 64,
    }  # fmt: skip


def available() -> bool:
    """Whether transformers, the reference, is installed (the dev extra)."""
    return find_spec("transformers") is not None


def report(
    smoke: bool, runs: int = 7, *, in_process: bool = True, over_http: bool = True
) -> dict[str, Any]:
    """The machine and both tables' rows; `smoke`: tiny models, 16 tokens, 4 new, 1 run."""
    lengths, new = ([16], 4) if smoke else ([128, 1024], 32)
    runs = 1 if smoke else runs
    machine = {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "load_before": os.getloadavg(),
    }
    return {
        "machine": machine,
        "rows": run(lengths, runs, new, smoke) if in_process else [],
        "http": http(max(1, runs // 2), new, smoke) if over_http else [],
        "load_after": os.getloadavg(),
    }


def tables(measured: dict[str, Any]) -> str:
    """Both tables in Markdown, as docs/models.md shows them."""
    lines = []
    if measured["rows"]:
        lines += ["| architecture | case | in-process ms | transformers eager ms | ratio |",
                  "|---|---|---|---|---|"]  # fmt: skip
        lines += [
            f"| {row['architecture']} | {row['case']} | {row['ours_ms']:,.1f} | "
            f"{row['transformers_ms']:,.1f} | {row['ratio']:.2f} |"
            for row in measured["rows"]
        ]
    if measured["http"]:
        lines += ["", "| architecture | request (HTTP, JSON) | HTTP ms | server ms | answer bytes "
                  "|", "|---|---|---|---|---|"]  # fmt: skip
        lines += [
            f"| {row['architecture']} | {row['case']} | {row['http_ms']:,.1f} | "
            f"{row['server_compute_ms']:,.1f} | {row['response_bytes']:,} |"
            for row in measured["http"]
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny models, 16 tokens, 1 run")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, help="write the machine and the rows here")
    parser.add_argument("--http", action="store_true", help="end to end over HTTP only")
    parser.add_argument("--no-http", action="store_true", help="in-process only")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    measured = report(args.smoke, args.runs, in_process=not args.http, over_http=not args.no_http)
    print(tables(measured))
    if args.json:
        args.json.write_text(json.dumps(measured, indent=2))


if __name__ == "__main__":
    main()
