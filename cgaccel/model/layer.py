"""Exact integer golden model of one quantized, channel-gated convolution layer.

Pure numpy, never imports amaranth. Every RTL result is compared with these functions using
``np.testing.assert_array_equal``.

Layouts: activations ``x`` are ``[C, H, W]`` (channel-major, one image), weights ``w`` are
``[K, C, R, S]``, every per-output-channel table (``bias``, ``thr``, ``mult``, ``shift``) is
``[K]`` and every output map is ``[K, Ho, Wo]`` with ``Ho = (H + 2*pad - R) // stride + 1``
(``Wo`` likewise). Padding is zero padding.

Layer semantics (:func:`gated_conv`)
-------------------------------------
CGNet fine-grained gating with ``G = groups`` channel groups: output channel ``k`` belongs to
group ``g = k // (K // G)`` and its *base path* reads input channels
``[g*C/G, (g+1)*C/G)`` (:func:`base_channels`). For every output activation::

    psum_base = conv over the base channels of k
    psum_full = conv over all C input channels
    gate      = psum_base > thr[k]
    acc       = psum_full if gate else psum_base
    q         = requantize(acc, bias[k], mult[k], shift[k])     # int8, see requantize()
    q         = clamp_int8(q + res)        if a residual is given
    q         = max(q, 0)                  if relu
    y         = q

``groups == 1`` is a dense layer: no conditional path, ``gate`` is all ones, ``acc =
psum_full`` and ``thr`` is ignored (it may be ``None``).

FBS channel skipping: ``omask[k] == 0`` switches output channel ``k`` off; it does no work, so
its ``psum_base``, ``psum_full``, ``acc`` and ``gate`` are 0 and its ``q`` is 0 *before* the
residual and ReLU (with a residual, ``y = relu?(clamp_int8(0 + res))``). ``imask[c] == 0``
declares input channel ``c`` known zero (the previous layer switched it off); such channels are
skipped (never fetched nor multiplied), which cannot change any result because ``x`` must
actually be zero there (a ValueError otherwise). FBS's per-image saliency scaling of an output
channel is a positive real factor applied after the convolution; it is folded into that
channel's ``mult``/``shift`` for the image (``mult' / 2**shift' ~= s * mult / 2**shift``), so
it needs no separate input here.
"""

from dataclasses import dataclass, field

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .stats import MacStats, mac_stats
from .threshold import fold_bn_threshold

__all__ = [
    "LayerResult",
    "base_channels",
    "conv2d_int",
    "fold_bn_threshold",
    "gated_conv",
    "output_size",
    "requantize",
]

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
_F64_EXACT = 1 << 53


# Validation helpers -------------------------------------------------------------------------

def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _check_int(name, value, lo):
    if not _is_int(value):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if value < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, not {value}")
    return int(value)


