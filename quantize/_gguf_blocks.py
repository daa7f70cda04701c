"""GGUF block types read into one form: per block a scale ``d``, optionally an offset ``m``,
and unsigned integer codes ``q``, standing for ``d * (q - zero)`` or ``d * q + m``.

That form is what ONNX Runtime's ``MatMulNBits`` and ``GatherBlockQuantized`` take (scales per
block, unsigned codes, integer zero points; an offset becomes a separate product, see
:mod:`frugalml.quantize._gguf_nodes`). The K-quants are super-blocks of 256 whose sub-blocks
(32 values, 16 for Q6_K) each have their own 6- or 8-bit scale (and min) times the
super-block's float16 one: their effective scale per sub-block is that product in float32,
computed as llama.cpp's reference dequantization does, so :func:`decode` gives the same float32
values bit for bit (tested against ``gguf``'s own dequantization for every type), which is
what matches a tensor to the export's weights.

Codes of 5 and 6 bits are kept as 8-bit codes (they fit exactly); the zero point of an offset
type is the middle of its codes, so the integer part the kernel multiplies stays small.
"""

from __future__ import annotations

import dataclasses

import numpy as np

SUPER = 256  # values per K-quant super-block
# bytes per block, values per block (of the stored block, before sub-blocks)
_LAYOUT = {"Q4_0": (18, 32), "Q4_1": (20, 32), "Q5_0": (22, 32), "Q5_1": (24, 32),
           "Q8_0": (34, 32), "Q4_K": (144, SUPER), "Q5_K": (176, SUPER), "Q6_K": (210, SUPER)}
KINDS = tuple(_LAYOUT)


@dataclasses.dataclass(frozen=True, slots=True)
class Blocks:
    """One tensor's blocks along its rows: ``d`` and ``m`` are [rows, blocks], ``q`` is
    [rows, blocks, block] uint8. With ``m`` None a value is ``d * (q - zero)``; else it is
    ``d * q + m`` and ``zero`` is the zero point a kernel should use (the offset then being
    ``zero * d + m``)."""

    kind: str
    d: np.ndarray
    q: np.ndarray
    zero: int
    bits: int   # how the codes are stored for the kernels: 4 or 8
    m: np.ndarray | None = None

    @property
    def block(self) -> int:
        return int(self.q.shape[-1])

    def take(self, rows: np.ndarray) -> Blocks:
        """These blocks for the rows ``rows`` of the tensor, in that order."""
        return dataclasses.replace(self, d=self.d[rows], q=self.q[rows],
                                   m=None if self.m is None else self.m[rows])


def _f16(raw: np.ndarray) -> np.ndarray:
    """float16 from two little-endian bytes on the last axis, as float32."""
    return np.ascontiguousarray(raw).view(np.float16)[..., 0].astype(np.float32)


def _nibbles(packed: np.ndarray, width: int) -> np.ndarray:
    """4-bit codes: per ``width`` bytes, the low nibbles are values 0..width-1 and the high
    nibbles the next ``width``."""
    lead = packed.shape[:-1]
    groups = packed.reshape(*lead, -1, width)
    return np.concatenate([groups & 0x0F, groups >> 4], axis=-1).reshape(*lead, -1)


def _high_bits(qh: np.ndarray, count: int) -> np.ndarray:
    """Bit i of the little-endian bit field ``qh`` for value i, for ``count`` values."""
    return np.unpackbits(qh, axis=-1, bitorder="little")[..., :count]


