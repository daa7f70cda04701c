"""Token-by-token generation for decoder bundles: a KV-cache loop over one backend session.

A decoder bundle's graph takes ``input_ids``, ``attention_mask``, ``position_ids`` and one
``past_key_values.<layer>.<key|value>`` per layer, and returns ``logits`` and the matching
``present.*`` tensors (the layout its manifest's ``generation`` section names). The prompt
runs once (prefill, past length 0); each new token then runs alone with the cache. Every call
keeps its own cache and random generator, so one Model generates from many threads at once.
Where the graph updates its cache in place (``shared_buffer``), a backend may keep one
preallocated buffer per layer instead of copying the cache every step (see
:meth:`frugalml.runtime.backends.onnxruntime.OnnxRuntimeSession.shared_cache`).

Only numpy here: sampling (temperature, top-k, top-p) is a few array operations, and the
tokenizer is the small ``tokenizers`` wheel (the ``runtime-text`` extra), never transformers.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from frugalml.errors import InputError

Run = Callable[[Mapping[str, np.ndarray]], dict[str, np.ndarray]]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DecoderLayout:
    """What a KV-cache graph takes and returns, from the manifest's ``generation`` section."""

    past_inputs: tuple[str, ...]       # past_key_values.0.key, past_key_values.0.value, ...
    present_outputs: tuple[str, ...]   # present.0.key, ... in the same order
    kv_heads: int
    head_dim: int
    max_positions: int
    eos_token_ids: tuple[int, ...]
    tokenizer_file: str | None = None
    kv_dtype: str = "float32"
    # The graph's attention (GroupQueryAttention) writes new positions into its past
    # tensors in place, so past and present may be one preallocated buffer per layer: no
    # copy of the cache per step (measured on SmolLM2-135M W4A8: 1.15-1.18x decode tokens/s).
    shared_buffer: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form, as the manifest holds it."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DecoderLayout:
        """Parse the manifest's ``generation`` section.

        Raises:
            ValueError: a field is missing or has the wrong type.
        """
        try:
            layout = cls(past_inputs=tuple(map(str, data["past_inputs"])),
                         present_outputs=tuple(map(str, data["present_outputs"])),
                         kv_heads=int(data["kv_heads"]), head_dim=int(data["head_dim"]),
                         max_positions=int(data["max_positions"]),
                         eos_token_ids=tuple(int(t) for t in data["eos_token_ids"]),
                         tokenizer_file=data.get("tokenizer_file"),
                         kv_dtype=str(data.get("kv_dtype", "float32")),
                         shared_buffer=bool(data.get("shared_buffer", False)))
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"the generation section is malformed: {e}") from e
        if len(layout.past_inputs) != len(layout.present_outputs) or not layout.past_inputs:
            raise ValueError("the generation section needs as many past inputs as present "
                             "outputs, at least one")
        return layout

    def bytes_per_token(self, batch: int = 1) -> int:
        """KV-cache bytes one position takes over every layer (keys and values)."""
        itemsize = np.dtype(self.kv_dtype).itemsize
        return batch * len(self.past_inputs) * self.kv_heads * self.head_dim * itemsize


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Sampling:
    """How the next token is chosen. ``temperature`` 0 is greedy (argmax); otherwise the
    logits are divided by it, cut to the ``top_k`` best (0: all) and to the smallest set whose
    probability reaches ``top_p``, and sampled with a generator seeded by ``seed``."""

    max_new_tokens: int = 128
    temperature: float = 0.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int | None = None
    stop_token_ids: tuple[int, ...] | None = None   # None: the model's end-of-text tokens

    def __post_init__(self) -> None:
        problems = []
        if self.max_new_tokens < 1:
            problems.append(f"max_new_tokens {self.max_new_tokens} (give 1 or more)")
        if not self.temperature >= 0:
            problems.append(f"temperature {self.temperature} (give 0 for greedy, or > 0)")
        if self.top_k < 0:
            problems.append(f"top_k {self.top_k} (give 0 for no cut, or > 0)")
        if not 0 < self.top_p <= 1:
            problems.append(f"top_p {self.top_p} (give a value in (0, 1])")
        if problems:
            raise InputError("Cannot generate with " + "; ".join(problems) + ".")


@dataclasses.dataclass(frozen=True, slots=True)
class Token:
    """One generated token: its id, the text it added, and how long its step took."""

    id: int
    text: str
    seconds: float


def choose(logits: np.ndarray, sampling: Sampling, rng: np.random.Generator) -> int:
    """The next token id from one row of logits."""
    if sampling.temperature == 0:
        return int(np.argmax(logits))
    scaled = logits.astype(np.float64) / sampling.temperature
    order = np.argsort(-scaled, kind="stable")
    if sampling.top_k:
        order = order[:sampling.top_k]
    probs = np.exp(scaled[order] - scaled[order[0]])
    probs /= probs.sum()
    if sampling.top_p < 1:
        keep = int(np.searchsorted(np.cumsum(probs), sampling.top_p) + 1)
        order, probs = order[:keep], probs[:keep] / probs[:keep].sum()
    return int(order[rng.choice(len(order), p=probs)])


class Cache(Protocol):
    """One generation's KV cache and the graph that fills it, position by position."""

    def prefill(self, ids: Sequence[int]) -> np.ndarray:
        """Run the prompt with nothing cached; the last position's logits."""
        ...

    def step(self, token: int) -> np.ndarray:
        """Run one token after everything so far; its logits."""
        ...


