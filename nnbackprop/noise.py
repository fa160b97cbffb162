"""Seeded Gaussian noise, drawn on the device of the array it is added to (DP-SGD's xi).

    normals = Normals(seed)
    normals.add_to(g, scale)        # g += scale * xi,  xi ~ N(0, I) of g's shape (n,)

Where ``g`` lives decides the generator; one seed gives one stream on each:

- an accelerator library's array (PyTorch, CuPy): that library's own generator on
  g's device (:func:`nnbackprop._compat.native_normals`), so nothing crosses to the
  host;
- a NumPy array: a host PCG64 stream. float64 takes NumPy's own ziggurat;
  float32 takes the vectorised Box-Muller below, about 4x faster on one core;
- anything else (array-api-strict, JAX, read-only arrays): host draws, copied in.

Box-Muller (float32). From a pair of uniforms (u1, u2) on (0, 1],

    r = sqrt(-2 ln u1),   z1 = r cos(2 pi u2),   z2 = r sin(2 pi u2)

are two independent standard normals. Here u1 = 2 - f and 2 pi u2 = 2 pi f for
floats f in [1, 2) built from 23 random bits each, so u1 lies on a lattice of
step 2^-23: alone that would cut the tail at 5.6 sigma, too short for the
Gaussian mechanism. So every u1 <= 2^-10 (u1's exact share 2^-10) is drawn
again, uniform on (0, 2^-10] from 64 fresh bits in float64: the tail then runs
to 10.1 sigma (u1 >= 2^-74, sqrt(148 ln 2)), beyond NumPy's own float32 ziggurat
(8.2 sigma). Float noise is not cryptographically private in its lowest bits
(Mironov 2012); no mode here claims to be.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import _compat

_TAIL = 2.0 ** -10  # u1 at or below this is drawn again at full precision
_ONE_BITS = np.uint32(0x3F800000)  # float32 1.0: with 23 mantissa bits or-ed in, a float in [1, 2)


class Normals:
    """A seeded stream of standard normals for ``add_to``; ``seed`` an int, a
    ``numpy.random.SeedSequence`` or None (fresh entropy)."""

    def __init__(self, seed: Any = None):
        seq = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        self._host = np.random.Generator(np.random.PCG64(seq))
        self._seq = seq
        self._native_seed = _seed63(seq)
        self._natives = 0    # native generators built so far: each after the first on a seed of its own
        self._fill = None    # the generator for the arrays seen first (built on first use)
        self._kind = None    # (array type, device, dtype) it was built for
        self._scratch = None  # one buffer like g, kept across steps

    def add_to(self, g: Any, scale: float) -> Any:
        """g += scale * xi for a 1-D array g of n elements; returns g (the same array
        where g is writeable, else a new one)."""
        if _compat.writer(g) is None:
            xi = self.host_draw(tuple(g.shape), g.dtype)
            return g + _compat.from_host(_compat.namespace_of(g), xi * xi.dtype.type(scale), g.dtype,
                                         _compat.device_of(g))
        kind = (type(g), _compat.device_of(g), g.dtype, tuple(g.shape))
        if kind != self._kind:
            self._kind, self._scratch = kind, _compat.namespace_of(g).empty_like(g)
            self._fill = self._host_fill if _compat.on_host(g) else _compat.native_normals(g, self._next_seed())
            if self._fill is None:  # a writeable array with no generator of its own: host draws, copied
                self._fill = self._copied_fill
        self._fill(self._scratch, float(scale))
        g += self._scratch
        return g

    def _next_seed(self) -> int:
        """The seed of the next native generator: one seeded like an earlier one would
        repeat its draws (a second model, or the first again, trained with one DPSGD)."""
        self._natives += 1
        if self._natives == 1:
            return self._native_seed
        return _seed63(self._seq.spawn(1)[0])

    def host_draw(self, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        """Standard normals on the host, float64 where ``dtype`` is, else float32."""
        out = np.empty(shape, dtype=np.float64 if _is_float64(dtype) else np.float32)
        self._host_fill(out.reshape(-1), 1.0)
        return out

    # ---------------------------------------------------------------------------------
    def _host_fill(self, out: np.ndarray, scale: float) -> None:
        out = out.reshape(-1)  # a view: out is contiguous
        if out.dtype == np.float64:
            self._host.standard_normal(out=out)
            out *= scale
        else:
            box_muller(self._host.bit_generator, out, scale)

    def _copied_fill(self, out: Any, scale: float) -> None:
        xi = self.host_draw(tuple(out.shape), out.dtype)
        xi *= xi.dtype.type(scale)
        out[...] = _compat.from_host(_compat.namespace_of(out), xi, out.dtype, _compat.device_of(out))


def _seed63(seq: np.random.SeedSequence) -> int:
    """A seed below 2^63 from the sequence's first 64 bits, in Python integers (uint64
    times a Python int list promotes to float64 and keeps only 53 of them)."""
    lo, hi = (int(v) for v in seq.generate_state(2, np.uint32))
    return (lo | hi << 32) >> 1


def _is_float64(dtype: Any) -> bool:
    return getattr(dtype, "itemsize", None) == 8 or str(dtype).endswith("float64")


def box_muller(bits: np.random.BitGenerator, out: np.ndarray, scale: float = 1.0) -> None:
    """out[...] = scale * z for z standard normals (out float32, 1-D, contiguous), by
    Box-Muller from ``bits``: 64 bits per pair, plus 64 for each u1 drawn again."""
    n = out.shape[0]
    m = (n + 1) // 2
    f = _unit_floats(bits, m)                 # (2m,) floats in [1, 2)
    r, theta = f[:m], f[m:]
    np.subtract(np.float32(2.0), r, out=r)   # u1 in [2^-23, 1], exact
    redraw = np.flatnonzero(r <= _TAIL)
    np.log(r, out=r)
    r *= np.float32(-2.0 * scale * scale)
    np.sqrt(r, out=r)                        # scale * sqrt(-2 ln u1)
    if redraw.size:
        r[redraw] = scale * tail_radius(bits, redraw.size)
    theta *= np.float32(2.0 * math.pi)        # 2 pi f: the angle, plus one whole turn
    a, b = out[:m], out[m:]
    np.cos(theta, out=a)
    a *= r
    np.sin(theta[:n - m], out=b)
    b *= r[:n - m]


def _unit_floats(bits: np.random.BitGenerator, k: int) -> np.ndarray:
    """(2k,) float32 uniform on [1, 2), 23 random bits each, from k 64-bit draws."""
    u = bits.random_raw(k).view(np.uint32)
    np.right_shift(u, np.uint32(9), out=u)
    np.bitwise_or(u, _ONE_BITS, out=u)
    return u.view(np.float32)


def tail_radius(bits: np.random.BitGenerator, k: int) -> np.ndarray:
    """(k,) float64 radii sqrt(-2 ln u1) for u1 uniform on (0, 2^-10] at 64-bit
    resolution: Box-Muller's radius given u1 <= 2^-10, i.e. given r >= sqrt(20 ln 2)."""
    u = bits.random_raw(k).astype(np.float64)
    u += 1.0  # (u + 1) / 2^64 in (0, 1]
    u *= _TAIL * 2.0 ** -64
    return np.sqrt(-2.0 * np.log(u))
