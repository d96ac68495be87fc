"""Synthetic layer data with the gate statistics of a trained CGNet.

No trained network is at hand, so :func:`make_layer` builds inputs whose *statistics* resemble
one:

* Spatially correlated gates. A smooth "object" map (a few Gaussian blobs over a dim background,
  :func:`blob_mask`) modulates the activation magnitude of every input channel, and every output
  channel's weights have a small positive mean, so base-path partial sums are large over the
  object and gates open there, in many channels at once (as CGNet's gates do on the salient
  region).
* Activations look post-ReLU (unsigned values stored in int8, about half zero) except for a
  first layer (C <= 3), whose input is a signed image.
* Per-channel thresholds are calibrated on the actual base partial sums so that the fraction of
  open gates over the computed (FBS-unmasked) output activations hits ``density``
  (:func:`calibrate_thresholds`); the default 0.3 makes about 30% of the conditional work
  execute.
* ``bias``, ``mult`` and ``shift`` centre and scale each channel's accumulator so that ``y``
  spans the int8 range with a standard deviation of roughly 36 and little saturation.

Every generator takes a seed and uses :func:`numpy.random.default_rng`: same seed, same bytes.
"""

import math

import numpy as np

from .layer import INT32_MAX, INT32_MIN, gated_conv
from .resnet18 import LayerShape

__all__ = ["blob_mask", "calibrate_thresholds", "choose_requant", "make_layer"]


def blob_mask(H, W, rng, *, blobs=None):
    """Smooth object map in [0, 1], shape [H, W]: 1..3 Gaussian blobs on a zero background."""
    n = int(rng.integers(1, 4)) if blobs is None else blobs
    yy, xx = np.mgrid[0:H, 0:W]
    m = np.zeros((H, W))
    for _ in range(n):
        cy, cx = rng.uniform(0.15, 0.85) * H, rng.uniform(0.15, 0.85) * W
        sy, sx = rng.uniform(0.12, 0.3) * H + 0.5, rng.uniform(0.12, 0.3) * W + 0.5
        m += np.exp(-0.5 * (((yy - cy) / sy) ** 2 + ((xx - cx) / sx) ** 2))
    return np.clip(m, 0.0, 1.0)


def calibrate_thresholds(psum_base, density, omask=None):
    """Per-channel int32 thresholds so that ``mean(psum_base[k] > thr[k]) ~= density``.

    The j-th computed channel targets ``round((j+1)*density*n) - round(j*density*n)`` open gates
    (``n = Ho*Wo``), so the layer total is ``round(J*density*n)`` for ``J`` computed channels even
    when ``n`` is tiny, and its threshold is the integer whose open count is closest to that
    (ties in ``psum_base`` can make it inexact). Channels that ``omask`` switches off get
    ``INT32_MAX`` (they have no gates).
    """
    if not 0.0 <= density <= 1.0:
        raise ValueError(f"density must be between 0 and 1, not {density}")
    K = psum_base.shape[0]
    flat = psum_base.reshape(K, -1).astype(np.int64)
    n = flat.shape[1]
    thr = np.full(K, INT32_MAX, dtype=np.int64)
    live = [k for k in range(K) if omask is None or omask[k]]
    for j, k in enumerate(live):
        want = round((j + 1) * density * n) - round(j * density * n)
        v = np.sort(flat[k])[::-1]  # descending
        if want >= n:
            t = v[-1] - 1
        elif want == 0:
            t = v[0]
        else:
            hi = v[want]  # gates open above: at most `want` values
            lo = hi - 1  # gates open at >= hi: more than `want` values
            c_hi, c_lo = int((v > hi).sum()), int((v > lo).sum())
            t = hi if abs(c_hi - want) <= abs(c_lo - want) else lo
        thr[k] = t
    return np.clip(thr, INT32_MIN, INT32_MAX).astype(np.int32)


def choose_requant(scale, mult_bits=31):
    """``(mult, shift)`` with ``mult / 2**shift ~= scale``, ``mult`` using ``mult_bits`` bits.

    ``scale`` must be positive. ``shift`` is kept in 1..62 (a very small scale loses mult
    precision, a very large one saturates mult).
    """
    if not scale > 0:
        raise ValueError(f"scale must be positive, not {scale}")
    if not 1 <= mult_bits <= 31:
        raise ValueError(f"mult_bits must be between 1 and 31, not {mult_bits}")
    frac, exp = math.frexp(scale)  # scale = frac * 2**exp, 0.5 <= frac < 1
    mult, shift = round(frac * (1 << mult_bits)), mult_bits - exp
    if mult == 1 << mult_bits:
        mult, shift = mult >> 1, shift - 1
    if shift > 62:
        mult, shift = max(1, round(scale * (1 << 62))), 62
    if shift < 1:
        mult, shift = min(INT32_MAX, round(scale * 2)), 1
    return int(mult), int(shift)


def _channel_mask(rng, n, density):
    m = rng.random(n) < density
    if not m.any():
        m[int(rng.integers(n))] = True
    return m.astype(np.uint8)


