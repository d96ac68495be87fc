"""fold_bn_threshold against the float batch-norm gate formula."""

import numpy as np
import pytest

from cgaccel.model.layer import fold_bn_threshold


def _float_gate(p, gamma, beta, mean, var, eps, delta, xs, ws, sign):
    """The float CGNet gate BN(y) > delta on the real value y of integer psums p [K, N]."""
    y = xs * (ws * sign)[:, None] * p
    bn = gamma[:, None] * (y - mean[:, None]) / np.sqrt(var + eps)[:, None] + beta[:, None]
    return bn > delta[:, None]


def _random_bn(rng, K):
    return dict(gamma=rng.uniform(0.2, 2.0, K) * rng.choice([1, 1, 1, 1e-3], K),
                beta=rng.normal(0, 1, K), mean=rng.normal(0, 2, K),
                var=rng.uniform(0.05, 4.0, K), eps=1e-5, delta=rng.normal(0, 0.5, K))


@pytest.mark.parametrize("seed", range(6))
def test_matches_float_formula_on_random_data(seed):
    rng = np.random.default_rng(seed)
    K = 32
    bn = _random_bn(rng, K)
    xs, ws = rng.uniform(0.005, 0.05), rng.uniform(1e-3, 2e-2, K)
    thr = fold_bn_threshold(**bn, x_scale=xs, w_scale=ws)
    assert thr.dtype == np.int32 and thr.shape == (K,)
    # Random psums plus the integers around each threshold, where an off-by-one would show.
    p = rng.integers(-200_000, 200_000, (K, 2000))
    p[:, :5] = thr.astype(np.int64)[:, None] + np.arange(-2, 3)
    args = (bn["gamma"], bn["beta"], bn["mean"], bn["var"], bn["eps"], bn["delta"], xs, ws,
            np.ones(K))
    want = _float_gate(p, *args)
    np.testing.assert_array_equal(p > thr.astype(np.int64)[:, None], want)
    assert want[:, 3].all() and not want[:, 2].any()  # thr + 1 opens, thr stays closed


def test_negative_gamma_with_negated_weights():
    rng = np.random.default_rng(9)
    K = 16
    bn = _random_bn(rng, K)
    sign = rng.choice([-1, 1], K)
    bn["gamma"] = np.abs(bn["gamma"]) * sign  # negative gamma exactly where weights are negated
    xs, ws = 0.02, rng.uniform(1e-3, 2e-2, K)
    thr = fold_bn_threshold(**bn, x_scale=xs, w_scale=ws, weight_sign=sign)
    p = rng.integers(-200_000, 200_000, (K, 2000))
    p[:, :5] = thr.astype(np.int64)[:, None] + np.arange(-2, 3)
    want = _float_gate(p, bn["gamma"], bn["beta"], bn["mean"], bn["var"], bn["eps"],
                       bn["delta"], xs, ws, sign)
    np.testing.assert_array_equal(p > thr.astype(np.int64)[:, None], want)


def test_negative_gamma_without_negated_weights_raises():
    with pytest.raises(ValueError, match=r"gamma \* weight_sign must be >= 0 .*negate the "
                                         r"channel's weights and pass weight_sign=-1\), not "
                                         r"-0.5 \(channel 1\)"):
        fold_bn_threshold([1.0, -0.5], [0, 0], [0, 0], [1, 1], 0.0, 0.0)


def test_gamma_zero_is_constant_gate():
    thr = fold_bn_threshold([0.0, 0.0], [1.0, -1.0], [0, 0], [1, 1], 1e-5, [0.5, 0.5])
    assert thr[0] == -(2**31) and thr[1] == 2**31 - 1


def test_exact_integer_bound_and_clipping():
    # t = mean + sigma*(delta - beta)/gamma = 0 + 1*(3 - 0)/1 = 3; y = p: p > 3 opens.
    assert fold_bn_threshold([1.0], [0.0], [0.0], [1.0], 0.0, 3.0)[0] == 3
    assert fold_bn_threshold([1.0], [0.0], [0.0], [1.0], 0.0, 3.5)[0] == 3
    assert fold_bn_threshold([1.0], [0.0], [0.0], [1.0], 0.0, -3.5)[0] == -4
    assert fold_bn_threshold([1.0], [0.0], [0.0], [1.0], 0.0, 1e12)[0] == 2**31 - 1
    assert fold_bn_threshold([1.0], [0.0], [0.0], [1.0], 0.0, -1e12)[0] == -(2**31)
    # Scales: y = 0.5 * 0.25 * p, so y > 3 <=> p > 24.
    assert fold_bn_threshold([1.0], [0.0], [0.0], [1.0], 0.0, 3.0, 0.5, 0.25)[0] == 24


@pytest.mark.parametrize("kw, msg", [
    (dict(x_scale=0.0), r"x_scale must be positive, not 0.0"),
    (dict(w_scale=[1.0, -1.0]), r"w_scale must be positive, not -1.0"),
    (dict(weight_sign=[1, 0]), r"weight_sign must be \+1 or -1, not 0.0"),
    (dict(var=[1.0, -1.0]), r"var \+ eps must be positive, not -1.0 \(channel 1\)"),
    (dict(beta=[0.0, 1.0, 2.0]), r"beta must be a scalar or have shape \(2,\), not \(3,\)"),
    (dict(delta=[np.nan, 0.0]), r"delta must be finite, not nan"),
])
def test_validation(kw, msg):
    args = dict(gamma=[1.0, 1.0], beta=[0.0, 0.0], mean=[0.0, 0.0], var=[1.0, 1.0], eps=0.0,
                delta=0.0)
    args.update(kw)
    with pytest.raises(ValueError, match=msg):
        fold_bn_threshold(**args)
