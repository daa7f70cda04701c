"""Object detection scored the way an app uses a detector: boxes after NMS, not raw tensors.

Two layouts are read. A YOLO-style head (Ultralytics' export layout) is one output
``[N, 4 + C, A]`` or ``[N, A, 4 + C]``: per anchor a box ``cx, cy, w, h`` in input pixels and
``C`` class scores in [0, 1]; it is decoded, kept above a score threshold and reduced by
per-class NMS here. A model that runs NMS itself has outputs named ``*box*`` (``[K, 4]`` or
``[N, K, 4]``, x1 y1 x2 y2), ``*score*`` and ``*label*``/``*class*`` (torchvision and TF
detection exports). Either way the candidate is scored by how many FP32 detections it
reproduces (same class, IoU >= 0.5), and by whether it keeps each image's top one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

SCORE_THRESHOLD = 0.25
MAP_THRESHOLD = 0.001  # mAP ranks detections down to here, as detection benchmarks do
NMS_IOU = 0.5
MATCH_IOU = 0.5
MAX_DETECTIONS = 300


def yolo_layout(output: np.ndarray) -> str | None:
    """``"channels-first"`` for ``[N, 4+C, A]``, ``"channels-last"`` for ``[N, A, 4+C]``, or
    None when ``output`` is not a YOLO head: 3-D, more anchors than channels, at least one
    class, score channels within [0, 1] and box channels that are not."""
    if output.ndim != 3 or min(output.shape[1:]) < 5:
        return None
    first = output.shape[1] < output.shape[2]
    head = output if first else output.transpose(0, 2, 1)
    scores, boxes = head[:, 4:], head[:, :4]
    if not np.isfinite(head).all() or scores.min() < 0 or scores.max() > 1:
        return None
    if boxes.max() <= 1.0:  # all in [0, 1]: a probability map, not pixel boxes
        return None
    return "channels-first" if first else "channels-last"


@dataclasses.dataclass(frozen=True, slots=True)
class Detections:
    """One image's detections: ``boxes [K, 4]`` (x1, y1, x2, y2), ``scores [K]``, ``classes``."""

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray


def decode(output: np.ndarray, layout: str, *, threshold: float = SCORE_THRESHOLD
           ) -> list[Detections]:
    """Per image: boxes whose best class scores at least ``threshold``, after per-class NMS."""
    head = output if layout == "channels-first" else output.transpose(0, 2, 1)
    found = []
    for item in head.astype(np.float32, copy=False):
        scores_all = item[4:]
        classes = scores_all.argmax(0)
        scores = scores_all[classes, np.arange(item.shape[1])]
        keep = np.flatnonzero(scores >= threshold)
        cx, cy, w, h = item[:4, keep]
        boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)
        chosen = _nms(boxes, scores[keep], classes[keep])
        found.append(Detections(boxes[chosen], scores[keep][chosen], classes[keep][chosen]))
    return found


def clipped(found: Detections, image_size: tuple[int, int] | None) -> Detections:
    """``found`` with its boxes clipped to a ``(width, height)`` image (None: as they are)."""
    if image_size is None or not len(found.boxes):
        return found
    boxes = found.boxes.copy()
    boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, image_size[0])
    boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, image_size[1])
    return Detections(boxes, found.scores, found.classes)


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one ``[4]`` box with each of ``boxes [K, 4]`` (x1, y1, x2, y2)."""
    x1, y1 = np.maximum(box[0], boxes[:, 0]), np.maximum(box[1], boxes[:, 1])
    x2, y2 = np.minimum(box[2], boxes[:, 2]), np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-12)


def _nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Indices kept by greedy per-class NMS, best first, at most :data:`MAX_DETECTIONS`."""
    order = np.argsort(-scores, kind="stable")
    kept: list[int] = []
    alive = np.ones(len(order), bool)
    for rank, i in enumerate(order):
        if not alive[rank]:
            continue
        kept.append(int(i))
        if len(kept) == MAX_DETECTIONS:
            break
        rest = order[rank + 1:]
        same = classes[rest] == classes[i]
        overlap = iou(boxes[i], boxes[rest]) > NMS_IOU
        alive[rank + 1:] &= ~(same & overlap)
    return np.array(kept, dtype=np.int64)


def matched(reference: Detections, candidate: Detections) -> np.ndarray:
    """Per FP32 detection (best first): whether a candidate detection of its class overlaps it
    at IoU >= :data:`MATCH_IOU` (each candidate detection matches at most once)."""
    used = np.zeros(len(candidate.scores), bool)
    hits = np.zeros(len(reference.scores), bool)
    for k in np.argsort(-reference.scores, kind="stable"):
        free = np.flatnonzero(~used & (candidate.classes == reference.classes[k]))
        if not len(free):
            continue
        overlaps = iou(reference.boxes[k], candidate.boxes[free])
        best = int(overlaps.argmax())
        if overlaps[best] >= MATCH_IOU:
            used[free[best]] = hits[k] = True
    return hits


def nms_outputs(outputs: dict[str, np.ndarray]) -> tuple[str, str, str] | None:
    """The (boxes, scores, labels) output names of a model that runs NMS itself, or None."""
    def named(*words: str) -> str | None:
        return next((k for k in outputs if any(w in k.lower() for w in words)), None)

    boxes, scores, labels = named("box"), named("score"), named("label", "class")
    if None in (boxes, scores, labels) or outputs[boxes].shape[-1:] != (4,):
        return None
    return boxes, scores, labels  # type: ignore[return-value]