def make_layer(shape, groups, density=0.3, seed=0, fbs_density=None, residual=False,
               relu=False, *, mult_bits=31):
    """Random inputs for one gated conv layer, with CGNet-like gate statistics.

    Parameters
    ----------
    shape : LayerShape
    groups : int
        CGNet group count (1: dense layer, ``thr`` is then all zero and unused).
    density : float in [0, 1]
        Target fraction of open gates over the computed output activations.
    seed : int
    fbs_density : float in (0, 1], optional
        When given, FBS masks are generated: each output channel (``omask``) and each input
        channel (``imask``, and ``x`` is zeroed there) is kept with this probability (at least
        one of each is kept).
    residual : bool
        Add an int8 residual ``res`` [K, Ho, Wo].
    relu : bool
    mult_bits : int
        Bits of the requantization multipliers (31: TFLite-like, the full stated range).

    Returns
    -------
    dict
        Keyword arguments of :func:`cgaccel.model.layer.gated_conv`: ``x w bias thr mult shift
        stride pad groups relu`` plus ``res``, ``omask``, ``imask`` when used.
    """
    if not isinstance(shape, LayerShape):
        raise TypeError(f"shape must be a LayerShape, not {shape!r}")
    if not isinstance(groups, int) or isinstance(groups, bool):
        raise TypeError(f"groups must be an integer, not {groups!r}")
    if groups < 1 or shape.C % groups or shape.K % groups:
        raise ValueError(f"groups must divide C={shape.C} and K={shape.K}, not {groups}")
    if not 0.0 <= density <= 1.0:
        raise ValueError(f"density must be between 0 and 1, not {density}")
    if fbs_density is not None and not 0.0 < fbs_density <= 1.0:
        raise ValueError(f"fbs_density must be in (0, 1], not {fbs_density}")
    rng = np.random.default_rng(seed)
    C, H, W, K, R, S = shape.C, shape.H, shape.W, shape.K, shape.R, shape.S
    Ho, Wo = shape.Ho, shape.Wo

    obj = blob_mask(H, W, rng)
    if C <= 3:  # an image: signed, object brighter/more textured than the background
        tex = rng.normal(0.0, 1.0, (C, H, W))
        xf = 45.0 * (0.25 + obj) * tex + rng.normal(0.0, 8.0, (C, 1, 1))
    else:  # post-ReLU features: a per-channel offset + object drive + noise, rectified
        gain = rng.uniform(0.5, 2.0, (C, 1, 1))
        off = rng.uniform(-1.0, 0.2, (C, 1, 1))
        xf = 25.0 * np.maximum(off + gain * obj + rng.normal(0.0, 0.4, (C, H, W)), 0.0)
    x = np.clip(np.rint(xf), -128, 127).astype(np.int8)

    sd = 30.0
    mu = sd * rng.uniform(0.1, 0.4, (K, 1, 1, 1))
    w = np.clip(np.rint(rng.normal(mu, sd, (K, C, R, S))), -128, 127).astype(np.int8)

    out = dict(x=x, w=w, stride=shape.stride, pad=shape.pad, groups=groups, relu=bool(relu))
    if fbs_density is not None:
        out["omask"] = _channel_mask(rng, K, fbs_density)
        out["imask"] = _channel_mask(rng, C, fbs_density)
        x[out["imask"] == 0] = 0
    if residual:
        # Skip-path activations: correlated with the object, like the block's input.
        oy = np.clip((np.arange(Ho) * H) // Ho, 0, H - 1)
        ox = np.clip((np.arange(Wo) * W) // Wo, 0, W - 1)
        o = obj[np.ix_(oy, ox)]
        rf = 30.0 * o + rng.normal(0.0, 25.0, (K, Ho, Wo)) - 5.0
        out["res"] = np.clip(np.rint(rf), -128, 127).astype(np.int8)

    zeros = np.zeros(K, dtype=np.int32)
    ones = np.ones(K, dtype=np.int32)
    probe = gated_conv(x, w, zeros, np.full(K, INT32_MAX, np.int32), ones, ones,
                       stride=shape.stride, pad=shape.pad, groups=groups,
                       omask=out.get("omask"), imask=out.get("imask"))
    if groups == 1:
        thr = zeros.copy()
        acc = probe.psum_full
    else:
        thr = calibrate_thresholds(probe.psum_base, density, out.get("omask"))
        acc = np.where(probe.psum_base > thr[:, None, None].astype(np.int64), probe.psum_full,
                       probe.psum_base)

    bias = np.zeros(K, dtype=np.int64)
    mult = np.zeros(K, dtype=np.int64)
    shift = np.zeros(K, dtype=np.int64)
    for k in range(K):
        a = acc[k].astype(np.float64)
        mean, std = float(a.mean()), float(a.std()) + 1.0
        bias[k] = int(np.clip(round(-mean + std * rng.uniform(-0.5, 0.5)), INT32_MIN, INT32_MAX))
        mult[k], shift[k] = choose_requant(127.0 / (3.5 * std) * rng.uniform(0.8, 1.25),
                                           mult_bits)
    out.update(bias=bias.astype(np.int32), thr=thr, mult=mult.astype(np.int32),
               shift=shift.astype(np.int32))
    return out
