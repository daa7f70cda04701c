"""Streaming bound: 5,000 images through a calibration set cost no more memory than 100.

Each run happens in a fresh process that streams the calibration part in batches of 32 and
keeps a running min/max per channel (what a MinMax calibrator keeps). Holding the 5,000
preprocessed images would take 5,000 x 602 KB = 2.9 GB.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench._data import IMAGENET

SCRIPT = """
import sys
import numpy as np
from frugalml.calibration import ImageFolder, make_set
data = make_set(ImageFolder(sys.argv[1], preset="tflite", labels=None),
                calibration_size=int(sys.argv[2]))
low, high, seen = None, None, 0
for feeds, _ in data.batches("calibration", batch_size=32):
    x = feeds["image"]
    lo, hi = x.min(axis=(0, 2, 3)), x.max(axis=(0, 2, 3))
    low = lo if low is None else np.minimum(low, lo)
    high = hi if high is None else np.maximum(high, hi)
    seen += len(x)
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(seen, hwm / 1024)
"""


@pytest.fixture(scope="module")
def five_thousand_images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """5,001 distinct items: the 1,000 real images linked five times under other names."""
    folder = tmp_path_factory.mktemp("images5k")
    names = sorted(p.name for p in IMAGENET.glob("*.jpg"))
    for copy in range(5):
        for name in names:
            os.symlink(IMAGENET / name, folder / f"{copy}_{name}")
    os.symlink(IMAGENET / names[0], folder / "extra.jpg")
    return folder


def _peak_mib(folder: Path, items: int) -> float:
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(folder), str(items)],
                          capture_output=True, text=True, check=True)
    seen, peak = done.stdout.split()
    assert int(seen) == items
    return float(peak)


def test_peak_rss_does_not_grow_with_the_set(five_thousand_images: Path) -> None:
    small, large = _peak_mib(five_thousand_images, 100), _peak_mib(five_thousand_images, 5000)
    print(f"peak RSS: 100 images {small:.0f} MiB, 5,000 images {large:.0f} MiB")
    assert large - small < 1536  # the bound
    assert large - small < 64, f"{large - small:.0f} MiB more for 5,000 images: not streaming"
