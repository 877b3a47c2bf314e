"""Same configuration and seed, same numbers: in this process and in fresh Python processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from attention import AttentionConfig, AttentionModel

REPO_ROOT = Path(__file__).resolve().parents[2]
SEEDS = (0, 1)
TOKENS = [["the", "man", "who", "passes", "the", "sentence"], ["should", "swing", "the", "sword"]]

FINGERPRINT = """
import hashlib, sys
from attention import AttentionConfig, AttentionModel

def fingerprint(seed):
    config = AttentionConfig(
        d_model=16, num_heads=4, num_kv_heads=2, add_bias_kv=True,
        positional_encoding="learned", vocab_size=32, seed=seed,
    )
    model = AttentionModel(config)
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().contiguous().numpy().tobytes())
    digest.update(model.embed_tokens(TOKENS).numpy().tobytes())
    return digest.hexdigest()
"""


def _fingerprint_here(seed: int) -> str:
    namespace: dict[str, object] = {"TOKENS": TOKENS}
    exec(FINGERPRINT, namespace)  # the very code the subprocesses run
    fingerprint = namespace["fingerprint"]
    assert callable(fingerprint)
    return str(fingerprint(seed))


def _start(hash_seed: str) -> subprocess.Popen[str]:
    """A fresh interpreter, with its own string-hash salt, printing one fingerprint per seed."""
    program = f"{FINGERPRINT}\nTOKENS = {TOKENS!r}\n"
    program += f"for seed in {SEEDS!r}:\n    print(fingerprint(seed))\n"
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", program],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _fingerprints(process: subprocess.Popen[str]) -> list[str]:
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    return stdout.split()


def test_weights_and_string_embeddings_are_bit_identical_across_processes() -> None:
    first, second = _start("1"), _start("2")  # run side by side
    in_first, in_second = _fingerprints(first), _fingerprints(second)
    assert len(in_first) == len(SEEDS)
    assert in_first == in_second
    assert in_first == [_fingerprint_here(seed) for seed in SEEDS]


def test_different_seeds_give_different_weights_and_embeddings() -> None:
    assert _fingerprint_here(0) != _fingerprint_here(1)


def _model(seed: int, **fields: Any) -> AttentionModel:
    return AttentionModel(AttentionConfig(d_model=16, num_heads=4, seed=seed, **fields))


def test_every_parameter_differs_between_seeds() -> None:
    first, second = _model(0).state_dict(), _model(1).state_dict()
    for name, tensor in first.items():
        if tensor.abs().sum() > 0:  # biases start at zero for every seed
            assert not torch.equal(tensor, second[name]), name


def test_same_seed_gives_the_same_output_for_the_same_tokens() -> None:
    outputs = []
    for _ in range(2):
        model = _model(3)
        outputs.append(model(model.embed_tokens(TOKENS), trace=True).output)
    assert torch.equal(outputs[0], outputs[1])


def test_string_embeddings_depend_on_the_seed_not_on_the_rest_of_the_config() -> None:
    small = _model(5).embed_tokens(TOKENS)
    other = _model(5, num_kv_heads=1, vocab_size=7, positional_encoding="rope").embed_tokens(TOKENS)
    assert torch.equal(small, other)
    assert not torch.equal(small, _model(6).embed_tokens(TOKENS))


def test_one_components_weights_do_not_shift_when_another_is_added() -> None:
    # learned positions draw from their own generator: the attention weights stay as they were
    plain, learned = _model(9, positional_encoding="none"), _model(9, positional_encoding="learned")
    for name, tensor in plain.attention.state_dict().items():
        assert torch.equal(tensor, learned.attention.state_dict()[name]), name
    assert torch.equal(plain.tokens.ids.weight, learned.tokens.ids.weight)
