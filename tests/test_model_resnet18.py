"""ResNet-18 layer library: names, shapes, output sizes and MAC totals."""

import dataclasses

import pytest

from cgaccel.model.resnet18 import (
    GEOMETRIES,
    LayerShape,
    get_layer,
    layer_names,
    layers,
    scaled,
    total_macs,
)


def _expected(geometry):
    """(name, C, H, K, R, stride, pad, Ho) written out from the ResNet-18 paper's table."""
    if geometry == "imagenet":
        rows = [("conv1", 3, 224, 64, 7, 2, 3, 112)]
        sizes = {1: 56, 2: 56, 3: 28, 4: 14}
    else:
        rows = [("conv1", 3, 32, 64, 3, 1, 1, 32)]
        sizes = {1: 32, 2: 32, 3: 16, 4: 8}
    chans = {1: 64, 2: 128, 3: 256, 4: 512}
    for L in range(1, 5):
        c, s = chans[L], sizes[L]
        cin = 64 if L == 1 else chans[L - 1]
        st = 1 if L == 1 else 2
        so = s // st
        rows.append((f"layer{L}.0.conv1", cin, s, c, 3, st, 1, so))
        rows.append((f"layer{L}.0.conv2", c, so, c, 3, 1, 1, so))
        if L > 1:
            rows.append((f"layer{L}.0.downsample", cin, s, c, 1, 2, 0, so))
        rows.append((f"layer{L}.1.conv1", c, so, c, 3, 1, 1, so))
        rows.append((f"layer{L}.1.conv2", c, so, c, 3, 1, 1, so))
    return rows


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_every_layer_shape(geometry):
    got = layers(geometry)
    want = _expected(geometry)
    assert len(got) == 20 == len(want)
    for shape, (name, C, H, K, R, stride, pad, Ho) in zip(got, want, strict=True):
        assert shape.name == f"{geometry}.{name}"
        assert (shape.C, shape.H, shape.W, shape.K, shape.R, shape.S) == (C, H, H, K, R, R)
        assert (shape.stride, shape.pad) == (stride, pad)
        assert shape.Ho == shape.Wo == Ho
        assert shape.dense_macs == K * C * R * R * Ho * Ho
        assert get_layer(shape.name) is shape


def test_mac_totals():
    # ResNet-18's well-known ~1.8 GMAC (ImageNet, convs only; the FC adds 0.5 M).
    assert total_macs("imagenet") == 1_813_561_344
    assert 1.80e9 < total_macs("imagenet") < 1.82e9
    assert total_macs("cifar") == 555_417_600  # the usual ~0.56 GMAC of CIFAR ResNet-18
    assert get_layer("imagenet.conv1").dense_macs == 118_013_952


def test_names_unique_and_in_order():
    names = layer_names()
    assert len(names) == len(set(names)) == 40
    assert names[:3] == ["imagenet.conv1", "imagenet.layer1.0.conv1", "imagenet.layer1.0.conv2"]
    assert layer_names("cifar")[7] == "cifar.layer2.0.downsample"
    # The feature map chains: each conv's input is the previous main-path conv's output.
    for g in GEOMETRIES:
        main = [s for s in layers(g) if not s.name.endswith("downsample")]
        for prev, nxt in zip(main[1:], main[2:], strict=False):
            assert (nxt.C, nxt.H) == (prev.K, prev.Ho)


def test_scaled():
    s = get_layer("cifar.layer2.0.conv1")
    t = scaled(s, 4)
    assert (t.C, t.H, t.W, t.K, t.R, t.S, t.stride, t.pad) == (16, 8, 8, 32, 3, 3, 2, 1)
    assert t.name == "cifar.layer2.0.conv1/s4" and t.Ho == 4
    assert scaled(s, 1) is s
    assert get_layer("cifar.layer2.0.conv1/s4") == t
    assert get_layer("cifar.layer2.0.conv1", 4) == t
    # Minimum sizes: channels >= 1 (or min_channels), spatial >= kernel, output >= 1x1.
    u = scaled(get_layer("cifar.layer4.1.conv2"), 64)
    assert (u.C, u.K, u.H, u.Ho) == (8, 8, 3, 3)
    v = scaled(get_layer("imagenet.conv1"), 1000)
    assert (v.C, v.K, v.H, v.Ho) == (1, 1, 7, 4)
    assert scaled(get_layer("imagenet.conv1"), 1000, min_channels=4).C == 3
    for shape in layers("imagenet"):
        small = scaled(shape, 16)
        assert small.Ho >= 1 and small.dense_macs < shape.dense_macs


def test_errors():
    with pytest.raises(ValueError, match=r"geometry must be one of imagenet, cifar, not 'mnist'"):
        layers("mnist")
    with pytest.raises(ValueError, match=r"layer name must be a ResNet-18 layer such as "
                                         r"cifar.conv1, .*not 'cifar.layer5.0.conv1'"):
        get_layer("cifar.layer5.0.conv1")
    with pytest.raises(ValueError, match=r"scale must be an integer >= 1, not 0"):
        scaled(get_layer("cifar.conv1"), 0)
    with pytest.raises(TypeError, match=r"shape must be a LayerShape, not 3"):
        scaled(3, 2)
    with pytest.raises(ValueError, match=r"C must be an integer >= 1, not 0"):
        LayerShape("a", 0, 4, 4, 1, 1, 1, 1, 0)
    with pytest.raises(ValueError, match=r"output size must be at least 1, not 0"):
        LayerShape("a", 1, 2, 2, 1, 3, 3, 1, 0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_layer("cifar.conv1").C = 5