def decode_nms(outputs: dict[str, np.ndarray], names: tuple[str, str, str], *,
               threshold: float = SCORE_THRESHOLD) -> list[Detections]:
    """Per image the model's own detections scoring at least ``threshold`` (padding rows of a
    fixed-size ``[N, K, ...]`` output score 0). A batch-less ``[K, 4]`` output is one image."""
    boxes, scores, labels = (np.asarray(outputs[n]) for n in names)
    if boxes.ndim == 2:
        boxes, scores, labels = boxes[None], scores[None], labels[None]
    found = []
    for b, s, c in zip(boxes, scores.reshape(len(boxes), -1), labels.reshape(len(boxes), -1),
                       strict=True):
        keep = s >= threshold
        found.append(Detections(b[keep].astype(np.float32), s[keep], c[keep].astype(np.int64)))
    return found


Decoder = Callable[..., list[Detections]]  # (outputs by name, threshold=) -> per image


def decoder_for(outputs: dict[str, np.ndarray]) -> tuple[Decoder, tuple[str, ...]]:
    """How to read detections from a model's outputs, and the outputs that hold them.

    Raises:
        ValueError: neither a YOLO-style head nor NMS outputs are among ``outputs``.
    """
    for name, value in outputs.items():
        layout = yolo_layout(value)
        if layout is not None:
            return (lambda out, t=SCORE_THRESHOLD, n=name, lay=layout:
                    decode(out[n], lay, threshold=t)), (name,)
    names = nms_outputs(outputs)
    if names is None:
        raise ValueError("no detection outputs")
    return (lambda out, t=SCORE_THRESHOLD: decode_nms(out, names, threshold=t)), names


class DetectionTally:
    """Detection agreement of a candidate with FP32, streamed over batches."""

    def __init__(self, decoder: Decoder) -> None:
        self.decoder = decoder
        self.fp32_detections = self.candidate_detections = self.matched = 0
        self.images = self.images_with_detections = self.top_kept = 0
        self.truths: list[np.ndarray] = []
        self.ranked: tuple[list[Detections], list[Detections]] = ([], [])

    def map50(self) -> tuple[float, float]:
        """mAP@0.5 of FP32 and of the candidate against the labelled boxes."""
        return (average_precision(self.ranked[0], self.truths),
                average_precision(self.ranked[1], self.truths))

    def add(self, reference: dict[str, np.ndarray], candidate: dict[str, np.ndarray],
            truths: list[np.ndarray] | None = None, image_size: tuple[int, int] | None = None
            ) -> None:
        """One batch of both models' outputs, by name, its images' labelled boxes, and the
        input's (width, height), to which boxes are clipped as apps do."""
        def read(outputs: dict[str, np.ndarray], threshold: float) -> list[Detections]:
            return [clipped(d, image_size) for d in self.decoder(outputs, threshold)]

        if truths is not None:  # mAP ranks every detection: read them at a low threshold
            self.truths += truths
            self.ranked[0].extend(read(reference, MAP_THRESHOLD))
            self.ranked[1].extend(read(candidate, MAP_THRESHOLD))
        for ref, cand in zip(read(reference, SCORE_THRESHOLD), read(candidate, SCORE_THRESHOLD),
                             strict=True):
            hits = matched(ref, cand)
            self.images += 1
            self.fp32_detections += len(hits)
            self.candidate_detections += len(cand.scores)
            self.matched += int(hits.sum())
            if len(hits):
                self.images_with_detections += 1
                self.top_kept += bool(hits[int(np.argmax(ref.scores))])

    def agreement(self) -> float:
        """Share of FP32 detections the candidate reproduces (1.0 when FP32 finds none)."""
        return self.matched / self.fp32_detections if self.fp32_detections else 1.0

    def summary(self) -> dict[str, float]:
        """The numbers a report shows."""
        return {"detection_agreement_with_fp32": self.agreement(),
                "top_detection_kept": (self.top_kept / self.images_with_detections
                                       if self.images_with_detections else 1.0),
                "fp32_detections": self.fp32_detections,
                "candidate_detections": self.candidate_detections,
                "images": self.images, "score_threshold": SCORE_THRESHOLD,
                "match_iou": MATCH_IOU}


def average_precision(detections: list[Detections], truths: list[np.ndarray],
                      iou_threshold: float = MATCH_IOU) -> float:
    """mAP@``iou_threshold``: per class, the area under the all-points interpolated
    precision-recall curve of every image's detections ranked by score, against the labelled
    boxes ``truths`` (per image ``[K, 5]``: x1, y1, x2, y2, class); mean over the classes that
    have labelled boxes.

    Raises:
        ValueError: no labelled box at all.
    """
    classes = sorted({int(c) for t in truths for c in t[:, 4]})
    if not classes:
        raise ValueError("no labelled boxes")
    aps = []
    for cls in classes:
        scored = [(float(s), i, box) for i, d in enumerate(detections)
                  for s, box, c in zip(d.scores, d.boxes, d.classes, strict=True) if c == cls]
        scored.sort(key=lambda x: -x[0])
        wanted = [t[t[:, 4] == cls, :4] for t in truths]
        used = [np.zeros(len(w), bool) for w in wanted]
        hits = np.zeros(len(scored), bool)
        for k, (_, image, box) in enumerate(scored):
            if len(wanted[image]):
                overlaps = iou(box, wanted[image])
                best = int(overlaps.argmax())
                if overlaps[best] >= iou_threshold and not used[image][best]:
                    used[image][best] = hits[k] = True
        total = sum(len(w) for w in wanted)
        recall = np.cumsum(hits) / total
        precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
        aps.append(_area(recall, precision))
    return float(np.mean(aps))


def _area(recall: np.ndarray, precision: np.ndarray) -> float:
    """Area under the precision envelope (precision made non-increasing in recall)."""
    r = np.concatenate([[0.0], recall, [recall[-1] if len(recall) else 0.0]])
    p = np.concatenate([[1.0], precision, [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]
    return float(np.sum((r[1:] - r[:-1]) * p[1:]))
