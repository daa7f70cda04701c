"""The sample inputs a bundle keeps and is verified with (see :mod:`.bundle`).

Most models take their evaluation items as they are. A KV-cache decoder's graph also takes
positions and a past, and its data are token windows: the first real window (its unmasked
tokens, at most 32) is cut in two, the first three quarters run through the model into the
cache, and the sample is the rest with that past. So a bundle is verified on the path every
decode step takes (a past read, positions after it), not only on a prompt's prefill: a host
whose kernels compute attention over a past differently (another ONNX Runtime build, an
emulated CPU) fails verification instead of passing on the prefill alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from frugalml.errors import InputError
from frugalml.export.model_info import recorded_layout
from frugalml.runtime.backends import backend_for, get_backend
from frugalml.runtime.generate import continued_feeds

_TOKENS = 32


def bundle_samples(model: Path, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The samples for ``model`` from evaluation ``feeds``: ``feeds`` unchanged unless the
    model is a KV-cache decoder given token windows (then a continued window, see above).

    Raises:
        InputError: a decoder's first window has fewer than 2 unmasked tokens.
    """
    layout = recorded_layout(Path(model))
    if layout is None or set(layout.past_inputs) <= set(feeds):
        return dict(feeds)
    ids = np.asarray(feeds["input_ids"])[0]
    mask = np.asarray(feeds.get("attention_mask", np.ones_like(feeds["input_ids"])))[0]
    tokens = ids[mask.astype(bool)][:_TOKENS]
    if len(tokens) < 2:
        raise InputError(f"The first evaluation window has {len(tokens)} unmasked token(s); "
                         "a decoder's samples need at least 2. Give longer text.")
    session = get_backend(backend_for(Path(model))).open(Path(model), threads=1)
    try:
        return continued_feeds(session.run, layout, tokens[None], len(tokens) * 3 // 4)
    finally:
        session.close()