def _k_scales(packed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 8 six-bit scales and mins of a Q4_K/Q5_K super-block from its 12 bytes: bytes 0-3
    hold scales 0-3, 4-7 mins 0-3 (low 6 bits each); scales and mins 4-7 take their low 4 bits
    from bytes 8-11 and their high 2 bits from the top of bytes 0-3 and 4-7."""
    low, mid, top = packed[..., 0:4], packed[..., 4:8], packed[..., 8:12]
    scales = np.concatenate([low & 0x3F, (top & 0x0F) | ((low >> 6) << 4)], axis=-1)
    mins = np.concatenate([mid & 0x3F, (top >> 4) | ((mid >> 6) << 4)], axis=-1)
    return scales.astype(np.float32), mins.astype(np.float32)


def read(kind: str, data: np.ndarray) -> Blocks:
    """The blocks of a tensor of ``kind`` whose raw bytes are ``data`` [rows, bytes per row].

    Raises:
        ValueError: an unknown kind, or rows that are not whole blocks.
    """
    if kind not in _LAYOUT:
        raise ValueError(f"GGUF block type {kind} is not read here; known: {', '.join(KINDS)}")
    size, _ = _LAYOUT[kind]
    rows = data.shape[0]
    if data.shape[-1] % size:
        raise ValueError(f"A {kind} row of {data.shape[-1]} bytes is not whole {size}-byte "
                         "blocks")
    raw = np.asarray(data, dtype=np.uint8).reshape(rows, -1, size)
    return _READERS[kind](raw)


def _q4_0(raw: np.ndarray) -> Blocks:
    return Blocks("Q4_0", _f16(raw[..., 0:2]), _nibbles(raw[..., 2:], 16), zero=8, bits=4)


def _q4_1(raw: np.ndarray) -> Blocks:
    return Blocks("Q4_1", _f16(raw[..., 0:2]), _nibbles(raw[..., 4:], 16), zero=8, bits=4,
                  m=_f16(raw[..., 2:4]))


def _q5_0(raw: np.ndarray) -> Blocks:
    q = _nibbles(raw[..., 6:], 16) | (_high_bits(raw[..., 2:6], 32) << 4)
    return Blocks("Q5_0", _f16(raw[..., 0:2]), q, zero=16, bits=8)


def _q5_1(raw: np.ndarray) -> Blocks:
    q = _nibbles(raw[..., 8:], 16) | (_high_bits(raw[..., 4:8], 32) << 4)
    return Blocks("Q5_1", _f16(raw[..., 0:2]), q, zero=16, bits=8, m=_f16(raw[..., 2:4]))


def _q8_0(raw: np.ndarray) -> Blocks:
    signed = np.ascontiguousarray(raw[..., 2:]).view(np.int8).astype(np.int16)
    return Blocks("Q8_0", _f16(raw[..., 0:2]), (signed + 128).astype(np.uint8), zero=128,
                  bits=8)


def _k_offsets(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Q4_K/Q5_K: per 32-value sub-block, d * scale and -(dmin * min), float32."""
    d, dmin = _f16(raw[..., 0:2])[..., None], _f16(raw[..., 2:4])[..., None]
    scales, mins = _k_scales(raw[..., 4:16])
    rows = raw.shape[0]
    return (d * scales).reshape(rows, -1), (-(dmin * mins)).reshape(rows, -1)


def _q4_k(raw: np.ndarray) -> Blocks:
    d, m = _k_offsets(raw)
    q = _nibbles(raw[..., 16:], 32).reshape(raw.shape[0], -1, 32)
    return Blocks("Q4_K", d, q, zero=8, bits=4, m=m)


def _q5_k(raw: np.ndarray) -> Blocks:
    d, m = _k_offsets(raw)
    high = _high_bits(raw[..., 16:48].reshape(*raw.shape[:2], 32, 1), 8)  # [.., 32, 8]
    low = _nibbles(raw[..., 48:], 32)                                    # [.., 256]
    q = low | (np.swapaxes(high, -1, -2).reshape(*raw.shape[:2], SUPER) << 4)
    return Blocks("Q5_K", d, q.reshape(raw.shape[0], -1, 32), zero=16, bits=8, m=m)


def _q6_k(raw: np.ndarray) -> Blocks:
    """Q6_K: 128 bytes of low nibbles, 64 bytes of 2-bit high parts, 16 int8 sub-block scales,
    a float16 ``d``. Each half of 128 values takes 64 low-nibble bytes (four runs of 32: low
    nibbles of bytes 0-31, of 32-63, then their high nibbles) and 32 high-part bytes (bits
    0-1, 2-3, 4-5, 6-7 for the four runs)."""
    rows, n = raw.shape[:2]
    ql, qh = raw[..., 0:128], raw[..., 128:192]
    scales = np.ascontiguousarray(raw[..., 192:208]).view(np.int8).astype(np.float32)
    d = _f16(raw[..., 208:210])[..., None]
    halves = []
    for h in range(2):
        low = ql[..., 64 * h:64 * h + 64]
        high = qh[..., 32 * h:32 * h + 32]
        runs = [low[..., 0:32] & 0x0F, low[..., 32:64] & 0x0F, low[..., 0:32] >> 4,
                low[..., 32:64] >> 4]
        halves += [r | (((high >> (2 * i)) & 0x03) << 4) for i, r in enumerate(runs)]
    q = np.concatenate(halves, axis=-1)  # [rows, n, 256], codes 0..63
    return Blocks("Q6_K", (d * scales).reshape(rows, -1), q.reshape(rows, n * 16, 16),
                  zero=32, bits=8)


_READERS = {"Q4_0": _q4_0, "Q4_1": _q4_1, "Q5_0": _q5_0, "Q5_1": _q5_1, "Q8_0": _q8_0,
            "Q4_K": _q4_k, "Q5_K": _q5_k, "Q6_K": _q6_k}


def decode(blocks: Blocks) -> np.ndarray:
    """The float32 rows the blocks stand for, computed in the order llama.cpp's reference
    dequantization computes them (so that equal means bit for bit)."""
    if blocks.m is None:
        codes = blocks.q.astype(np.int16) - blocks.zero
        values = blocks.d[..., None] * codes.astype(np.float32)
    else:
        values = blocks.d[..., None] * blocks.q.astype(np.float32) + blocks.m[..., None]
    return values.reshape(values.shape[0], -1).astype(np.float32)