def _check_array(name, a, dtype, ndim, layout):
    """Check ``a`` is an ndarray of ``dtype`` ("int" for any integer dtype) and ``ndim``."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, not {type(a).__name__}")
    if dtype == "int":
        if not np.issubdtype(a.dtype, np.integer):
            raise TypeError(f"{name} must be an integer array, not {a.dtype}")
    elif a.dtype != np.dtype(dtype):
        raise TypeError(f"{name} must be an {np.dtype(dtype)} array, not {a.dtype}")
    if a.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array {layout}, not shape {a.shape}")
    return a


def _check_table(name, a, K):
    _check_array(name, a, np.int32, 1, "[K]")
    if a.shape[0] != K:
        raise ValueError(f"{name} must have K={K} entries, not {a.shape[0]}")
    return a


def _check_mask(name, a, n, what):
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, not {type(a).__name__}")
    if a.dtype not in (np.dtype(np.uint8), np.dtype(bool)):
        raise TypeError(f"{name} must be a uint8 or bool array, not {a.dtype}")
    if a.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},) [{what}], not {a.shape}")
    bad = np.flatnonzero(a.astype(np.uint8) > 1)
    if bad.size:
        raise ValueError(f"{name} must hold only 0 and 1, not {int(a[bad[0]])} "
                         f"(entry {int(bad[0])})")
    return a.astype(bool)


def output_size(size, kernel, stride, pad):
    """Output length ``(size + 2*pad - kernel) // stride + 1`` of one spatial axis.

    Raises ValueError when it would be below 1.
    """
    span = size + 2 * pad - kernel
    if span < 0:
        raise ValueError(f"output size must be at least 1, not 0 (input {size}, kernel "
                         f"{kernel}, pad {pad})")
    return span // stride + 1


# Convolution ----------------------------------------------------------------------------------

def conv2d_int(x, w, stride=1, pad=0):
    """Exact integer 2-D convolution (cross-correlation, like ``torch.nn.functional.conv2d``).

    Parameters
    ----------
    x : ndarray, integer, shape [C, H, W]
    w : ndarray, integer, shape [K, C, R, S]
    stride : int, >= 1
    pad : int, >= 0
        Zero padding on every side.

    Returns
    -------
    ndarray, int64, shape [K, Ho, Wo]
        ``out[k, i, j] = sum_{c,r,s} x[c, i*stride + r - pad, j*stride + s - pad] * w[k, c, r, s]``.

    Raises
    ------
    TypeError, ValueError
        Bad types, inconsistent shapes, bad stride/pad, empty output, or operands so large that
        a sum could leave the int64 range.

    Notes
    -----
    im2col plus one matrix product. When every partial sum is provably below 2**53 in
    magnitude (always true for int8 operands up to ~2**38 taps) the product runs in float64
    BLAS, which is then exact; otherwise it runs in int64.
    """
    _check_array("x", x, "int", 3, "[C, H, W]")
    _check_array("w", w, "int", 4, "[K, C, R, S]")
    stride = _check_int("stride", stride, 1)
    pad = _check_int("pad", pad, 0)
    C, H, W = x.shape
    K, Cw, R, S = w.shape
    if Cw != C:
        raise ValueError(f"w must have C={C} input channels like x, not {Cw}")
    Ho = output_size(H, R, stride, pad)
    Wo = output_size(W, S, stride, pad)
    out = np.zeros((K, Ho, Wo), dtype=np.int64)
    if K == 0 or C == 0:
        return out
    xmax = int(np.abs(x.astype(np.int64)).max()) if x.size else 0
    wmax = int(np.abs(w.astype(np.int64)).max()) if w.size else 0
    bound = xmax * wmax * C * R * S
    if bound >= 1 << 63:
        raise ValueError(f"conv2d_int operands must keep sums below 2**63, not up to {bound}")
    exact_float = bound < _F64_EXACT
    dt = np.float64 if exact_float else np.int64
    xp = np.pad(x.astype(dt), ((0, 0), (pad, pad), (pad, pad)))
    win = sliding_window_view(xp, (R, S), axis=(1, 2))[:, ::stride, ::stride][:, :Ho, :Wo]
    cols = win.transpose(0, 3, 4, 1, 2).reshape(C * R * S, Ho * Wo)
    prod = w.reshape(K, C * R * S).astype(dt) @ cols
    if exact_float:
        prod = np.rint(prod)
    out[...] = prod.astype(np.int64).reshape(K, Ho, Wo)
    return out


def base_channels(k, C, K, groups):
    """Input-channel range ``(lo, hi)`` of output channel ``k``'s CGNet base path.

    Output channel ``k`` belongs to group ``g = k // (K // groups)``; its base path is input
    channels ``[g*C/groups, (g+1)*C/groups)``. With ``groups == 1`` that is all of ``C``.
    """
    C = _check_int("C", C, 1)
    K = _check_int("K", K, 1)
    groups = _check_int("groups", groups, 1)
    k = _check_int("k", k, 0)
    if C % groups or K % groups:
        raise ValueError(f"groups must divide C={C} and K={K}, not {groups}")
    if k >= K:
        raise ValueError(f"k must be below K={K}, not {k}")
    g = k // (K // groups)
    cg = C // groups
    return g * cg, (g + 1) * cg


# Requantization -------------------------------------------------------------------------------

def _per_channel(name, v, n, lo, hi):
    """Integer scalar or [n] integer array -> int64 array broadcastable along axis 0."""
    if _is_int(v):
        arr = np.asarray(int(v), dtype=np.int64)
    else:
        if not isinstance(v, np.ndarray) or not np.issubdtype(v.dtype, np.integer):
            raise TypeError(f"{name} must be an integer or integer array, not {v!r}")
        if v.ndim not in (0, 1) or (v.ndim == 1 and v.shape[0] != n):
            raise ValueError(f"{name} must be a scalar or have shape ({n},), not {v.shape}")
        arr = v.astype(np.int64)
    bad = np.flatnonzero((arr < lo) | (arr > hi))
    if bad.size:
        raise ValueError(f"{name} must be between {lo} and {hi}, not {int(arr.flat[bad[0]])}")
    return arr


def requantize(acc, bias, mult, shift):
    """Scale int32-range accumulators to int8: ``clamp(((acc + bias) * mult + 2**(shift-1))
    >> shift, -128, 127)``.

    The shift is arithmetic, so the result is ``acc + bias`` times ``mult / 2**shift`` rounded
    to nearest with ties towards +infinity (2.5 -> 3, -2.5 -> -2), then saturated.

    Parameters
    ----------
    acc : ndarray, integer, values in the int32 range
        Leading axis is the output channel (e.g. [K, Ho, Wo]); any shape when the three tables
        are scalars.
    bias : int or ndarray [K], values in the int32 range
    mult : int or ndarray [K], values in 1 .. 2**31-1
    shift : int or ndarray [K], values in 1 .. 62

    Returns
    -------
    ndarray, int8, same shape as ``acc``

    Notes
    -----
    ``acc + bias`` needs 33 bits and ``mult`` 31, so the product fits int64 exactly; adding the
    rounding constant could overflow, so the rounding is split into ``(p >> shift)`` plus a
    carry from the low ``shift`` bits, each term of which fits int64.
    """
    if not isinstance(acc, np.ndarray) or not np.issubdtype(acc.dtype, np.integer):
        raise TypeError(f"acc must be an integer array, not {acc!r}")
    n = acc.shape[0] if acc.ndim else 1
    a = acc.astype(np.int64)
    if a.size and (a.min() < INT32_MIN or a.max() > INT32_MAX):
        worst = int(a.max()) if a.max() > INT32_MAX else int(a.min())
        raise ValueError(f"acc must be within the int32 range, not {worst}")
    b = _per_channel("bias", bias, n, INT32_MIN, INT32_MAX)
    m = _per_channel("mult", mult, n, 1, INT32_MAX)
    s = _per_channel("shift", shift, n, 1, 62)
    extra = (1,) * max(acc.ndim - 1, 0)
    if b.ndim:
        b = b.reshape(b.shape + extra)
    if m.ndim:
        m = m.reshape(m.shape + extra)
    if s.ndim:
        s = s.reshape(s.shape + extra)
    p = (a + b) * m
    one = np.int64(1)
    low = np.bitwise_and(p, (one << s) - one)  # p mod 2**s, >= 0 (two's complement)
    q = (p >> s) + ((low + (one << (s - one))) >> s)
    return np.clip(q, -128, 127).astype(np.int8)


# Gated layer ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class LayerResult:
    """Everything :func:`gated_conv` computes, for comparison with the hardware.

    Members
    -------
    y : ndarray, int8, [K, Ho, Wo]
        Layer output.
    gate : ndarray, uint8, [K, Ho, Wo]
        1 where the conditional path executed (all 1 for a dense layer; 0 on masked channels).
    psum_base, psum_full, acc : ndarray, int64, [K, Ho, Wo]
        Base-path sum, full sum, and the sum that was requantized.
    stats : MacStats
        MAC counts (see :mod:`cgaccel.model.stats`).
    """

    y: np.ndarray
    gate: np.ndarray
    psum_base: np.ndarray
    psum_full: np.ndarray
    acc: np.ndarray
    stats: MacStats = field(repr=False)


def gated_conv(x, w, bias, thr, mult, shift, *, stride=1, pad=0, groups=1, relu=False, res=None,
               omask=None, imask=None):
    """Evaluate one quantized channel-gated convolution layer exactly (see module docstring).

    Parameters
    ----------
    x : ndarray, int8, [C, H, W]
    w : ndarray, int8, [K, C, R, S]
    bias : ndarray, int32, [K]
        Added to the accumulator before scaling.
    thr : ndarray, int32, [K], or None when ``groups == 1``
        Gate threshold in the base-psum domain: the gate opens where ``psum_base > thr``.
    mult : ndarray, int32, [K], values >= 1
    shift : ndarray, int32, [K], values 1..62
    stride : int, >= 1
    pad : int, >= 0
    groups : int, >= 1, dividing C and K
        CGNet group count; 1 means a dense (ungated) layer.
    relu : bool
    res : ndarray, int8, [K, Ho, Wo], optional
        Residual added (saturating) after requantization, before ReLU.
    omask : ndarray, uint8 or bool, [K], optional
        FBS output-channel mask (1 = compute).
    imask : ndarray, uint8 or bool, [C], optional
        FBS input-channel mask (0 = channel known zero and skipped).

    Returns
    -------
    LayerResult

    Raises
    ------
    TypeError, ValueError
        Any input of the wrong type, dtype, shape or range, with a "X must be Y, not Z" message.
    """
    _check_array("x", x, np.int8, 3, "[C, H, W]")
    _check_array("w", w, np.int8, 4, "[K, C, R, S]")
    C, H, W = x.shape
    K, Cw, R, S = w.shape
    if C < 1 or H < 1 or W < 1:
        raise ValueError(f"x must have every dimension >= 1, not shape {x.shape}")
    if K < 1 or R < 1 or S < 1:
        raise ValueError(f"w must have every dimension >= 1, not shape {w.shape}")
    if Cw != C:
        raise ValueError(f"w must have C={C} input channels like x, not {Cw}")
    stride = _check_int("stride", stride, 1)
    pad = _check_int("pad", pad, 0)
    groups = _check_int("groups", groups, 1)
    if C % groups or K % groups:
        raise ValueError(f"groups must divide C={C} and K={K}, not {groups}")
    if not isinstance(relu, (bool, np.bool_)):
        raise TypeError(f"relu must be a bool, not {relu!r}")
    Ho = output_size(H, R, stride, pad)
    Wo = output_size(W, S, stride, pad)
    _check_table("bias", bias, K)
    if thr is None:
        if groups != 1:
            raise ValueError("thr must be an int32 array [K] when groups > 1, not None")
    else:
        _check_table("thr", thr, K)
    _check_table("mult", mult, K)
    _check_table("shift", shift, K)
    if (mult < 1).any():
        k = int(np.flatnonzero(mult < 1)[0])
        raise ValueError(f"mult must be positive, not {int(mult[k])} (channel {k})")
    if ((shift < 1) | (shift > 62)).any():
        k = int(np.flatnonzero((shift < 1) | (shift > 62))[0])
        raise ValueError(f"shift must be between 1 and 62, not {int(shift[k])} (channel {k})")
    if res is not None:
        _check_array("res", res, np.int8, 3, "[K, Ho, Wo]")
        if res.shape != (K, Ho, Wo):
            raise ValueError(f"res must have shape {(K, Ho, Wo)} [K, Ho, Wo], not {res.shape}")
    om = np.ones(K, dtype=bool) if omask is None else _check_mask("omask", omask, K, "K")
    im = np.ones(C, dtype=bool) if imask is None else _check_mask("imask", imask, C, "C")
    dead = np.flatnonzero(~im & (x != 0).reshape(C, -1).any(axis=1))
    if dead.size:
        raise ValueError(f"x must be zero in the channels imask marks 0, not nonzero in channel "
                         f"{int(dead[0])}")

    psum_full = np.zeros((K, Ho, Wo), dtype=np.int64)
    psum_base = np.zeros((K, Ho, Wo), dtype=np.int64)
    ks, cs = np.flatnonzero(om), np.flatnonzero(im)
    if ks.size and cs.size:
        # Masked input channels are really skipped: they are zero, so the sums are unchanged.
        psum_full[ks] = conv2d_int(x[cs], w[ks][:, cs], stride, pad)
    if groups == 1:
        psum_base[...] = psum_full
        gate = np.broadcast_to(om[:, None, None], (K, Ho, Wo))
    else:
        cg, kg = C // groups, K // groups
        for g in range(groups):
            kk = ks[(ks >= g * kg) & (ks < (g + 1) * kg)]
            cc = cs[(cs >= g * cg) & (cs < (g + 1) * cg)]
            if kk.size and cc.size:
                psum_base[kk] = conv2d_int(x[cc], w[kk][:, cc], stride, pad)
        gate = (psum_base > thr.astype(np.int64)[:, None, None]) & om[:, None, None]
    acc = np.where(gate, psum_full, psum_base)
    q = requantize(acc, bias, mult, shift)
    q[~om] = 0
    if res is not None:
        q = np.clip(q.astype(np.int16) + res, -128, 127).astype(np.int8)
    if relu:
        q = np.maximum(q, 0).astype(np.int8)
    gate = gate.astype(np.uint8)
    stats = mac_stats(gate, C, R, S, groups, om, im)
    return LayerResult(y=q, gate=gate, psum_base=psum_base, psum_full=psum_full, acc=acc,
                       stats=stats)
