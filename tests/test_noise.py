"""DP-SGD's Gaussian noise (nnbackprop.noise): standard normals by their law (moments, the
Kolmogorov-Smirnov distance to the normal CDF, tail counts), the float32 Box-Muller's tail
redraw by a hand-worked case, and the stream on every backend (device, dtype, seed)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nnbackprop import _compat, noise


def _ks_normal(z: np.ndarray) -> float:
    """sup |F_n - Phi| of the sample z."""
    z = np.sort(np.asarray(z, dtype=np.float64))
    phi = 0.5 * (1.0 + np.vectorize(math.erf)(z / math.sqrt(2.0)))
    n = z.size
    return float(max(np.max(np.arange(1, n + 1) / n - phi), np.max(phi - np.arange(n) / n)))


def _assert_standard_normal(z, ks_n=200_000):
    """Mean, variance, kurtosis, P(|z| > 2), P(|z| > 3) within 5 standard errors; KS distance
    below its 0.1 % critical value 1.95 / sqrt(n)."""
    z = np.asarray(z, dtype=np.float64)
    n = z.size
    assert abs(z.mean()) < 5 / math.sqrt(n)
    assert abs(z.var() - 1) < 5 * math.sqrt(2 / n)
    assert abs(np.mean(z ** 4) - 3) < 5 * math.sqrt(96 / n)
    for c in (2.0, 3.0):
        p = math.erfc(c / math.sqrt(2))
        assert abs(np.mean(np.abs(z) > c) - p) < 5 * math.sqrt(p * (1 - p) / n), c
    assert _ks_normal(z[:ks_n]) < 1.95 / math.sqrt(min(n, ks_n))


def test_box_muller_gives_standard_normals():
    out = np.empty(2_000_001, dtype=np.float32)  # odd: the last pair keeps one of its two
    noise.box_muller(np.random.PCG64(3), out)
    _assert_standard_normal(out)
    m = (out.size + 1) // 2  # the two of a pair (cos, sin of one angle, one radius) are uncorrelated
    assert abs(np.corrcoef(out[:m - 1], out[m:])[0, 1]) < 5 / math.sqrt(m)
    # the tail beyond 4 sigma: expected 2 erfc(4/sqrt 2) n = 127 in 2 M
    k, lam = int(np.sum(np.abs(out) > 4)), math.erfc(4 / math.sqrt(2)) * out.size
    assert abs(k - lam) < 5 * math.sqrt(lam)


def test_box_muller_scales_and_is_reproducible():
    a, b, c = (np.empty(10_001, dtype=np.float32) for _ in range(3))
    noise.box_muller(np.random.PCG64(5), a)
    noise.box_muller(np.random.PCG64(5), b, 2.5)
    noise.box_muller(np.random.PCG64(6), c)
    np.testing.assert_allclose(b, 2.5 * a, rtol=1e-6, atol=0)  # scale folded into the sqrt: rounding
    assert not np.array_equal(a, c)


class _Bits:
    """A bit generator that hands out the 64-bit words it is given, in order."""

    def __init__(self, *words):
        self.words = [np.asarray(w, dtype=np.uint64) for w in words]

    def random_raw(self, k):
        w = self.words.pop(0)
        assert w.size == k
        return w.copy()


def test_box_muller_draws_small_u1_again_at_full_precision():
    # 4 outputs = 2 pairs = 4 uint32: radius bits of pairs 0, 1, then angle bits of pairs 0, 1.
    # Pair 0's radius bits are all ones: u1 = 2 - (2 - 2^-23) = 2^-23 <= 2^-10, drawn again from the
    # next word 2^63 - 1: u1 = 2^63 / 2^64 * 2^-10 = 2^-11, r = sqrt(22 ln 2). Pair 1's are zero: u1 = 1,
    # r = 0. Angle bits zero: f = 1, angle 2 pi: cos 1, sin 0.
    out = np.empty(4, dtype=np.float32)
    noise.box_muller(_Bits([0xFFFFFFFF, 0], [2 ** 63 - 1]), out)
    r = math.sqrt(22 * math.log(2))
    np.testing.assert_allclose(out, [r, 0, r * math.sin(np.float32(2 * math.pi)), 0], rtol=1e-6, atol=1e-6)
    # without the redraw the radius would be the lattice's last, sqrt(46 ln 2)
    assert abs(out[0] - math.sqrt(46 * math.log(2))) > 1


def test_tail_radius_follows_the_normal_tail():
    """Given u1 <= 2^-10, r = sqrt(-2 ln u1) has P(r > x) = exp(-(x^2 - r0^2) / 2), r0^2 = 20 ln 2."""
    r = np.sort(noise.tail_radius(np.random.PCG64(11), 100_000))
    r0sq = 20 * math.log(2)
    assert r.min() >= math.sqrt(r0sq) and r.max() < math.sqrt(2 * 74 * math.log(2)) + 1e-9
    cdf = 1 - np.exp(-(r ** 2 - r0sq) / 2)
    n = r.size
    d = max(np.max(np.arange(1, n + 1) / n - cdf), np.max(cdf - np.arange(n) / n))
    assert d < 1.95 / math.sqrt(n)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_normals_on_every_backend(be, dtype):
    """add_to keeps namespace, device and dtype; the increments are scale * standard normals;
    one seed, one stream; another seed, another."""
    if not be.has(dtype):
        pytest.skip(f"{be.name} has no {dtype}")
    n, scale = 100_001, 0.75
    base = np.linspace(-1, 1, n)

    def draw(seed):
        g = be.asarray(base, dtype)
        out = noise.Normals(seed).add_to(g, scale)
        assert _compat.namespace_of(out) is _compat.namespace_of(g)
        assert out.dtype == g.dtype and _compat.device_of(out) == _compat.device_of(g)
        if _compat.is_writeable(g):
            assert out is g  # in place, no new array
        return (be.host(out).astype(np.float64) - be.host(be.asarray(base, dtype))) / scale

    z = draw(1)
    _assert_standard_normal(z, ks_n=100_001)
    assert np.array_equal(draw(1), z)
    assert not np.allclose(draw(2), z)


def test_normals_stream_goes_on_across_calls(be):
    normals = noise.Normals(4)
    g = be.asarray(np.zeros(1000), "float64")
    first = be.host(normals.add_to(g, 1.0)).copy()
    second = be.host(normals.add_to(be.asarray(np.zeros(1000), "float64"), 1.0))
    assert not np.allclose(first, second)
    _assert_standard_normal(np.concatenate([first, second]), ks_n=2000)


def test_normals_never_restart_the_stream_for_another_array(be):
    """A second kind of array (another shape, as a second model trained with the same DPSGD) gets
    fresh noise, and so does the first again: no draw repeats an earlier one, on any backend."""
    normals = noise.Normals(4)
    first = be.host(normals.add_to(be.asarray(np.zeros(1000), "float64"), 1.0)).copy()
    other = be.host(normals.add_to(be.asarray(np.zeros(500), "float64"), 1.0)).copy()
    again = be.host(normals.add_to(be.asarray(np.zeros(1000), "float64"), 1.0)).copy()
    assert not np.allclose(again, first)
    assert not np.allclose(other, first[:500]) and not np.allclose(other, again[:500])
    _assert_standard_normal(np.concatenate([first, other, again]), ks_n=2500)


def test_native_seeds_keep_all_63_bits():
    """The seed handed to PyTorch's or CuPy's generator is the seed sequence's first 64 bits
    (as Python integers, not through float64, which would keep 53), halved below 2^63."""
    w = [int(v) for v in np.random.SeedSequence(5).generate_state(2, np.uint32)]
    normals = noise.Normals(5)
    assert normals._next_seed() == (w[0] | w[1] << 32) >> 1
    child = [int(v) for v in np.random.SeedSequence(5).spawn(1)[0].generate_state(2, np.uint32)]
    assert normals._next_seed() == (child[0] | child[1] << 32) >> 1