class CopiedCache:
    """The cache as the graph returns it: each run's present tensors are the next run's past
    (any backend, any KV graph)."""

    def __init__(self, run: Run, layout: DecoderLayout) -> None:
        self._run, self._layout = run, layout
        self._past: dict[str, np.ndarray] = {}
        self._done = 0

    def prefill(self, ids: Sequence[int]) -> np.ndarray:
        """See :class:`Cache`."""
        return self._logits(prefill_feeds(self._layout, np.asarray([ids], dtype=np.int64)))

    def step(self, token: int) -> np.ndarray:
        """See :class:`Cache`."""
        return self._logits({"input_ids": np.asarray([[token]], dtype=np.int64),
                             "attention_mask": np.ones((1, self._done + 1), dtype=np.int64),
                             "position_ids": np.asarray([[self._done]], dtype=np.int64),
                             **self._past})

    def _logits(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        outputs = self._run(feeds)
        self._done += feeds["input_ids"].shape[1]
        self._past = {past: outputs[present] for past, present
                      in zip(self._layout.past_inputs, self._layout.present_outputs,
                             strict=True)}
        logits: np.ndarray = outputs["logits"][0, -1]
        return logits


def decode(open_cache: Callable[[int], Cache], layout: DecoderLayout, prompt: Sequence[int],
           sampling: Sampling) -> Iterator[tuple[int, float]]:
    """Yield ``(token id, seconds of its step)`` until a stop token (not yielded), the
    token limit, or the model's position limit. ``open_cache(positions)`` gives a cache with
    room for the prompt and every new token.

    Raises:
        InputError: an empty prompt, or one as long as the model's position limit.
    """
    if not len(prompt):
        raise InputError("The prompt is empty; give at least one token.")
    if len(prompt) >= layout.max_positions:
        raise InputError(
            f"The prompt is {len(prompt)} tokens; this model takes at most "
            f"{layout.max_positions} positions, prompt and new tokens together. Shorten the "
            "prompt.")
    stops = set(layout.eos_token_ids if sampling.stop_token_ids is None
                else sampling.stop_token_ids)
    rng = np.random.default_rng(sampling.seed)
    budget = min(sampling.max_new_tokens, layout.max_positions - len(prompt))
    cache = open_cache(len(prompt) + budget)
    token = -1
    for step in range(budget):
        started = time.perf_counter()
        logits = cache.prefill(prompt) if step == 0 else cache.step(token)
        token = choose(logits, sampling, rng)
        if token in stops:
            return
        yield token, time.perf_counter() - started


def prefill_feeds(layout: DecoderLayout, input_ids: np.ndarray,
                  attention_mask: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The graph's inputs for whole sequences with nothing cached (past length 0): a prompt's
    prefill, or a scoring window. Positions count the unmasked tokens of each row."""
    mask = np.ones_like(input_ids) if attention_mask is None else attention_mask
    positions = np.maximum(np.cumsum(mask, axis=1) - 1, 0).astype(np.int64)
    empty = np.zeros((input_ids.shape[0], layout.kv_heads, 0, layout.head_dim),
                     dtype=layout.kv_dtype)
    return {"input_ids": input_ids.astype(np.int64), "attention_mask": mask.astype(np.int64),
            "position_ids": positions, **dict.fromkeys(layout.past_inputs, empty)}


def continued_feeds(run: Run, layout: DecoderLayout, input_ids: np.ndarray, cached: int
                    ) -> dict[str, np.ndarray]:
    """The graph's inputs for ``input_ids[:, cached:]`` once its first ``cached`` tokens have
    been run (by ``run``) into the cache: a past of length ``cached`` and positions after it,
    the path a decode step takes (no padding)."""
    if not 0 < cached < input_ids.shape[1]:
        raise ValueError(f"cached {cached} must leave tokens on both sides of the cut")
    done = run(prefill_feeds(layout, input_ids[:, :cached]))
    batch, total = input_ids.shape
    positions = np.tile(np.arange(cached, total, dtype=np.int64), (batch, 1))
    return {"input_ids": input_ids[:, cached:].astype(np.int64),
            "attention_mask": np.ones((batch, total), dtype=np.int64), "position_ids": positions,
            **{past: np.asarray(done[present]) for past, present
               in zip(layout.past_inputs, layout.present_outputs, strict=True)}}


class TextStream:
    """Turn token ids into text pieces as they come: the whole sequence is decoded each time
    and the new suffix returned, held back while it ends inside a multi-byte character (so a
    character cut by the token limit is never streamed; the full decode shows it as U+FFFD)."""

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        self._ids: list[int] = []
        self._sent = ""

    def add(self, token: int) -> str:
        self._ids.append(token)
        text = self._tokenizer.decode(self._ids, skip_special_tokens=True)
        if text.endswith("\ufffd"):
            return ""
        piece, self._sent = text[len(self._sent):], text
        return piece


@dataclasses.dataclass(frozen=True, slots=True)
class Generation:
    """A finished generation: the text, its token ids, and the time of each step (the first
    is the prompt's prefill: time to first token)."""

    text: str
    token_ids: tuple[int, ...]
    prompt_tokens: int
    finish: str                       # "stop" (a stop token), "length" (a token limit)
    step_seconds: tuple[float, ...]

    @property
    def first_token_s(self) -> float | None:
        """Time to first token (the prefill), or None when nothing was generated."""
        return self.step_seconds[0] if self.step_seconds else None

    @property
    def decode_tokens_per_s(self) -> float | None:
        """Tokens per second after the first (the cached decode steps)."""
        rest = self.step_seconds[1:]
        return len(rest) / sum(rest) if rest and sum(rest) > 0 else None

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (what ``frugal generate --json`` prints)."""
        return {"text": self.text, "token_ids": list(self.token_ids),
                "prompt_tokens": self.prompt_tokens, "finish": self.finish,
                "first_token_s": self.first_token_s,
                "decode_tokens_per_s": self.decode_tokens_per_s,
                "step_seconds": list(self.step_seconds)}
