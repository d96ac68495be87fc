"""Synthetic layer data: calibrated gate density, spatial correlation, output spread, seeds."""

import numpy as np
import pytest

from cgaccel.model.data import blob_mask, calibrate_thresholds, choose_requant, make_layer
from cgaccel.model.layer import gated_conv
from cgaccel.model.resnet18 import LayerShape, get_layer


def _open_fraction(d, r):
    on = d.get("omask", np.ones(r.gate.shape[0], np.uint8)).astype(bool)
    return float(r.gate[on].mean())


@pytest.mark.parametrize("name, groups, density, seed", [
    ("cifar.layer1.0.conv1", 4, 0.3, 0),
    ("cifar.layer1.1.conv2", 2, 0.2, 1),
    ("cifar.layer2.0.conv1", 4, 0.4, 2),
    ("cifar.layer3.1.conv1", 8, 0.25, 3),
    ("cifar.layer4.0.downsample", 4, 0.3, 4),
    ("imagenet.layer3.0.conv2", 4, 0.3, 5),
    ("cifar.layer2.0.conv1/s4", 4, 0.3, 6),
    ("cifar.layer3.0.conv2/s8", 2, 0.35, 7),
])
def test_calibrated_density_within_two_points(name, groups, density, seed):
    d = make_layer(get_layer(name), groups, density, seed)
    r = gated_conv(**d)
    assert abs(_open_fraction(d, r) - density) <= 0.02
    # Executed conditional work is the open fraction of the possible conditional work.
    assert abs(r.stats.conditional_fraction - density) <= 0.02


def test_density_with_fbs_masks_counts_computed_channels_only():
    d = make_layer(get_layer("cifar.layer2.1.conv1"), 4, 0.3, 11, fbs_density=0.5)
    r = gated_conv(**d)
    assert abs(_open_fraction(d, r) - 0.3) <= 0.02
    om, im = d["omask"].astype(bool), d["imask"].astype(bool)
    assert 0 < om.sum() < om.size and 0 < im.sum() < im.size
    assert not d["x"][~im].any()
    assert not r.gate[~om].any() and not r.y[~om].any()


def test_default_density_in_target_band():
    d = make_layer(get_layer("cifar.layer2.1.conv2"), 4)
    r = gated_conv(**d)
    assert 0.2 <= r.stats.conditional_fraction <= 0.4


def test_gates_are_spatially_correlated():
    d = make_layer(get_layer("cifar.layer1.0.conv2"), 4, 0.3, 3)
    g = gated_conv(**d).gate.astype(float)
    p = g.mean()
    independent = p * p + (1 - p) * (1 - p)
    horiz = (g[:, :, 1:] == g[:, :, :-1]).mean()
    vert = (g[:, 1:, :] == g[:, :-1, :]).mean()
    assert horiz > independent + 0.15 and vert > independent + 0.15
    # Shared across channels: the per-pixel open rate varies far more than binomial noise.
    rate = g.mean(axis=0)
    assert rate.std() > 5 * np.sqrt(p * (1 - p) / g.shape[0])


@pytest.mark.parametrize("name, groups, kw", [
    ("cifar.layer1.0.conv1", 4, {}),
    ("cifar.layer3.0.conv1", 2, dict(relu=True)),
    ("cifar.layer2.1.conv2", 4, dict(residual=True, relu=True)),
    ("cifar.conv1", 1, {}),
    ("imagenet.layer4.1.conv2", 8, dict(mult_bits=16)),
])
def test_output_spread(name, groups, kw):
    d = make_layer(get_layer(name), groups, 0.3, 2, **kw)
    y = gated_conv(**d).y.astype(np.int64)
    assert np.mean(np.abs(y) >= 127) < 0.05  # little saturation
    assert np.mean(y == 0) < (0.75 if kw.get("relu") else 0.1)
    assert y.std() > 15
    assert len(np.unique(y)) > 100
    assert (d["mult"] >= 1).all() and ((d["shift"] >= 1) & (d["shift"] <= 62)).all()
    if "mult_bits" in kw:
        assert (d["mult"] < (1 << 16)).all() and (d["mult"] >= (1 << 15)).all()


