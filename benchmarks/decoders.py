"""Decoders in-process against transformers eager, on the same folder: one forward pass with
every layer's attention, per architecture and length, and greedy generation.

    .venv/bin/python -m benchmarks.decoders                # small models, 128 and 1,024 tokens
    .venv/bin/python -m benchmarks.decoders --smoke        # tiny models, 16 tokens, 2 runs

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
            shape = {**fields, **_tiny(model_type)} if smoke else fields
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


def http(runs: int, new_tokens: int) -> list[dict[str, Any]]:
    """End to end: POST /attention to a real server (`tests.support.server.launch`) serving the
    small Llama from ATTENTION_MODELS_DIR, JSON, every layer's per-head attention."""
    import httpx

    from tests.support.server import running_server

    words = ["once", "upon", "a", "time", "there", "was", "an", "old", "king"]
    rows = []
    with tempfile.TemporaryDirectory() as root:
        build(Path(root) / "models", "llama", SMALL["llama"], VOCAB)
        env = {"ATTENTION_MODELS_DIR": str(Path(root) / "models"), "ATTENTION_WORKERS": "1"}
        with (
            running_server(env) as server,
            httpx.Client(base_url=server.base_url, timeout=300) as client,
        ):
            for length in (128, 1024):
                text = " ".join(words[i % len(words)] for i in range(length - 1))  # + <s>
                # per head, 1,024 tokens would be 33.5 M numbers: past the 256 MiB answer limit
                attention = "per_head" if length <= 128 else "average"
                body = {"model": "llama", "text": text, "output": {"attention": attention}}
                rows.append(_post(client, body, f"forward {length}, {attention}", runs))
            body = {
                "model": "llama",
                "text": "once upon a time",
                "generate": {"max_new_tokens": new_tokens},
            }
            rows.append(_post(client, body, f"greedy {new_tokens} new", runs))
    return rows


def _post(client: Any, body: dict[str, Any], case: str, runs: int) -> dict[str, Any]:
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
        "architecture": "llama", "case": f"HTTP JSON, {case}", "http_ms": statistics.median(totals),
        "server_compute_ms": statistics.median(computes), "response_bytes": size,
    }  # fmt: skip


def _tiny(model_type: str) -> dict[str, Any]:
    if model_type == "gpt2":
        return {"n_embd": 16, "n_layer": 2, "n_head": 2, "n_positions": 64}
    return {
        "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 2,
        "num_attention_heads": 2, "num_key_value_heads": 1, "max_position_embeddings": 64,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny models, 16 tokens, 2 runs")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, help="write the machine and the rows here")
    parser.add_argument("--http", action="store_true", help="end to end over HTTP instead")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    lengths, runs, new = ([16], 2, 4) if args.smoke else ([128, 1024], args.runs, 32)
    if args.http:
        rows = http(args.runs, new)
        for row in rows:
            print(row)
        return
    rows = run(lengths, runs, new, args.smoke)
    print("| architecture | case | in-process ms | transformers eager ms | ratio |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['architecture']} | {row['case']} | {row['ours_ms']:.1f} | "
            f"{row['transformers_ms']:.1f} | {row['ratio']:.2f} |"
        )
    if args.json:
        machine = {"cpus": os.cpu_count(), "platform": platform.platform(),
                   "torch": torch.__version__, "threads": args.threads,
                   "load": os.getloadavg()}  # fmt: skip
        args.json.write_text(json.dumps({"machine": machine, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
