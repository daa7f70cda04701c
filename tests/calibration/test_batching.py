"""Batches grouped by length: the same items, fewer padded positions, the limit kept."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from frugalml.calibration import TextSource, make_set
from frugalml.calibration.batching import WINDOW_BATCHES, batched


def test_batched_sorts_within_windows_and_keeps_every_item() -> None:
    items = list(range(100))
    length = {i: (i * 37) % 11 for i in items}
    plain = list(batched(items, 4))
    assert plain[0] == [0, 1, 2, 3] and plain[-1] == [96, 97, 98, 99] and len(plain) == 25
    grouped = list(batched(items, 4, lambda chunk: [length[i] for i in chunk]))
    window = 4 * WINDOW_BATCHES
    flat = [i for b in grouped for i in b]
    assert sorted(flat) == items and all(len(b) == 4 for b in grouped)
    assert flat[:window] == sorted(items[:window], key=length.__getitem__)  # stable sort
    assert flat[window:] == sorted(items[window:], key=length.__getitem__)  # not across windows
    assert list(batched([1, 2, 3], 2)) == [[1, 2], [3]] and list(batched([], 2)) == []


def _padded(batches: list) -> int:
    return sum(f["input_ids"].size for f, _ in batches)


def _rows(batches: list) -> list[tuple]:
    """Each text's tokens (unpadded) with its label, as one sorted list."""
    return sorted((tuple(ids[mask == 1]), int(y)) for f, labels in batches
                  for ids, mask, y in zip(f["input_ids"], f["attention_mask"], labels,
                                          strict=True))


def test_text_sets_grouped_by_length_pad_less_and_score_the_same_items(tmp_path: Path
                                                                        ) -> None:
    from frugalml.calibration import build_text_set, rotten_tomatoes_file
    from frugalml.calibration.reviews import read_reviews
    from frugalml.demo import default_model_dir

    reviews = list(read_reviews(rotten_tomatoes_file()))[:800]
    with (tmp_path / "reviews.jsonl").open("w") as f:
        for r in reviews:
            f.write(json.dumps({"text": r.text, "label": r.label}) + "\n")
    source = TextSource(tmp_path / "reviews.jsonl", default_model_dir(), label_column="label")
    sets = (make_set(source, calibration_size=100),
            build_text_set(rotten_tomatoes_file(), default_model_dir(), calibration_size=100,
                           input_names=("input_ids", "attention_mask", "token_type_ids")))
    for data in sets:
        plain = list(data.batches("evaluation", batch_size=32, limit=600))
        grouped = list(data.batches("evaluation", batch_size=32, limit=600, by_length=True))
        assert [len(y) for _, y in grouped] == [len(y) for _, y in plain]
        assert _rows(grouped) == _rows(plain)
        assert _padded(grouped) < 0.7 * _padded(plain), (_padded(grouped), _padded(plain))
        assert data.size("evaluation") >= 600
    assert np.array_equal(next(sets[0].batches("evaluation", batch_size=4))[0]["input_ids"],
                          sets[0].source.load(sets[0].split.evaluation[:4])["input_ids"])


def test_the_probe_trains_and_tests_on_every_part_of_a_grouped_order() -> None:
    """Items arrive grouped (here: all of one class, then all of the other, as length
    grouping can order them); a first-half split would train on one class only."""
    from frugalml.calibration.evaluate import score_embeddings

    labels = np.repeat([0, 1], 50)
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(100, 8)) + labels[:, None] * 3.0
    score = score_embeddings(reference, reference + 0.01, labels)
    assert (score.probe_train_items, score.probe_test_items) == (50, 100)
    assert score.reference_accuracy == 1.0 and score.accuracy_drop_points == 0.0
