"""Golden model of one gated conv layer against independent nested-loop references."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cgaccel.model.layer import (
    base_channels,
    conv2d_int,
    gated_conv,
    output_size,
    requantize,
)

# Independent references: plain Python integers and loops, written from the spec only. ------------


def ref_conv(x, w, stride, pad):
    C, H, W = x.shape
    K, _, R, S = w.shape
    Ho = (H + 2 * pad - R) // stride + 1
    Wo = (W + 2 * pad - S) // stride + 1
    xl, wl = x.tolist(), w.tolist()
    out = [[[0] * Wo for _ in range(Ho)] for _ in range(K)]
    for k in range(K):
        for i in range(Ho):
            for j in range(Wo):
                total = 0
                for c in range(C):
                    for r in range(R):
                        hi = i * stride + r - pad
                        if not 0 <= hi < H:
                            continue
                        for s in range(S):
                            wi = j * stride + s - pad
                            if 0 <= wi < W:
                                total += xl[c][hi][wi] * wl[k][c][r][s]
                out[k][i][j] = total
    return out


def ref_conv_channels(x, w, stride, pad, k, chans):
    """Sum over input channels ``chans`` only, for output channel ``k`` (nested list [Ho][Wo])."""
    sel = [c for c in chans]
    if not sel:
        full = ref_conv(x[:1] * 0, w[k:k + 1, :1] * 0, stride, pad)
        return full[0]
    return ref_conv(x[sel], w[k:k + 1][:, sel], stride, pad)[0]


def ref_requant(a, b, m, s):
    q = ((a + b) * m + (1 << (s - 1))) // (1 << s)  # Python ints: exact floor division
    return max(-128, min(127, q))


def ref_gated(x, w, bias, thr, mult, shift, stride, pad, groups, relu, res, omask, imask):
    C = x.shape[0]
    K = w.shape[0]
    om = [1] * K if omask is None else [int(v) for v in omask]
    im = [1] * C if imask is None else [int(v) for v in imask]
    ys, gates = [], []
    for k in range(K):
        cg, kg = C // groups, K // groups
        g = k // kg
        base = [c for c in range(g * cg, (g + 1) * cg) if im[c]]
        allc = [c for c in range(C) if im[c]]
        pb = ref_conv_channels(x, w, stride, pad, k, base)
        pf = ref_conv_channels(x, w, stride, pad, k, allc)
        yk, gk = [], []
        for i in range(len(pb)):
            yrow, grow = [], []
            for j in range(len(pb[0])):
                if not om[k]:
                    gt, q = 0, 0
                else:
                    gt = 1 if groups == 1 else int(pb[i][j] > int(thr[k]))
                    acc = pf[i][j] if gt else pb[i][j]
                    q = ref_requant(acc, int(bias[k]), int(mult[k]), int(shift[k]))
                if res is not None:
                    q = max(-128, min(127, q + int(res[k, i, j])))
                if relu:
                    q = max(q, 0)
                yrow.append(q)
                grow.append(gt)
            yk.append(yrow)
            gk.append(grow)
        ys.append(yk)
        gates.append(gk)
    return np.array(ys, dtype=np.int64), np.array(gates, dtype=np.int64)


# Convolution --------------------------------------------------------------------------------------

def _random_conv_case(rng):
    C = int(rng.choice([1, 2, 3, 5]))
    K = int(rng.choice([1, 2, 4]))
    R = int(rng.choice([1, 3]))
    S = R if rng.random() < 0.8 else int(rng.choice([1, 2, 3]))
    stride = int(rng.choice([1, 2]))
    pad = int(rng.choice([0, 1]))
    H = int(rng.integers(max(R - 2 * pad, 1), 8))
    W = int(rng.integers(max(S - 2 * pad, 1), 8))
    x = rng.integers(-128, 128, (C, H, W), dtype=np.int8)
    w = rng.integers(-128, 128, (K, C, R, S), dtype=np.int8)
    return x, w, stride, pad


@pytest.mark.parametrize("seed", range(40))
def test_conv_matches_nested_loops(seed):
    x, w, stride, pad = _random_conv_case(np.random.default_rng(seed))
    got = conv2d_int(x, w, stride, pad)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, np.array(ref_conv(x, w, stride, pad), dtype=np.int64))


def test_conv_extreme_int8_values():
    x = np.full((7, 5, 5), -128, dtype=np.int8)
    w = np.full((2, 7, 3, 3), -128, dtype=np.int8)
    got = conv2d_int(x, w, 1, 1)
    np.testing.assert_array_equal(got, np.array(ref_conv(x, w, 1, 1)))
    assert got[0, 2, 2] == 7 * 9 * 128 * 128


def test_conv_int64_path_for_wide_operands():
    # Operands too wide for exact float64 sums take the int64 path; still exact.
    rng = np.random.default_rng(5)
    x = rng.integers(-(1 << 30), 1 << 30, (3, 4, 4), dtype=np.int64)
    w = rng.integers(-(1 << 28), 1 << 28, (2, 3, 3, 3), dtype=np.int64)
    np.testing.assert_array_equal(conv2d_int(x, w, 1, 1), np.array(ref_conv(x, w, 1, 1)))


def test_conv_rejects_int64_overflow():
    x = np.full((4, 3, 3), 1 << 31, dtype=np.int64)
    w = np.full((1, 4, 3, 3), 1 << 31, dtype=np.int64)
    with pytest.raises(ValueError, match=r"conv2d_int operands must keep sums below 2\*\*63"):
        conv2d_int(x, w)


@pytest.mark.parametrize("seed", range(12))
def test_conv_matches_torch_float64(seed):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1000 + seed)
    C, K = int(rng.integers(1, 17)), int(rng.integers(1, 17))
    R = int(rng.choice([1, 3, 5, 7]))
    stride, pad = int(rng.choice([1, 2])), int(rng.integers(0, R // 2 + 2))
    H, W = int(rng.integers(R, 20)), int(rng.integers(R, 20))
    x = rng.integers(-128, 128, (C, H, W), dtype=np.int8)
    w = rng.integers(-128, 128, (K, C, R, R), dtype=np.int8)
    ref = torch.nn.functional.conv2d(torch.from_numpy(x.astype(np.float64))[None],
                                     torch.from_numpy(w.astype(np.float64)),
                                     stride=stride, padding=pad)[0].numpy()
    np.testing.assert_array_equal(conv2d_int(x, w, stride, pad), ref.astype(np.int64))


@pytest.mark.parametrize("args, exc, msg", [
    (([1, 2], np.zeros((1, 1, 1, 1), np.int8)), TypeError, r"x must be a numpy array, not list"),
    ((np.zeros((1, 2, 2), np.float32), np.zeros((1, 1, 1, 1), np.int8)), TypeError,
     r"x must be an integer array, not float32"),
    ((np.zeros((2, 2), np.int8), np.zeros((1, 1, 1, 1), np.int8)), ValueError,
     r"x must be a 3-D array \[C, H, W\], not shape \(2, 2\)"),
    ((np.zeros((2, 2, 2), np.int8), np.zeros((1, 3, 1, 1), np.int8)), ValueError,
     r"w must have C=2 input channels like x, not 3"),
    ((np.zeros((1, 2, 2), np.int8), np.zeros((1, 1, 3, 3), np.int8)), ValueError,
     r"output size must be at least 1, not 0 \(input 2, kernel 3, pad 0\)"),
])
def test_conv_validation(args, exc, msg):
    with pytest.raises(exc, match=msg):
        conv2d_int(*args)


def test_conv_stride_pad_validation():
    x, w = np.zeros((1, 4, 4), np.int8), np.zeros((1, 1, 3, 3), np.int8)
    with pytest.raises(ValueError, match=r"stride must be an integer >= 1, not 0"):
        conv2d_int(x, w, stride=0)
    with pytest.raises(TypeError, match=r"stride must be an integer, not 1.5"):
        conv2d_int(x, w, stride=1.5)
    with pytest.raises(ValueError, match=r"pad must be an integer >= 0, not -1"):
        conv2d_int(x, w, pad=-1)


def test_output_size():
    assert output_size(224, 7, 2, 3) == 112
    assert output_size(56, 1, 2, 0) == 28
    assert output_size(5, 3, 2, 1) == 3


def test_base_channels():
    assert base_channels(0, 8, 4, 2) == (0, 4)
    assert base_channels(1, 8, 4, 2) == (0, 4)
    assert base_channels(2, 8, 4, 2) == (4, 8)
    assert base_channels(3, 6, 4, 1) == (0, 6)
    assert [base_channels(k, 4, 4, 4) for k in range(4)] == [(0, 1), (1, 2), (2, 3), (3, 4)]
    with pytest.raises(ValueError, match=r"groups must divide C=6 and K=4, not 4"):
        base_channels(0, 6, 4, 4)
    with pytest.raises(ValueError, match=r"k must be below K=4, not 4"):
        base_channels(4, 8, 4, 2)


# Requantization -----------------------------------------------------------------------------------

def test_requant_half_rounds_towards_plus_infinity():
    acc = np.array([5, -5, 3, -3, 1, -1, 7, -7, 4, -4])
    # shift 1, mult 1: value/2 -> 2.5, -2.5, 1.5, -1.5, .5, -.5, 3.5, -3.5, 2, -2
    np.testing.assert_array_equal(requantize(acc, 0, 1, 1), [3, -2, 2, -1, 1, 0, 4, -3, 2, -2])
    # Just below / above a half: 0.4999.. rounds down, 0.5 up.
    np.testing.assert_array_equal(requantize(np.array([1023, 1024, -1024, -1025]), 0, 1, 11),
                                  [0, 1, 0, -1])


def test_requant_saturates():
    acc = np.array([255, 256, 257, -255, -256, -257, -258, 1 << 30, -(1 << 30)])
    np.testing.assert_array_equal(requantize(acc, 0, 1, 1),
                                  [127, 127, 127, -127, -128, -128, -128, 127, -128])
    assert requantize(np.array([253]), 0, 1, 1)[0] == 127  # 126.5 -> 127
    assert requantize(np.array([254]), 0, 1, 1)[0] == 127


def test_requant_bias_and_per_channel_broadcast():
    acc = np.arange(-6, 6, dtype=np.int64).reshape(3, 2, 2)
    bias = np.array([0, 10, -10], np.int32)
    mult = np.array([1, 3, 5], np.int32)
    shift = np.array([1, 2, 3], np.int32)
    got = requantize(acc, bias, mult, shift)
    want = [[[ref_requant(int(a), int(bias[k]), int(mult[k]), int(shift[k]))
              for a in row] for row in acc[k]] for k in range(3)]
    np.testing.assert_array_equal(got, want)
    assert got.dtype == np.int8


def test_requant_extremes_match_python_ints():
    # The full stated ranges: acc and bias int32, mult up to 2**31-1, shift 1..62. The naive
    # int64 expression would overflow at the top of these ranges.
    i32 = [-(1 << 31), -(1 << 31) + 1, -1, 0, 1, (1 << 31) - 2, (1 << 31) - 1]
    mults = [1, 2, 12345, (1 << 30) + 1, (1 << 31) - 1]
    shifts = [1, 2, 31, 32, 33, 61, 62]
    cases = [(a, b, m, s) for a in i32 for b in i32 for m in mults for s in shifts]
    a, b, m, s = (np.array(col, dtype=np.int64) for col in zip(*cases, strict=True))
    got = np.concatenate([requantize(np.array([ai]), int(bi), int(mi), int(si))
                          for ai, bi, mi, si in cases[:50]])
    np.testing.assert_array_equal(got, [ref_requant(*c) for c in cases[:50]])
    # Vectorized over all cases through the per-channel path.
    got = requantize(a, b, m, s)
    np.testing.assert_array_equal(got, [ref_requant(*c) for c in cases])
    # Values that do not saturate, exercising the rounding carry at shift 62.
    big = (1 << 31) - 1
    acc = np.array([big, -(1 << 31), big, 123456789])
    got = requantize(acc, np.array([big, -(1 << 31), -5, 0]), np.array([big, big, big, 1 << 30]),
                     np.array([62, 62, 62, 55]))
    want = [ref_requant(int(acc[i]), *c) for i, c in
            enumerate([(big, big, 62), (-(1 << 31), big, 62), (-5, big, 62), (0, 1 << 30, 55)])]
    np.testing.assert_array_equal(got, want)
    # (2**32-2)(2**31-1)/2**62 ~ 2 - 2**-30 and -2**32(2**31-1)/2**62 ~ -2 + 2**-31
    assert want[0] == 2 and want[1] == -2


def test_requant_random_matches_python_ints():
    rng = np.random.default_rng(7)
    n = 2000
    acc = rng.integers(-(1 << 31), 1 << 31, n)
    bias = rng.integers(-(1 << 31), 1 << 31, n)
    mult = rng.integers(1, 1 << 31, n)
    shift = rng.integers(1, 63, n)
    want = [ref_requant(int(a), int(b), int(m), int(s)) for a, b, m, s in
            zip(acc, bias, mult, shift, strict=True)]
    np.testing.assert_array_equal(requantize(acc, bias, mult, shift), want)
    # Small magnitudes so that most results are inside the int8 range.
    acc = rng.integers(-5000, 5000, n)
    mult = rng.integers(1, 1 << 15, n)
    shift = rng.integers(14, 20, n)
    want = [ref_requant(int(a), 0, int(m), int(s))
            for a, m, s in zip(acc, mult, shift, strict=True)]
    got = requantize(acc, 0, mult, shift)
    np.testing.assert_array_equal(got, want)
    assert 0.5 < np.mean(np.abs(got) < 127)


@pytest.mark.parametrize("args, exc, msg", [
    ((np.array([1 << 31]), 0, 1, 1), ValueError,
     r"acc must be within the int32 range, not 2147483648"),
    ((np.array([0.5]), 0, 1, 1), TypeError, r"acc must be an integer array"),
    ((np.array([0]), 1 << 31, 1, 1), ValueError,
     r"bias must be between -2147483648 and 2147483647"),
    ((np.array([0]), 0, 0, 1), ValueError, r"mult must be between 1 and 2147483647, not 0"),
    ((np.array([0]), 0, 1, 0), ValueError, r"shift must be between 1 and 62, not 0"),
    ((np.array([0]), 0, 1, 63), ValueError, r"shift must be between 1 and 62, not 63"),
    ((np.array([0, 0]), np.zeros(3, np.int32), 1, 1), ValueError,
     r"bias must be a scalar or have shape \(2,\), not \(3,\)"),
    ((np.array([0]), 0, 1.0, 1), TypeError, r"mult must be an integer or integer array"),
])
def test_requant_validation(args, exc, msg):
    with pytest.raises(exc, match=msg):
        requantize(*args)


# Gated layer --------------------------------------------------------------------------------------

def _random_layer(rng, *, groups, residual, relu, omask, imask):
    G = groups
    C = G * int(rng.integers(1, 4))
    K = G * int(rng.integers(1, 4))
    R = int(rng.choice([1, 3]))
    stride, pad = int(rng.choice([1, 2])), int(rng.choice([0, 1]))
    H = int(rng.integers(max(R - 2 * pad, 1), 7))
    W = int(rng.integers(max(R - 2 * pad, 1), 7))
    Ho, Wo = output_size(H, R, stride, pad), output_size(W, R, stride, pad)
    x = rng.integers(-40, 60, (C, H, W), dtype=np.int8)
    w = rng.integers(-128, 128, (K, C, R, R), dtype=np.int8)
    im = None
    if imask:
        im = (rng.random(C) < 0.6).astype(np.uint8)
        x[im == 0] = 0
    om = (rng.random(K) < 0.6).astype(np.uint8) if omask else None
    d = dict(x=x, w=w, bias=rng.integers(-3000, 3000, K, dtype=np.int32),
             thr=rng.integers(-2000, 2000, K, dtype=np.int32),
             mult=rng.integers(1, 1 << 15, K, dtype=np.int32),
             shift=rng.integers(14, 19, K, dtype=np.int32),
             stride=stride, pad=pad, groups=G, relu=relu,
             res=rng.integers(-128, 128, (K, Ho, Wo), dtype=np.int8) if residual else None,
             omask=om, imask=im)
    return d


@pytest.mark.parametrize("groups", [1, 2, 3])
@pytest.mark.parametrize("variant", ["plain", "relu", "res", "res_relu", "omask", "imask",
                                     "all"])
@pytest.mark.parametrize("seed", range(3))
def test_gated_matches_nested_loops(groups, variant, seed):
    variants = ["plain", "relu", "res", "res_relu", "omask", "imask", "all"]
    rng = np.random.default_rng([groups, variants.index(variant), seed])
    d = _random_layer(rng, groups=groups, residual="res" in variant or variant == "all",
                      relu="relu" in variant or variant == "all",
                      omask=variant in ("omask", "all"), imask=variant in ("imask", "all"))
    r = gated_conv(**d)
    want_y, want_gate = ref_gated(*(d[k] for k in ("x", "w", "bias", "thr", "mult", "shift",
                                                   "stride", "pad", "groups", "relu", "res",
                                                   "omask", "imask")))
    assert r.y.dtype == np.int8 and r.gate.dtype == np.uint8
    np.testing.assert_array_equal(r.gate, want_gate)
    np.testing.assert_array_equal(r.y, want_y)


def test_gated_intermediates():
    rng = np.random.default_rng(11)
    d = _random_layer(rng, groups=2, residual=False, relu=False, omask=False, imask=False)
    r = gated_conv(**d)
    x, w = d["x"], d["w"]
    C, K = x.shape[0], w.shape[0]
    full = conv2d_int(x, w, d["stride"], d["pad"])
    np.testing.assert_array_equal(r.psum_full, full)
    for k in range(K):
        lo, hi = base_channels(k, C, K, 2)
        base = conv2d_int(x[lo:hi], w[k:k + 1, lo:hi], d["stride"], d["pad"])[0]
        np.testing.assert_array_equal(r.psum_base[k], base)
    gate = r.psum_base > d["thr"][:, None, None]
    np.testing.assert_array_equal(r.gate, gate)
    np.testing.assert_array_equal(r.acc, np.where(gate, full, r.psum_base))
    np.testing.assert_array_equal(r.y, requantize(r.acc, d["bias"], d["mult"], d["shift"]))


def test_dense_layer_ignores_thr_and_opens_every_gate():
    rng = np.random.default_rng(3)
    d = _random_layer(rng, groups=1, residual=False, relu=False, omask=False, imask=False)
    r = gated_conv(**d)
    d["thr"] = None
    r2 = gated_conv(**d)
    assert r.gate.all()
    np.testing.assert_array_equal(r.acc, r.psum_full)
    np.testing.assert_array_equal(r.y, r2.y)
    assert r.stats.executed == r.stats.dense and r.stats.reduction == 1.0


def test_imask_skipping_does_not_change_results():
    rng = np.random.default_rng(4)
    d = _random_layer(rng, groups=2, residual=True, relu=True, omask=True, imask=True)
    with_mask = gated_conv(**d)
    d["imask"] = None
    without = gated_conv(**d)
    for name in ("y", "gate", "psum_base", "psum_full", "acc"):
        np.testing.assert_array_equal(getattr(with_mask, name), getattr(without, name))


def test_omask_channel_with_residual_and_relu():
    x = np.ones((2, 3, 3), np.int8)
    w = np.ones((2, 2, 1, 1), np.int8)
    tab = dict(bias=np.array([100, 100], np.int32), thr=np.zeros(2, np.int32),
               mult=np.ones(2, np.int32), shift=np.ones(2, np.int32))
    res = np.full((2, 3, 3), -7, np.int8)
    res[1, 0, 0] = 9
    r = gated_conv(x, w, **tab, groups=2, res=res, omask=np.array([1, 0], np.uint8))
    assert (r.y[0] == 44).all()  # (2 + 100) / 2 = 51, plus -7
    np.testing.assert_array_equal(r.y[1], res[1])  # off channel: 0 + residual
    assert not r.gate[1].any() and not r.acc[1].any() and not r.psum_full[1].any()
    r = gated_conv(x, w, **tab, groups=2, res=res, relu=True, omask=np.array([1, 0], np.uint8))
    np.testing.assert_array_equal(r.y[1], np.maximum(res[1], 0))


def test_residual_saturates():
    x = np.zeros((1, 2, 2), np.int8)
    w = np.zeros((2, 1, 1, 1), np.int8)
    tab = dict(bias=np.array([254, -256], np.int32), thr=None, mult=np.ones(2, np.int32),
               shift=np.ones(2, np.int32))
    res = np.array([[[1, 127], [-128, -1]], [[1, 127], [-128, -1]]], np.int8)
    r = gated_conv(x, w, **tab, res=res)
    np.testing.assert_array_equal(r.y[0], [[127, 127], [-1, 126]])
    np.testing.assert_array_equal(r.y[1], [[-127, -1], [-128, -128]])


def test_stats_counts():
    x = np.ones((4, 3, 3), np.int8)
    w = np.ones((4, 4, 3, 3), np.int8)
    thr = np.array([100, -100, 100, -100], np.int32)  # channels 1, 3 always open
    one = np.ones(4, np.int32)
    r = gated_conv(x, w, np.zeros(4, np.int32), thr, one, one, pad=1, groups=2)
    st = r.stats
    assert st.dense == 4 * 4 * 9 * 9
    assert st.base == 4 * 2 * 9 * 9
    assert st.conditional == 2 * 2 * 9 * 9
    assert st.executed == st.base + st.conditional
    assert st.reduction == pytest.approx(st.dense / st.executed)
    assert st.conditional_fraction == pytest.approx(0.5)
    r = gated_conv(x, w, np.zeros(4, np.int32), thr, one, one, pad=1, groups=2,
                   omask=np.array([1, 1, 0, 1], np.uint8), imask=np.array([1, 1, 1, 1], bool))
    assert r.stats.base == 3 * 2 * 9 * 9 and r.stats.conditional == 2 * 2 * 9 * 9
    x[3] = 0
    r = gated_conv(x, w, np.zeros(4, np.int32), np.full(4, -1000, np.int32), one, one, pad=1,
                   groups=2, imask=np.array([1, 1, 1, 0], np.uint8))
    # Channels 0, 1 (group 0): base 2 inputs, conditional 1 input (3 is masked); group 1: 1 + 2
    assert r.stats.base == (2 * 2 + 2 * 1) * 9 * 9
    assert r.stats.conditional == (2 * 1 + 2 * 2) * 9 * 9


def _valid():
    K, C = 4, 2
    return dict(x=np.zeros((C, 5, 5), np.int8), w=np.zeros((K, C, 3, 3), np.int8),
                bias=np.zeros(K, np.int32), thr=np.zeros(K, np.int32),
                mult=np.ones(K, np.int32), shift=np.ones(K, np.int32))


@pytest.mark.parametrize("change, exc, msg", [
    (dict(x=np.zeros((2, 5, 5), np.int16)), TypeError, r"x must be an int8 array, not int16"),
    (dict(w=np.zeros((4, 2, 3), np.int8)), ValueError,
     r"w must be a 4-D array \[K, C, R, S\], not shape \(4, 2, 3\)"),
    (dict(w=np.zeros((4, 3, 3, 3), np.int8)), ValueError,
     r"w must have C=2 input channels like x, not 3"),
    (dict(bias=np.zeros(4, np.int64)), TypeError, r"bias must be an int32 array, not int64"),
    (dict(thr=np.zeros(3, np.int32)), ValueError, r"thr must have K=4 entries, not 3"),
    (dict(mult=np.array([1, 1, 0, 1], np.int32)), ValueError,
     r"mult must be positive, not 0 \(channel 2\)"),
    (dict(shift=np.array([1, 63, 1, 1], np.int32)), ValueError,
     r"shift must be between 1 and 62, not 63 \(channel 1\)"),
    (dict(shift=np.array([1, 1, 1, 0], np.int32)), ValueError,
     r"shift must be between 1 and 62, not 0 \(channel 3\)"),
    (dict(groups=3), ValueError, r"groups must divide C=2 and K=4, not 3"),
    (dict(groups=0), ValueError, r"groups must be an integer >= 1, not 0"),
    (dict(groups=2.0), TypeError, r"groups must be an integer, not 2.0"),
    (dict(stride=0), ValueError, r"stride must be an integer >= 1, not 0"),
    (dict(pad=-1), ValueError, r"pad must be an integer >= 0, not -1"),
    (dict(x=np.zeros((2, 2, 5), np.int8)), ValueError,
     r"output size must be at least 1, not 0 \(input 2, kernel 3, pad 0\)"),
    (dict(relu=1), TypeError, r"relu must be a bool, not 1"),
    (dict(res=np.zeros((4, 3, 2), np.int8)), ValueError,
     r"res must have shape \(4, 3, 3\) \[K, Ho, Wo\], not \(4, 3, 2\)"),
    (dict(res=np.zeros((4, 3, 3), np.int32)), TypeError, r"res must be an int8 array, not int32"),
    (dict(omask=np.ones(3, np.uint8)), ValueError,
     r"omask must have shape \(4,\) \[K\], not \(3,\)"),
    (dict(omask=np.ones(4, np.int32)), TypeError,
     r"omask must be a uint8 or bool array, not int32"),
    (dict(imask=np.array([1, 2], np.uint8)), ValueError,
     r"imask must hold only 0 and 1, not 2 \(entry 1\)"),
    (dict(imask=[1, 1]), TypeError, r"imask must be a numpy array, not list"),
    (dict(groups=2, thr=None), ValueError, r"thr must be an int32 array \[K\] when groups > 1"),
    (dict(x=np.zeros((0, 5, 5), np.int8), w=np.zeros((4, 0, 3, 3), np.int8)), ValueError,
     r"x must have every dimension >= 1, not shape \(0, 5, 5\)"),
])
def test_gated_validation(change, exc, msg):
    d = _valid()
    d.update(change)
    with pytest.raises(exc, match=msg):
        gated_conv(**d)


def test_gated_rejects_nonzero_masked_input():
    d = _valid()
    d["x"][1, 2, 3] = 5
    with pytest.raises(ValueError, match=r"x must be zero in the channels imask marks 0, not "
                                         r"nonzero in channel 1"):
        gated_conv(**d, imask=np.array([1, 0], np.uint8))


def test_model_never_imports_amaranth():
    code = ("import sys, cgaccel.model, cgaccel.model.layer, cgaccel.model.stats\n"
            "import pkgutil, importlib\n"
            "for m in pkgutil.iter_modules(cgaccel.model.__path__):\n"
            "    importlib.import_module('cgaccel.model.' + m.name)\n"
            "assert 'amaranth' not in sys.modules, sorted(k for k in sys.modules if 'amar' in k)\n"
            "print('ok')\n")
    root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=False, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