def test_signed_first_layer_and_unsigned_features():
    d = make_layer(get_layer("cifar.conv1"), 1, seed=1)
    assert d["x"].min() < 0 < d["x"].max()
    d = make_layer(get_layer("cifar.layer1.0.conv1"), 1, seed=1)
    assert d["x"].min() == 0 and 0.2 < np.mean(d["x"] == 0) < 0.8


def test_seeded_and_deterministic():
    s = get_layer("cifar.layer2.0.conv1/s2")
    a = make_layer(s, 4, 0.3, 5, fbs_density=0.7, residual=True, relu=True)
    b = make_layer(s, 4, 0.3, 5, fbs_density=0.7, residual=True, relu=True)
    c = make_layer(s, 4, 0.3, 6, fbs_density=0.7, residual=True, relu=True)
    assert a.keys() == b.keys()
    assert set(a) == {"x", "w", "bias", "thr", "mult", "shift", "stride", "pad", "groups",
                      "relu", "res", "omask", "imask"}
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["x"], c["x"])
    assert a["x"].dtype == np.int8 and a["w"].dtype == np.int8 and a["res"].dtype == np.int8
    for k in ("bias", "thr", "mult", "shift"):
        assert a[k].dtype == np.int32 and a[k].shape == (s.K,)


def test_calibrate_thresholds_exact_cases():
    p = np.arange(100).reshape(1, 10, 10)
    assert calibrate_thresholds(p, 0.3)[0] == 69  # 70..99 open
    assert calibrate_thresholds(p, 0.0)[0] == 99
    assert calibrate_thresholds(p, 1.0)[0] == -1
    ties = np.array([[[5, 5, 5, 5], [1, 1, 1, 1]]])
    thr = calibrate_thresholds(ties, 0.4)[0]  # 3 of 8 wanted: 4 (thr 1) beats 0 (thr 5)
    assert (ties[0] > thr).sum() == 4
    assert calibrate_thresholds(np.zeros((2, 3, 3)), 0.5, np.array([1, 0]))[1] == 2**31 - 1
    with pytest.raises(ValueError, match=r"density must be between 0 and 1, not 1.5"):
        calibrate_thresholds(p, 1.5)


def test_choose_requant():
    for scale in (1e-9, 3.7e-4, 0.0123, 0.5, 1.0, 3.0, 1000.0):
        m, s = choose_requant(scale)
        assert 1 <= s <= 62 and 1 <= m < 2**31
        assert m / 2**s == pytest.approx(scale, rel=1e-8)
    m, s = choose_requant(0.0123, 12)
    assert 2**11 <= m < 2**12 and m / 2**s == pytest.approx(0.0123, rel=1e-3)
    assert choose_requant(0.5 - 1e-12, 8) == (128, 8)  # rounds up to 2**bits, renormalized
    with pytest.raises(ValueError, match=r"scale must be positive, not 0"):
        choose_requant(0)
    with pytest.raises(ValueError, match=r"mult_bits must be between 1 and 31, not 32"):
        choose_requant(1.0, 32)


def test_blob_mask():
    rng = np.random.default_rng(0)
    m = blob_mask(20, 30, rng, blobs=2)
    assert m.shape == (20, 30) and 0 <= m.min() and m.max() <= 1 and m.max() > 0.9
    assert np.abs(np.diff(m, axis=1)).max() < 0.5  # smooth


def test_make_layer_errors():
    s = LayerShape("t", 6, 5, 5, 4, 3, 3, 1, 1)
    with pytest.raises(ValueError, match=r"groups must divide C=6 and K=4, not 4"):
        make_layer(s, 4)
    with pytest.raises(TypeError, match=r"groups must be an integer, not 2.0"):
        make_layer(s, 2.0)
    with pytest.raises(ValueError, match=r"density must be between 0 and 1, not -0.1"):
        make_layer(s, 2, -0.1)
    with pytest.raises(ValueError, match=r"fbs_density must be in \(0, 1\], not 0"):
        make_layer(s, 2, fbs_density=0)
    with pytest.raises(TypeError, match=r"shape must be a LayerShape"):
        make_layer((6, 5, 5), 2)
