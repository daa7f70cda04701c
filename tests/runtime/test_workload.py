"""The workload candidates are timed at: real sample values repeated into the user's batch and
sequence length (or whole shapes), checked against the model's fixed dimensions."""

from __future__ import annotations

import numpy as np
import pytest

from frugalml.errors import InputError
from frugalml.runtime.manifest import TensorSpec
from frugalml.runtime.workload import Workload, parse_shape, workload_feeds

TEXT = (TensorSpec(name="input_ids", dtype="int64", shape=("batch", "sequence")),
        TensorSpec(name="attention_mask", dtype="int64", shape=("batch", "sequence")))
IMAGE = (TensorSpec(name="image", dtype="float32", shape=("batch", 3, 224, 224)),)


def _text_samples() -> dict[str, np.ndarray]:
    ids = np.array([[101, 2023, 2003, 102, 0], [101, 7592, 2088, 999, 102]], np.int64)
    return {"input_ids": ids, "attention_mask": (ids != 0).astype(np.int64)}


def test_batch_and_sequence_length_reshape_token_inputs_from_real_values() -> None:
    samples = _text_samples()
    feeds = workload_feeds(samples, TEXT, Workload(batch=8, sequence_length=128))
    assert {k: v.shape for k, v in feeds.items()} == {"input_ids": (8, 128),
                                                      "attention_mask": (8, 128)}
    assert set(np.unique(feeds["input_ids"])) <= set(np.unique(samples["input_ids"]))
    assert set(np.unique(feeds["attention_mask"])) <= {0, 1}
    assert feeds["input_ids"].dtype == np.int64 and feeds["input_ids"].flags.c_contiguous
    # the default workload is the first sample item at its own shape
    assert workload_feeds(samples, TEXT, Workload())["input_ids"].shape == (1, 5)


def test_fixed_dimensions_are_kept_and_a_wrong_shape_says_which_input() -> None:
    image = {"image": np.random.default_rng(0).normal(size=(2, 3, 224, 224)).astype(np.float32)}
    feeds = workload_feeds(image, IMAGE, Workload(batch=4, sequence_length=128))
    assert feeds["image"].shape == (4, 3, 224, 224)  # axis 1 is fixed (3): not a sequence
    with pytest.raises(InputError, match=r"'image' has fixed dimensions.*axes \[2, 3\]"):
        workload_feeds(image, IMAGE, Workload(shapes=(parse_shape("image=1x3x320x320"),)))
    with pytest.raises(InputError, match="does not take"):
        workload_feeds(image, IMAGE, Workload(shapes=(("pixels", (1, 3, 224, 224)),)))


def test_workload_records_and_flags() -> None:
    w = Workload(batch=8, sequence_length=128, shapes=(parse_shape("mask=8x128"),))
    assert Workload.from_dict(w.to_dict()) == w and not w.is_default and Workload().is_default
    assert w.describe() == "batch 8 x 128 tokens, mask 8x128"
    with pytest.raises(InputError, match="NAME=D0xD1"):
        parse_shape("image:1x3")
    with pytest.raises(InputError, match="at least 1"):
        Workload(batch=0)
