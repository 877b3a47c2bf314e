"""Generation: greedy token for token as transformers' generate(do_sample=False), each token's
attention and log-probability as transformers reports them; sampling reproducible by seed."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from attention.decoder import load_decoder
from attention.decoder.generation import Sampling, filtered_logits, generate
from attention.errors import ConfigError
from tests.support.tiny_decoder import reference_decoder, write_tiny_decoder

pytest.importorskip("transformers")
PROMPT = "once upon a time there was an old king"


@pytest.fixture(
    scope="module", params=["gpt2-tied", "llama-gqa-wide-heads-biases", "mistral-window"]
)
def folder(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_decoder(tmp_path_factory.mktemp(request.param), request.param)


@torch.inference_mode()
def test_greedy_matches_transformers_token_attention_and_logprob(folder: Path) -> None:
    model, tokenizer, info = load_decoder(folder)
    prompt = tokenizer.encode([PROMPT]).input_ids
    ours = generate(
        model,
        prompt[0].tolist(),
        Sampling(max_new_tokens=12),
        eos_token_ids=info.config.eos_token_ids,
    )
    theirs = reference_decoder(folder).generate(
        prompt, do_sample=False, max_new_tokens=12, output_attentions=True, output_logits=True,
        return_dict_in_generate=True, eos_token_id=list(info.config.eos_token_ids), pad_token_id=0,
    )  # fmt: skip
    assert ours.token_ids == theirs.sequences[0, prompt.shape[1] :].tolist()
    for index, token in enumerate(ours.token_ids):
        expected = torch.log_softmax(theirs.logits[index][0], dim=-1)[token]
        assert ours.logprobs[index] == pytest.approx(float(expected), abs=1e-4)
        for layer, row in ours.attentions[index].items():
            reference = theirs.attentions[index][layer][0, :, -1]  # (H, S), or (H, window)
            kept = reference.shape[-1]  # a sliding-window cache holds the last `window` keys
            torch.testing.assert_close(row[:, -kept:], reference, atol=1e-4, rtol=0)
            assert not row[:, :-kept].any()


@torch.inference_mode()
def test_cached_steps_equal_one_pass_over_the_whole_text(folder: Path) -> None:
    model, tokenizer, _ = load_decoder(folder)
    prompt = tokenizer.encode([PROMPT]).input_ids[0].tolist()
    result = generate(model, prompt, Sampling(max_new_tokens=6))
    whole = torch.tensor([prompt + result.token_ids])
    full = model(whole, output_attentions=True)
    logprobs = torch.log_softmax(full.logits[0], dim=-1)
    for index, token in enumerate(result.token_ids):
        position = len(prompt) - 1 + index
        assert result.logprobs[index] == pytest.approx(float(logprobs[position, token]), abs=1e-5)
        row = full.attentions[0][0, :, position, : position + 1]
        torch.testing.assert_close(result.attentions[index][0], row, atol=1e-5, rtol=0)


@torch.inference_mode()
def test_sampling_is_reproducible_by_seed(folder: Path) -> None:
    model, tokenizer, _ = load_decoder(folder)
    prompt = tokenizer.encode([PROMPT]).input_ids[0].tolist()

    def sample(seed: int, **fields: float) -> list[int]:
        settings = Sampling(max_new_tokens=16, temperature=1.5, seed=seed, **fields)  # type: ignore[arg-type]
        return generate(model, prompt, settings).token_ids

    assert sample(1) == sample(1)
    assert sample(1) != sample(2)
    greedy = generate(model, prompt, Sampling(max_new_tokens=16)).token_ids
    assert sample(3, top_k=1) == greedy
    assert sample(4, top_p=1e-6) == greedy


@torch.inference_mode()
def test_stops_at_a_stop_string_and_at_the_last_position(folder: Path) -> None:
    model, tokenizer, _ = load_decoder(folder)
    prompt = tokenizer.encode([PROMPT]).input_ids[0].tolist()
    free = generate(model, prompt, Sampling(max_new_tokens=8))
    word = tokenizer.decode(free.token_ids[2:3])
    stopped = generate(
        model, prompt, Sampling(max_new_tokens=8, stop=(word,)), decode=tokenizer.decode
    )
    assert stopped.stop_reason == "stop"
    assert word in tokenizer.decode(stopped.token_ids)
    assert len(stopped.token_ids) <= 3
    room = model.config.max_positions - len(prompt)
    long = generate(model, prompt, Sampling(max_new_tokens=room + 10))
    assert long.stop_reason == "context"
    assert len(long.token_ids) == room + 1  # the last one is chosen, never fed


def test_filtered_logits_keep_the_nucleus() -> None:
    logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
    kept = filtered_logits(logits, Sampling(temperature=1.0, top_p=0.8))
    assert torch.isfinite(kept).tolist() == [True, True, False, False]
    kept = filtered_logits(logits, Sampling(temperature=1.0, top_k=3))
    assert torch.isfinite(kept).tolist() == [True, True, True, False]


@pytest.mark.parametrize(
    "fields", [{"max_new_tokens": 0}, {"temperature": -1.0}, {"top_k": 0}, {"top_p": 0.0}]
)
def test_settings_out_of_bounds_are_refused(fields: dict[str, float]) -> None:
    with pytest.raises(ConfigError) as caught:
        Sampling(**fields)  # type: ignore[arg-type]
    assert caught.value.field == next(iter(fields))
