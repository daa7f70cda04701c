"""Running text cut into fixed token windows: the items a language model is scored on.

Perplexity is measured on contiguous text, not on lines: a decoder's loss on a 10-token line is
dominated by its first tokens, which have no context. So the file is tokenized once as one
stream (the model's own tokenizer, no special tokens) and cut into non-overlapping windows of
``window`` tokens; each window is one item, with an all-ones attention mask.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from frugalml.errors import CalibrationError


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
        from frugalml.calibration.text import _tokenizer, tree_digest_of_tokenizer

        if int(window) < 2:
            raise CalibrationError(f"A token window needs at least 2 tokens (perplexity scores "
                                   f"each next token); got {window}.")
        self.path, self.window = Path(path), int(window)
        self.tokenizer_dir, self.input_names = Path(tokenizer_dir), tuple(input_names)
        self._tokenizer_digest = tree_digest_of_tokenizer(self.tokenizer_dir)
        ids = _tokenizer(str(self.tokenizer_dir))(
            self._read(), add_special_tokens=False, return_attention_mask=False)["input_ids"]
        count = len(ids) // self.window
        if count == 0:
            raise CalibrationError(f"{self.path} holds {len(ids)} tokens, fewer than one window "
                                   f"of {self.window}. Use a shorter --window or more text.")
        self._windows = np.asarray(ids[:count * self.window], dtype=np.int64).reshape(
            count, self.window)

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
        """File, window and tokenizer."""
        return {"path": str(self.path), "window": self.window,
                "tokenizer_digest": self._tokenizer_digest, "input_names": list(self.input_names)}

    def content_digest(self) -> str:
        """sha256 of every window's tokens in order."""
        return hashlib.sha256(self._windows.tobytes()).hexdigest()

    def load(self, indices: Sequence[int]) -> dict[str, np.ndarray]:
        """The windows' token ids and all-ones masks (no padding: every window is full)."""
        ids = self._windows[list(indices)]
        feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        return {name: feeds[name] for name in self.input_names if name in feeds}
