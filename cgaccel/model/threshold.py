"""Fold batch-norm and CGNet's learned gate threshold into one integer psum threshold.

CGNet opens the conditional path of an output activation when the batch-normalized base partial
sum exceeds the learned threshold ``delta``::

    BN(y) = gamma * (y - mean) / sigma + beta,   sigma = sqrt(var + eps)
    open  <=>  BN(y) > delta
          <=>  y > mean + sigma * (delta - beta) / gamma      (gamma > 0)
          <=>  y < mean + sigma * (delta - beta) / gamma      (gamma < 0: the inequality flips)

The hardware sees the integer base partial sum ``p`` of the quantized layer, whose real value
is ``y = x_scale * w_scale[k] * weight_sign[k] * p``; ``weight_sign[k] = -1`` says the integer
weights of channel ``k`` are the negated real ones. The comparator only implements
``p > thr``, so:

* ``gamma * weight_sign > 0``: ``thr = floor(t / (x_scale * w_scale * weight_sign))`` with
  ``t = mean + sigma * (delta - beta) / gamma``; for integer ``p``, ``p > thr`` exactly when the
  real ``p`` exceeds the real bound, i.e. when the float comparison holds;
* ``gamma == 0``: ``BN(y) = beta`` is constant: ``thr = INT32_MIN`` (always open, any int32 psum
  above it) when ``beta > delta``, else ``INT32_MAX`` (never open);
* ``gamma * weight_sign < 0``: not expressible as ``p > thr``; raises ValueError. The supported
  fix is to negate that channel's integer weights and pass ``weight_sign = -1``. This is
  consistent when the gate's BN is the layer's output BN (CGNet normalizes the partial sum with
  the layer's BN): the negative ``gamma`` also makes the folded output scale negative, and
  negating the weights turns it positive again, as ``mult > 0`` requires.

Thresholds are clipped to the int32 range (a clipped threshold keeps its meaning for psums in
the int32 range, except a bound above INT32_MAX, which stays "never open").
"""

import numpy as np

__all__ = ["fold_bn_threshold"]

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


def _vec(name, v, K):
    a = np.asarray(v, dtype=np.float64)
    if a.ndim == 0:
        a = np.full(K, float(a))
    if a.shape != (K,):
        raise ValueError(f"{name} must be a scalar or have shape ({K},), not {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} must be finite, not {a[~np.isfinite(a)][0]}")
    return a


def fold_bn_threshold(gamma, beta, mean, var, eps, delta, x_scale=1.0, w_scale=1.0, *,
                      weight_sign=1):
    """Integer gate thresholds ``thr[k]`` such that ``p > thr[k]`` iff ``BN(y) > delta``.

    Parameters
    ----------
    gamma, beta, mean, var : array_like [K]
        The gate's batch-norm parameters and running statistics (real units of ``y``).
    eps : float
        Batch-norm epsilon (``var + eps`` must be positive).
    delta : float or array_like [K]
        Learned gate threshold, in BN-output units.
    x_scale : float
        Real value of one input LSB (> 0).
    w_scale : float or array_like [K]
        Real value of one weight LSB per output channel (> 0).
    weight_sign : int or array_like [K] of +1/-1
        -1 where the channel's integer weights are negated (see the module docstring).

    Returns
    -------
    ndarray, int32, [K]

    Raises
    ------
    ValueError
        Non-finite or non-positive scales, ``var + eps <= 0``, a sign other than +-1, or a
        channel with ``gamma * weight_sign < 0``.
    """
    gamma = np.asarray(gamma, dtype=np.float64)
    if gamma.ndim != 1:
        raise ValueError(f"gamma must be a 1-D array [K], not shape {gamma.shape}")
    K = gamma.shape[0]
    gamma = _vec("gamma", gamma, K)
    beta = _vec("beta", beta, K)
    mean = _vec("mean", mean, K)
    var = _vec("var", var, K)
    delta = _vec("delta", delta, K)
    eps = float(eps)
    w_scale = _vec("w_scale", w_scale, K)
    x_scale = float(x_scale)
    sign = _vec("weight_sign", weight_sign, K)
    if not x_scale > 0:
        raise ValueError(f"x_scale must be positive, not {x_scale}")
    if (w_scale <= 0).any():
        raise ValueError(f"w_scale must be positive, not {w_scale[w_scale <= 0][0]}")
    if ((sign != 1) & (sign != -1)).any():
        raise ValueError(f"weight_sign must be +1 or -1, not {sign[(sign != 1) & (sign != -1)][0]}")
    if (var + eps <= 0).any():
        k = int(np.flatnonzero(var + eps <= 0)[0])
        raise ValueError(f"var + eps must be positive, not {var[k] + eps} (channel {k})")
    bad = np.flatnonzero(gamma * sign < 0)
    if bad.size:
        k = int(bad[0])
        raise ValueError(f"gamma * weight_sign must be >= 0 (the gate only tests psum > thr; "
                         f"negate the channel's weights and pass weight_sign=-1), not "
                         f"{gamma[k] * sign[k]} (channel {k})")
    sigma = np.sqrt(var + eps)
    thr = np.empty(K, dtype=np.int64)
    for k in range(K):
        if gamma[k] == 0:
            thr[k] = INT32_MIN if beta[k] > delta[k] else INT32_MAX
            continue
        t = mean[k] + sigma[k] * (delta[k] - beta[k]) / gamma[k]
        bound = t / (x_scale * w_scale[k] * sign[k])
        if not np.isfinite(bound):
            thr[k] = INT32_MAX if bound > 0 else INT32_MIN
            continue
        thr[k] = int(np.clip(np.floor(bound), INT32_MIN, INT32_MAX))
    return thr.astype(np.int32)
