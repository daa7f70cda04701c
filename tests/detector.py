"""A YOLOv8-style detector built in torch for tests: a small CNN backbone, anchor-free heads at
three strides, and the exported layout of Ultralytics' models: ONE output ``[N, 4 + C, A]``
that concatenates decoded boxes (cx, cy, w, h in pixels of the 128 x 128 input) with sigmoid
class scores. The weights are seeded, with the class logits scaled so that the scores spread
over (0, 1) on real photos: that is the layout whose shared output scale broke a real detector
(box coordinates up to 128, scores below 1)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

SIZE = 128
CLASSES = 3
STRIDES = (8, 16, 32)


def yolo_detector(seed: int = 0) -> Any:
    """The detector as an eval-mode ``torch.nn.Module`` taking ``images [N, 3, 128, 128]``."""
    import torch
    from torch import nn

    torch.manual_seed(seed)

    def block(c_in: int, c_out: int, stride: int) -> nn.Module:
        return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1), nn.BatchNorm2d(c_out),
                             nn.ReLU())

    class Detector(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Sequential(block(3, 32, 2), block(32, 48, 2), block(48, 64, 2))
            self.down16, self.down32 = block(64, 96, 2), block(96, 128, 2)
            self.box = nn.ModuleList(nn.Conv2d(c, 4, 1) for c in (64, 96, 128))
            self.cls = nn.ModuleList(nn.Conv2d(c, CLASSES, 1) for c in (64, 96, 128))
            grids = []
            for stride in STRIDES:
                n = SIZE // stride
                ys, xs = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
                grids.append(torch.stack([xs, ys]).reshape(2, -1).float() + 0.5)
            self.register_buffer("grid", torch.cat(grids, 1))
            self.register_buffer("stride", torch.cat([torch.full((n * n,), float(s)) for s, n in
                                                      zip(STRIDES, (16, 8, 4), strict=True)]))

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            p8 = self.stem(images)
            p16 = self.down16(p8)
            p32 = self.down32(p16)
            feats = (p8, p16, p32)
            dist = torch.cat([h(f).flatten(2) for h, f in zip(self.box, feats, strict=True)], 2)
            logits = torch.cat([h(f).flatten(2) for h, f in zip(self.cls, feats, strict=True)],
                               2)
            dist = nn.functional.softplus(dist) * 2.0  # distances to the 4 sides, in cells
            lt, rb = dist[:, :2], dist[:, 2:]
            centre = (self.grid + (rb - lt) / 2) * self.stride
            wh = (lt + rb) * self.stride
            return torch.cat([centre, wh, torch.sigmoid(logits)], 1)

    net = Detector()
    # BatchNorm statistics from real photos (cumulative, as after training), so features are
    # normalised and a head's logits are a strong function of them, as in a trained model.
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = None
    with torch.no_grad():
        net.train()(torch.from_numpy(detector_batch(64, start=900)))
        for head in net.cls:  # logits about N(-4.5, 2): a few detections per photo
            nn.init.normal_(head.weight, std=4.0 / head.in_channels ** 0.5)
            head.bias.fill_(-7.0)
    return net.eval()


def detector_batch(count: int, start: int = 0) -> np.ndarray:
    """ImageNet-sample photos resized to 128 x 128, ``x / 255``, NCHW (YOLO's preprocessing)."""
    from PIL import Image

    from bench._data import IMAGENET

    names = sorted(p.name for p in IMAGENET.glob("*.jpg"))[start:start + count]
    out = np.zeros((len(names), 3, SIZE, SIZE), np.float32)
    for i, name in enumerate(names):
        with Image.open(IMAGENET / name) as im:
            pixels = np.asarray(im.convert("RGB").resize((SIZE, SIZE), Image.BILINEAR))
        out[i] = pixels.transpose(2, 0, 1) / np.float32(255.0)
    return out


def with_nms(source: Path, dest: Path, *, score_threshold: float = 0.25) -> Path:
    """The exported detector with ONNX NonMaxSuppression appended, for a batch of one image:
    outputs ``boxes [K, 4]`` (x1, y1, x2, y2 pixels), ``scores [K]`` and ``labels [K]``, the
    layout of torchvision-style detection exports."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(source))
    head = model.graph.output[0].name
    del model.graph.output[:]
    consts = {"starts_box": [0], "ends_box": [4], "starts_cls": [4], "ends_cls": [4 + CLASSES],
              "axis1": [1], "zero": [0], "max_per_class": [100], "col1": [1], "col2": [2]}
    inits = [numpy_helper.from_array(np.array(v, np.int64), k) for k, v in consts.items()]
    inits += [numpy_helper.from_array(np.array(v, np.float32), k) for k, v in
              (("iou", [0.5]), ("score", [score_threshold]), ("half", [0.5]))]
    n = helper.make_node
    nodes = [
        n("Slice", [head, "starts_box", "ends_box", "axis1"], ["cxcywh_t"], name="nms_boxes"),
        n("Transpose", ["cxcywh_t"], ["cxcywh"], perm=[0, 2, 1], name="nms_transpose"),
        n("Split", ["cxcywh"], ["cx", "cy", "w", "h"], axis=2, num_outputs=4, name="nms_split"),
        n("Mul", ["w", "half"], ["hw"], name="nms_hw"), n("Mul", ["h", "half"], ["hh"],
                                                          name="nms_hh"),
        n("Sub", ["cx", "hw"], ["x1"], name="nms_x1"), n("Sub", ["cy", "hh"], ["y1"],
                                                        name="nms_y1"),
        n("Add", ["cx", "hw"], ["x2"], name="nms_x2"), n("Add", ["cy", "hh"], ["y2"],
                                                        name="nms_y2"),
        n("Concat", ["x1", "y1", "x2", "y2"], ["xyxy"], axis=2, name="nms_xyxy"),
        n("Slice", [head, "starts_cls", "ends_cls", "axis1"], ["class_scores"],
          name="nms_scores"),
        n("NonMaxSuppression", ["xyxy", "class_scores", "max_per_class", "iou", "score"],
          ["selected"], name="nms"),
        n("Gather", ["selected", "col1"], ["labels_col"], axis=1, name="nms_labels"),
        n("Squeeze", ["labels_col", "axis1"], ["labels"], name="nms_labels_flat"),
        n("Gather", ["selected", "col2"], ["box_col"], axis=1, name="nms_box_index"),
        n("Squeeze", ["box_col", "axis1"], ["box_index"], name="nms_box_index_flat"),
        n("Squeeze", ["xyxy", "zero"], ["image_boxes"], name="nms_first_image"),
        n("Gather", ["image_boxes", "box_index"], ["boxes"], axis=0, name="nms_gather_boxes"),
        n("GatherND", ["class_scores", "selected"], ["scores"], name="nms_gather_scores"),
    ]
    model.graph.node.extend(nodes)
    model.graph.initializer.extend(inits)
    model.graph.output.extend([
        helper.make_tensor_value_info("boxes", TensorProto.FLOAT, ["k", 4]),
        helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["k"]),
        helper.make_tensor_value_info("labels", TensorProto.INT64, ["k"])])
    dest.parent.mkdir(parents=True, exist_ok=True)
    onnx.checker.check_model(model)
    onnx.save(model, str(dest))
    return dest
