"""Off-chip byte counts against a brute-force tile-by-tile simulation."""

import numpy as np
import pytest

from cgaccel.model.resnet18 import LayerShape, get_layer
from cgaccel.model.traffic import layer_traffic


def brute_force(shape, k_tile, row_tile, order, residual, omask, imask, table_bytes):
    """Walk the tile loops and fetch element by element (int8 tensors, one byte each)."""
    K, C, H, W, R, S = shape.K, shape.C, shape.H, shape.W, shape.R, shape.S
    Ho, Wo = shape.Ho, shape.Wo
    om = np.ones(K, bool) if omask is None else np.asarray(omask, bool)
    im = np.ones(C, bool) if imask is None else np.asarray(imask, bool)
    ktiles = [list(range(k, min(k + k_tile, K))) for k in range(0, K, k_tile)]
    rtiles = [list(range(i, min(i + row_tile, Ho))) for i in range(0, Ho, row_tile)]

    def band(rows):
        need = set()
        for i in rows:
            for r in range(R):
                h = i * shape.stride + r - shape.pad
                if 0 <= h < H:
                    need.add(h)
        return range(min(need), max(need) + 1) if need else range(0)

    x = w = t = 0
    if order == "rows_outer":
        for rows in rtiles:
            if om.any():
                x += len(band(rows)) * W * int(im.sum())
            for ks in ktiles:
                for k in ks:
                    if om[k]:
                        w += int(im.sum()) * R * S
                        t += table_bytes
    else:
        for ks in ktiles:
            live = [k for k in ks if om[k]]
            w += len(live) * int(im.sum()) * R * S
            t += len(live) * table_bytes
            for rows in rtiles:
                if live:
                    x += len(band(rows)) * W * int(im.sum())
    res = K * Ho * Wo if residual else 0
    return x, w, t, res, K * Ho * Wo


SHAPES = [
    get_layer("cifar.layer2.0.conv1"),
    get_layer("cifar.layer2.0.downsample"),
    get_layer("imagenet.conv1/s4"),
    LayerShape("odd", 5, 9, 7, 6, 3, 3, 2, 1),
    LayerShape("nopad", 3, 7, 7, 4, 3, 3, 1, 0),
    LayerShape("bigpad", 2, 3, 3, 3, 3, 3, 1, 2),
]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: s.name)
@pytest.mark.parametrize("order", ["rows_outer", "k_outer"])
@pytest.mark.parametrize("tiles", [(1, 1), (4, 3), (8, 100), (1000, 2)])
def test_matches_brute_force(shape, order, tiles):
    rng = np.random.default_rng(shape.C * 7 + tiles[0])
    for masks in (False, True):
        om = (rng.random(shape.K) < 0.5).astype(np.uint8) if masks else None
        im = (rng.random(shape.C) < 0.7).astype(np.uint8) if masks else None
        t = layer_traffic(shape, *tiles, order=order, residual=masks, omask=om, imask=im)
        want = brute_force(shape, *tiles, order, masks, om, im, 16)
        assert (t.x_read, t.w_read, t.table_read, t.res_read, t.y_write) == want
        assert t.total == sum(want) and t.read == sum(want[:4])


def test_single_tile_is_compulsory_traffic():
    s = get_layer("cifar.layer1.0.conv1")
    t = layer_traffic(s, s.K, s.Ho, residual=True)
    assert t.x_read == s.C * s.H * s.W
    assert t.w_read == s.weight_count
    assert t.table_read == 16 * s.K
    assert t.res_read == t.y_write == s.K * s.Ho * s.Wo
    assert (t.k_tiles, t.row_tiles) == (1, 1)


def test_halo_and_weight_rereads():
    s = get_layer("cifar.layer1.0.conv1")  # 32x32, 3x3, pad 1
    t = layer_traffic(s, 16, 8)  # 4 row tiles of 8 rows: bands of 9, 10, 10, 9 rows
    assert t.x_read == (9 + 10 + 10 + 9) * 32 * 64
    assert t.w_read == 4 * s.weight_count and t.table_read == 4 * 16 * 64
    t = layer_traffic(s, 16, 8, order="k_outer")  # 4 channel tiles re-read the input
    assert t.x_read == 4 * (9 + 10 + 10 + 9) * 32 * 64 and t.w_read == s.weight_count
    # A 1x1 stride-2 conv reads only the rows it samples' span.
    d = get_layer("cifar.layer2.0.downsample")  # 32 -> 16
    assert layer_traffic(d, 128, 16).x_read == 31 * 32 * 64


def test_validation():
    s = get_layer("cifar.conv1")
    with pytest.raises(ValueError, match=r"k_tile must be an integer >= 1, not 0"):
        layer_traffic(s, 0, 1)
    with pytest.raises(TypeError, match=r"row_tile must be an integer, not 1.5"):
        layer_traffic(s, 1, 1.5)
    with pytest.raises(ValueError, match=r"order must be one of rows_outer, k_outer, not 'x'"):
        layer_traffic(s, 1, 1, order="x")
    with pytest.raises(ValueError, match=r"omask must have shape \(64,\), not \(3,\)"):
        layer_traffic(s, 1, 1, omask=np.ones(3))
    with pytest.raises(TypeError, match=r"shape must be a LayerShape"):
        layer_traffic((1, 2), 1, 1)
