"""Running text cut into fixed token windows: the items a language model is scored on.

Perplexity is measured on contiguous text, not on lines: a decoder's loss on a 10-token line is
dominated by its first tokens, which have no context. So the file is tokenized once as one
stream (the model's own tokenizer) and cut into non-overlapping windows of ``window`` tokens;
each window is one item, with an all-ones attention mask. A window begins with the special
tokens the runtime puts before a prompt (:func:`frugalml.runtime.prompt.special_prefix`: BOS for
Llama or Gemma, nothing for SmolLM2), then ``window`` minus that many tokens of text: a model is
scored on inputs encoded as it will be given them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from frugalml.calibration.text import _tokenizer, tree_digest_of_tokenizer
from frugalml.errors import CalibrationError
from frugalml.runtime.prompt import special_prefix


class TokenWindows:
    """Non-overlapping ``window``-token slices of one text file; the tail shorter than a window
    is dropped."""

    kind = "token-windows"

    def __init__(self, path: Path, tokenizer_dir: Path, *, window: int,
                 input_names: Sequence[str] = ("input_ids", "attention_mask")) -> None:
        """Tokenize the whole file once.

        Raises:
            CalibrationError: missing or unreadable file, a window under 2 tokens, or a file
                too short for one window.
        """
        if int(window) < 2:
            raise CalibrationError(f"A token window needs at least 2 tokens (perplexity scores "
                                   f"each next token); got {window}.")
        self.path, self.window = Path(path), int(window)
        self.tokenizer_dir, self.input_names = Path(tokenizer_dir), tuple(input_names)
        self._tokenizer_digest = tree_digest_of_tokenizer(self.tokenizer_dir)
        tokenizer = _tokenizer(str(self.tokenizer_dir))

        def encode(text: str, special: bool) -> list[int]:
            return tokenizer(text, add_special_tokens=special,
                             return_attention_mask=False)["input_ids"]

        try:
            self.prefix = special_prefix(encode)
        except ValueError as e:
            raise CalibrationError(f"{self.tokenizer_dir}: {e}") from e
        body = self.window - len(self.prefix)
        if body < 1:
            raise CalibrationError(f"A window of {self.window} tokens holds no text after the "
                                   f"tokenizer's {len(self.prefix)} leading special tokens; use "
                                   "a longer --window.")
        ids = encode(self._read(), False)
        count = len(ids) // body
        if count == 0:
            raise CalibrationError(f"{self.path} holds {len(ids)} tokens, fewer than one window "
                                   f"of {self.window}. Use a shorter --window or more text.")
        text = np.asarray(ids[:count * body], dtype=np.int64).reshape(count, body)
        prefix = np.broadcast_to(np.asarray(self.prefix, dtype=np.int64), (count, len(self.prefix)))
        self._windows = np.ascontiguousarray(np.concatenate([prefix, text], axis=1))

    def _read(self) -> str:
        try:
            return self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise CalibrationError(f"Cannot read {self.path} as UTF-8 text: {e}.") from e

    def keys(self) -> tuple[str, ...]:
        """A hash of each window's tokens (a repeated passage is one item)."""
        return tuple(hashlib.sha256(w.tobytes()).hexdigest() for w in self._windows)

    def labels(self) -> tuple[int | None, ...]:
        """None: the labels of a language model are its own next tokens."""
        return (None,) * len(self._windows)

    def describe(self) -> dict[str, Any]:
        """File, window, the special tokens each window starts with, and tokenizer."""
        return {"path": str(self.path), "window": self.window, "prefix": list(self.prefix),
                "tokenizer_digest": self._tokenizer_digest, "input_names": list(self.input_names)}

    def content_digest(self) -> str:
        """sha256 of every window's tokens in order."""
        return hashlib.sha256(self._windows.tobytes()).hexdigest()

    def load(self, indices: Sequence[int]) -> dict[str, np.ndarray]:
        """The windows' token ids and all-ones masks (no padding: every window is full)."""
        ids = self._windows[list(indices)]
        feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        return {name: feeds[name] for name in self.input_names if name in feeds}
