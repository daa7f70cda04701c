"""A YOLOv8-style detector built in torch for tests: a small CNN backbone, anchor-free heads at
three strides, and the exported layout of Ultralytics' models: ONE output ``[N, 4 + C, A]``
that concatenates decoded boxes (cx, cy, w, h in pixels of the 128 x 128 input) with sigmoid
class scores. The weights are seeded, with the class logits scaled so that the scores spread
over (0, 1) on real photos: that is the layout whose shared output scale broke a real detector
(box coordinates up to 128, scores below 1)."""

from __future__ import annotations

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

    from tests.realdata import IMAGENET

    names = sorted(p.name for p in IMAGENET.glob("*.jpg"))[start:start + count]
    out = np.zeros((len(names), 3, SIZE, SIZE), np.float32)
    for i, name in enumerate(names):
        with Image.open(IMAGENET / name) as im:
            pixels = np.asarray(im.convert("RGB").resize((SIZE, SIZE), Image.BILINEAR))
        out[i] = pixels.transpose(2, 0, 1) / np.float32(255.0)
    return out
