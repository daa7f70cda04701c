"""Every GGUF block type frugalml keeps, read into scale / offset / codes and decoded bit for bit
as gguf's own dequantization decodes it (the equality that matches a tensor to the export's
weights). Random bytes make every bit pattern of the codes and the packed scales appear;
the float16 scales are drawn finite."""

from __future__ import annotations

import numpy as np
import pytest

from frugalml.quantize._gguf_blocks import _LAYOUT, KINDS, decode, read

# byte offsets of the float16 fields of each block (set to finite values)
_HALVES = {"Q4_0": (0,), "Q4_1": (0, 2), "Q5_0": (0,), "Q5_1": (0, 2), "Q8_0": (0,),
           "Q4_K": (0, 2), "Q5_K": (0, 2), "Q6_K": (208,)}


def _random_blocks(kind: str, rows: int, blocks: int, seed: int) -> np.ndarray:
    size, _ = _LAYOUT[kind]
    rng = np.random.default_rng(seed)
    raw = rng.integers(0, 256, size=(rows, blocks, size), dtype=np.uint8)
    for at in _HALVES[kind]:
        half = rng.uniform(-0.05, 0.05, size=(rows, blocks)).astype(np.float16)
        raw[..., at:at + 2] = half[..., None].view(np.uint8).reshape(rows, blocks, 2)
    return raw.reshape(rows, blocks * size)


@pytest.mark.parametrize("kind", KINDS)
def test_each_block_type_decodes_as_gguf_does(kind: str) -> None:
    import gguf
    from gguf.quants import dequantize

    rows, blocks = 6, 3
    raw = _random_blocks(kind, rows, blocks, seed=KINDS.index(kind))
    ours = read(kind, raw)
    theirs = dequantize(raw, gguf.GGMLQuantizationType[kind]).astype(np.float32)
    assert theirs.shape == (rows, blocks * _LAYOUT[kind][1])
    np.testing.assert_array_equal(decode(ours), theirs)  # bit for bit
    assert ours.q.dtype == np.uint8 and int(ours.q.max()) < 2 ** ours.bits
    assert ours.q.max() >= 2 ** (ours.bits - 1) or ours.bits == 8  # the codes' whole range used
    # the kernel form: d * (q - zero) [+ zero * d + m] is the same weight
    kernel = ours.d[..., None] * (ours.q.astype(np.float64) - ours.zero)
    if ours.m is not None:
        kernel += (ours.zero * ours.d + ours.m)[..., None]
    np.testing.assert_allclose(kernel.reshape(rows, -1), theirs, rtol=0,
                               atol=1e-6 * float(np.abs(theirs).max()))


def test_rows_are_taken_in_the_order_asked_and_bad_input_is_refused() -> None:
    raw = _random_blocks("Q6_K", 4, 1, seed=9)
    blocks = read("Q6_K", raw)
    np.testing.assert_array_equal(decode(blocks.take(np.array([3, 0]))), decode(blocks)[[3, 0]])
    assert blocks.block == 16 and blocks.d.shape == (4, 16)
    with pytest.raises(ValueError, match="not read here"):
        read("IQ2_XXS", raw)
    with pytest.raises(ValueError, match="not whole 210-byte blocks"):
        read("Q6_K", raw[:, :200])
