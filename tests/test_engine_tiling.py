"""Host tiling helper: buffer limits, tile coverage, clear errors."""

import numpy as np
import pytest

from cgaccel.config import AccelConfig
from cgaccel.engine.geometry import Geometry, Target
from cgaccel.engine.tiling import (
    choose_split,
    expected_counts,
    fold_taps,
    output_places,
    plan_layer,
    valid_taps,
)
from cgaccel.model.data import make_layer
from cgaccel.model.layer import gated_conv
from cgaccel.model.resnet18 import LayerShape


def cfg(**kw):
    base = dict(rows=4, cols=2, max_channels=64, max_dim=32, max_kernel=3, act_depth=64,
                weight_depth=64, out_depth=64, psum_slots=8, max_groups=4)
    base.update(kw)
    return AccelConfig(**base)


def layer(C=8, H=6, W=6, K=4, R=3, stride=1, pad=1, groups=1, **kw):
    return make_layer(LayerShape("t", C, H, W, K, R, R, stride, pad), groups, 0.5, seed=1,
                      **kw)


def test_every_output_read_exactly_once_and_buffers_respected():
    c = cfg()
    args = layer(C=8, H=9, W=7, K=5, groups=1, residual=True)
    plan = plan_layer(c, **args)
    geo = Geometry(c)
    assert len(plan.tiles) > 1
    seen = np.zeros(plan.shape, int)
    for t in plan.tiles:
        seen[tuple(t.dest.T)] += 1
        for target, col, _bc, bank, addr, _ in t.writes:
            assert bank == t.bank
            limit = {Target.ACT: c.act_depth, Target.WGT: c.weight_depth,
                     Target.LIST: geo.list_depth}.get(target, geo.param_depth)
            assert 0 <= addr < limit and 0 <= col < c.cols
        assert all(0 <= a < c.out_depth for _, _, _, _, a, _ in t.out_writes)
        assert len(t.out_writes) == len(t.reads)
    np.testing.assert_array_equal(seen, np.ones(plan.shape, int))


def test_forced_tile_sizes():
    plan = plan_layer(cfg(), **layer(K=4), k_tile=3, band_rows=2)
    assert [(t.k0, t.kt, t.oy0, t.ho) for t in plan.tiles][:3] == [
        (0, 3, 0, 2), (3, 1, 0, 2), (0, 3, 2, 2)]
    assert [t.bank for t in plan.tiles][:4] == [0, 1, 0, 1]


def test_valid_taps():
    np.testing.assert_array_equal(valid_taps(3, 3, 3, 3, 1, 1),
                                  [[4, 6, 4], [6, 9, 6], [4, 6, 4]])
    np.testing.assert_array_equal(valid_taps(4, 4, 1, 1, 2, 0), np.ones((2, 2)))


def test_imask_words_are_not_listed():
    # rows=4, C=8, imask keeps channels 0 and 5 only: base words of group 0 = word 0, cond = 1.
    c = cfg()
    args = layer(C=8, K=2, groups=2)
    args["imask"] = np.array([1, 0, 0, 0, 0, 1, 0, 0], np.uint8)
    args["x"][args["imask"] == 0] = 0
    args["omask"] = np.array([1, 0], np.uint8)
    plan = plan_layer(c, **args)
    assert plan.segments == [(1, 1), (1, 1)]
    ref = gated_conv(**args)
    words, skipped, opens = expected_counts(plan, ref.gate)
    taps = int(plan.taps.sum())
    g = ref.gate[0].astype(bool)
    assert words == taps + int(plan.taps[g].sum())  # channel 1 is masked off: no words
    assert skipped == int(plan.taps[~g].sum()) and opens == int(g.sum())


@pytest.mark.parametrize("kw,override,msg", [
    (dict(C=8), dict(weight_depth=16), r"one output channel's weights \(18 words\) must fit"),
    (dict(C=8, H=30, W=30), dict(act_depth=16, out_depth=16),
     r"a band of one output row and column \(18 activation words\) must fit the buffers"),
    (dict(groups=4, C=8, K=8), dict(max_groups=2),
     "groups must be between 1 and 2 for this configuration, not 4"),
    (dict(groups=2), dict(cgnet=False),
     "groups must be 1 when the configuration has no CGNet gating, not 2"),
])
def test_layers_that_do_not_fit(kw, override, msg):
    with pytest.raises(ValueError, match=msg):
        plan_layer(cfg(**override), **layer(**kw))


def test_bad_tile_overrides():
    with pytest.raises(ValueError, match="k_tile must be between 1 and 4, not 9"):
        plan_layer(cfg(), **layer(K=4), k_tile=9)
    with pytest.raises(ValueError, match="band_rows must be between 1 and"):
        plan_layer(cfg(), **layer(K=4), band_rows=0)


def test_geometry_packing_errors():
    geo = Geometry(cfg())
    with pytest.raises(ValueError, match="shift must be between 1 and 62, not 0"):
        geo.pack_cfg(0, 1, 0, 0, 0)
    with pytest.raises(ValueError, match="list segment must satisfy"):
        geo.pack_cfg(3, 1, 2, 1, 3)
    with pytest.raises(ValueError, match="word must have 4 lanes, not 3"):
        geo.pack_word([1, 2, 3], 8)


@pytest.mark.parametrize("C,R,stride,pad", [(3, 3, 1, 1), (3, 3, 2, 1), (2, 3, 2, 0), (4, 3, 1, 2)])
def test_fold_taps_is_the_same_convolution(C, R, stride, pad):
    cfg = AccelConfig(rows=8, cols=2, max_channels=64, max_dim=32, max_kernel=3)
    args = make_layer(LayerShape("f", C, 9, 8, 5, R, R, stride, pad), 1, 0.0, seed=C + R,
                      residual=True)
    x, w, st, p, folded = fold_taps(cfg, args["x"], args["w"], stride, pad)
    assert folded and x.shape[0] == C * R * R and w.shape[2:] == (1, 1) and (st, p) == (1, 0)
    np.testing.assert_array_equal(gated_conv(**dict(args, x=x, w=w, stride=st, pad=p)).y,
                                  gated_conv(**args).y)
    # The tiler folds the same way: a 1x1 plan, ceil(C*R*S/rows) words per pixel.
    plan = plan_layer(cfg, **args)
    assert plan.folded and plan.tiles[0].cmd["r"] == 1
    assert plan.tiles[0].cmd["cw"] == -(-C * R * R // 8)


@pytest.mark.parametrize("C,groups,rows", [(5, 1, 8), (3, 3, 8), (3, 1, 4), (8, 1, 16)])
def test_fold_taps_only_when_it_issues_fewer_words(C, groups, rows):
    cfg = AccelConfig(rows=rows, cols=2, max_channels=128, max_dim=32, max_kernel=3)
    args = make_layer(LayerShape("f", C, 6, 6, 3 * groups, 3, 3, 1, 1), groups, 0.5, seed=1)
    folded = fold_taps(cfg, args["x"], args["w"], 1, 1, groups)[-1]
    # Not: C=5 fills more than half of 8 lanes; a gated layer keeps its groups; C=3 is more
    # than half of 4 lanes. C=8 on 16 lanes folds: ceil(72/16) = 5 words instead of 9.
    assert folded == (C == 8)


def test_folded_rows_too_wide_become_column_strips():
    # One im2col row is 4 words x 20 = 80 > act_depth 64: the folded layer runs in strips.
    cfg = AccelConfig(rows=8, cols=2, max_channels=64, max_dim=32, max_kernel=3, act_depth=64)
    args = make_layer(LayerShape("f", 3, 6, 20, 4, 3, 3, 1, 1), 1, 0.0, seed=2)
    plan = plan_layer(cfg, **args)
    assert plan.folded and plan.tiles[0].cmd["r"] == 1
    assert len({t.ox0 for t in plan.tiles}) > 1
    assert all(t.cmd["cw"] * t.cmd["hb"] * t.cmd["w"] <= 64 for t in plan.tiles)


def test_bands_and_strips_are_even():
    # C=8 (2 words) at W=14: a full row band needs 2 x 3 x 14 = 84 > 64 words, so strips; the
    # widest that fits is 8 outputs (2 x 3 x 10 = 60), and 14 columns become 7 + 7, not 8 + 6.
    plan = plan_layer(cfg(), **layer(C=8, H=14, W=14, K=2, groups=1))
    assert sorted({t.wo for t in plan.tiles}) == [7]
    assert sorted({t.ox0 for t in plan.tiles}) == [0, 7]
    # Rows: Ho=9 with bands of at most 4 rows (output capacity 64 / (K/cols=1) / 16 pixels)
    # become 3 + 3 + 3, not 4 + 4 + 1.
    plan = plan_layer(cfg(act_depth=256), **layer(C=4, H=9, W=16, K=2, groups=1))
    assert [t.ho for t in plan.tiles if t.k0 == 0] == [3, 3, 3]


def test_wide_tiles_span_both_halves_and_load_each_band_once():
    # act_depth 64: one output row of the 9-wide, 4-word map is 3 x 9 x 4 = 108 words, more
    # than a half but within both; a word plane (27) fits a half. K=32 in tiles of 4: eight K
    # tiles share each band.
    c = cfg(weight_depth=256, max_channels=64)
    args = layer(C=16, H=5, W=9, K=32, groups=2, residual=True)
    narrow = plan_layer(c, **args, k_tile=4, wide=False)
    assert not narrow.wide and {t.wo for t in narrow.tiles} != {9}    # column strips
    plan = plan_layer(c, **args, k_tile=4, double_out=True)
    assert plan.wide and {t.wo for t in plan.tiles} == {9}
    assert all(t.cmd["wide"] == 1 for t in plan.tiles)
    # Band outer, K tiles inner; only the first tile of a band writes activations.
    order = [(t.oy0, t.k0) for t in plan.tiles]
    assert order == sorted(order)
    assert [t.load_act for t in plan.tiles] == [k0 == 0 for _, k0 in order]
    assert [t.load_wgt for t in plan.tiles[:8]] == [True] * 8
    for t in plan.tiles:
        assert t.cmd["cw"] * t.cmd["hb"] * t.cmd["w"] > c.act_depth
        assert t.cmd["cw"] * t.cmd["hb"] * t.cmd["w"] <= 2 * c.act_depth
        acts = [(bank, addr) for tgt, _, _, bank, addr, _ in t.writes if tgt == Target.ACT]
        if t.load_act:
            # Word a = cw * plane + iy * w + ix lives at half a >> act_bits.
            assert {b for b, _ in acts} == {0, 1}
            hbw = t.cmd["hb"] * t.cmd["w"]
            assert sorted(b * c.act_depth + a for b, a in acts) == [
                cw * plan.plane + p for cw in range(t.cmd["cw"]) for p in range(hbw)]
        else:
            assert acts == []
        # Everything else stays in the tile's own half.
        assert all(w[3] == t.bank for w in t.writes if w[0] != Target.ACT)
    # Fewer than WIDE_MIN_KTILES K tiles per band: "auto" keeps column strips.
    assert not plan_layer(c, **args, k_tile=8).wide
    assert plan_layer(c, **args, k_tile=8, wide=True).wide
    ref = gated_conv(**args)
    np.testing.assert_array_equal(plan.assemble([[ref.y[tuple(d)] for d in t.dest]
                                                 for t in plan.tiles]), ref.y)


def test_wide_option_is_checked():
    with pytest.raises(ValueError, match="wide must be one of auto, True, False, not 'yes'"):
        plan_layer(cfg(), **layer(), wide="yes")
    with pytest.raises(ValueError, match="list cw_off must be below 128, not 128"):
        Geometry(cfg()).pack_list(128, 0, 1)


@pytest.mark.parametrize("kt,P,cols", [(2, 7, 3), (11, 5, 8), (20, 16, 8), (9, 13, 4)])
def test_dealt_pixel_places(kt, P, cols):
    # Column (p - k) % cols holds pixel p of channel k (rotated a column per channel) at
    # k*pc + p // cols; read back channel by channel, pixel by pixel. P < cols, P not a
    # multiple of cols, kt > cols.
    pc = -(-P // cols)
    places = output_places(kt, P, cols, pc, True, deal=True)
    want = []
    for k in range(kt):
        for p in range(P):
            # Brute force: the column whose n-th pixel of channel k (from its first pixel
            # (c + k) % cols) is p.
            c = next(c for c in range(cols) if (p - (c + k)) % cols == 0)
            want.append((c, k, k * pc + p // cols, p))
    assert places == want
    assert len({(c, a) for c, _, a, _ in places}) == len(places)
    # Every column's addresses of a channel are k*pc, k*pc + 1, ... in pixel order.
    for c in range(cols):
        for k in range(kt):
            addrs = [a for c2, k2, a, _ in places if (c2, k2) == (c, k)]
            assert addrs == list(range(k * pc, k * pc + len(addrs)))


def test_dealt_pixel_plan():
    c = cfg(cols=3, out_depth=128)
    args = layer(C=4, H=8, W=5, K=8, R=1, pad=0, groups=2, residual=True)
    plan = plan_layer(c, **args, k_tile=4, band_rows=2, double_out=True, split="deal")
    assert all(t.cmd["psplit"] == t.cmd["pdeal"] == 1 and t.cmd["pc"] == 4
               for t in plan.tiles)
    # Weights and parameters broadcast (every column computes every channel).
    assert {bc for t in plan.tiles for tg, _, bc, *_ in t.writes if tg == Target.WGT} == {1}
    # Four bands, two channel tiles: bands in pairs, channel tiles inner, every other pair
    # backwards, so the third and fourth tile of a pair find their band in their half and
    # the first two of the next pair their weights.
    assert [(t.oy0, t.k0) for t in plan.tiles] == [
        (0, 0), (2, 0), (0, 4), (2, 4), (4, 4), (6, 4), (4, 0), (6, 0)]
    assert [(t.load_act, t.load_wgt) for t in plan.tiles] == [
        (True, True), (True, True), (False, True), (False, True),
        (True, False), (True, False), (False, True), (False, True)]
    seen = np.zeros(plan.shape, int)
    for t in plan.tiles:
        seen[tuple(t.dest.T)] += 1
        assert all(0 <= a < c.out_depth for _, a in t.reads)
    assert (seen == 1).all()


def test_split_must_be_known():
    with pytest.raises(ValueError, match="split must be one of channel, pixel, deal, auto, "
                                         "not 'rows'"):
        plan_layer(cfg(), **layer(), split="rows")


@pytest.mark.parametrize("Ho,Wo,groups,taps,band,kt,want", [
    (28, 27, 4, 1, 4, 64, "deal"),      # 108 pixels per tile, 7 bands, 8 channels a column
    (28, 27, 4, 1, 4, 136, "channel"),  # 17 channels a column: as even by channels
    (28, 24, 4, 1, 4, 64, "channel"),   # Wo a multiple of cols: whole output columns
    (28, 27, 4, 9, 4, 64, "channel"),   # 3x3: not measured to gain
    (12, 27, 4, 1, 4, 64, "channel"),   # 3 bands: the last tile's chunks dominate
    (28, 3, 4, 1, 4, 64, "channel"),    # 12 pixels: fewer than 4 per column
    (28, 13, 4, 1, 1, 64, "channel"),   # 13 pixels over 8 columns: uneven
    (28, 27, 1, 1, 4, 64, "channel"),   # dense, K a multiple of cols
])
def test_choose_split_deal(Ho, Wo, groups, taps, band, kt, want):
    assert choose_split(cfg(cols=8), 256, Ho, Wo, groups, taps, band, kt) == want


def test_choose_split_deals_write_back_bound_whole_columns():
    """``Wo`` a multiple of ``cols`` is dealt when the channel split's byte-a-cycle write-back
    is at least its dense compute (``cols >= taps * cw``) and dealt STOREs read rows."""
    assert choose_split(cfg(cols=8), 256, 28, 24, 4, 1, 4, 64, cw=8) == "deal"
    assert choose_split(cfg(cols=8), 256, 28, 24, 4, 1, 4, 64, cw=9) == "channel"
    assert choose_split(cfg(cols=8), 256, 28, 24, 4, 1, 4, 64) == "channel"
    # No row reads when a row does not divide the beat (12 columns, 8-byte beats).
    assert choose_split(cfg(cols=12), 256, 28, 24, 4, 1, 4, 96, cw=8) == "channel"


def test_no_dealt_pixels_without_them_in_the_configuration():
    # deal=False: "auto" never deals (the same shapes as above take the channel split) and
    # asking for dealt tiles is refused.
    assert choose_split(cfg(cols=8), 256, 28, 27, 4, 1, 4, 64) == "deal"
    assert choose_split(cfg(cols=8, deal=False), 256, 28, 27, 4, 1, 4, 64) == "channel"
    assert choose_split(cfg(cols=8, deal=False), 256, 28, 24, 4, 1, 4, 64, cw=8) == "channel"
    with pytest.raises(ValueError, match="split must be channel, pixel or auto when the "
                                         "configuration has no dealt pixels, not 'deal'"):
        plan_layer(cfg(deal=False), **layer(R=1, pad=0, groups=2), split="deal")
    assert not any(t.cmd["pdeal"] for t in plan_layer(cfg(deal=False), **layer(),
                                                        split="pixel").tiles)


def test_choose_split_deals_on_8_columns_only():
    assert choose_split(cfg(cols=8), 64, 28, 27, 4, 1, 4, 64) == "deal"
    assert choose_split(cfg(cols=4), 64, 28, 27, 4, 1, 4, 64) == "channel"
    # Dense layers: pixel split when K divides worse over the columns than the map.
    assert choose_split(cfg(), 13, 4, 4, 1, 9) == "pixel"
    assert choose_split(cfg(), 16, 4, 4, 1, 9) == "channel"


def test_auto_deals_only_with_the_channel_splits_tiles():
    # Gated 1x1 with 27 output columns on 8 columns, 8 channels a column, 14 bands of 2 rows
    # (54 pixels, 7 or 6 a column): dealt, in the channel split's tiles.
    c = cfg(cols=8, act_depth=512, weight_depth=512, out_depth=1024, max_dim=64,
            max_channels=512)
    args = layer(C=8, H=28, W=27, K=64, R=1, pad=0, groups=4)
    auto = plan_layer(c, **args, double_out=True)
    chan = plan_layer(c, **args, double_out=True, split="channel")
    assert len(auto.tiles) == 14 and all(t.cmd["pdeal"] for t in auto.tiles)
    # The same tiles; the channel split interleaves its bands, dealt tiles keep their order.
    assert [(t.k0, t.kt, t.oy0, t.ho) for t in auto.tiles] == sorted(
        (t.k0, t.kt, t.oy0, t.ho) for t in chan.tiles)
    # With a parameter table of 16 entries a dealt tile holds 16 channels, the channel split
    # 64: more tiles, more loads, so the channel split stays.
    c16 = c.with_overrides(max_channels=128)
    assert not any(t.cmd["pdeal"] for t in plan_layer(c16, **args, double_out=True).tiles)
    assert all(t.cmd["pdeal"] for t in plan_layer(c16, **args, split="deal").tiles)


def test_wide_tiles_are_never_dealt():
    # The layer of test_wide_tiles_span_both_halves_and_load_each_band_once (wide on "auto"
    # with k_tile=4): a dealt tile keeps its band in one half, so "deal" with wide=True is
    # refused, "deal" with "auto" takes narrow column strips, and "auto" with wide=True does
    # not deal.
    c = cfg(weight_depth=256, max_channels=64)
    args = layer(C=16, H=5, W=9, K=32, groups=2, residual=True)
    with pytest.raises(ValueError, match="split must be channel, pixel or auto with "
                                         "wide=True, not 'deal'"):
        plan_layer(c, **args, k_tile=4, split="deal", wide=True)
    dealt = plan_layer(c, **args, k_tile=4, split="deal")
    assert not dealt.wide and not any(t.cmd["wide"] for t in dealt.tiles)
    # Gated 1x1 on 8 columns that "auto" deals (test_auto_deals_only_with_the_channel_splits_
    # tiles), forced wide: channel split.
    c8 = cfg(cols=8, act_depth=512, weight_depth=512, out_depth=1024, max_dim=64,
             max_channels=512)
    args8 = layer(C=8, H=28, W=27, K=64, R=1, pad=0, groups=4)
    assert all(t.cmd["pdeal"] for t in plan_layer(c8, **args8, double_out=True).tiles)
    wide = plan_layer(c8, **args8, double_out=True, wide=True)
    assert wide.wide and all(t.cmd["wide"] and not t.cmd["pdeal"] and not t.cmd["psplit"]
                             for t in wide.tiles)
    for plan in (dealt, wide):
        a = args if plan is dealt else args8
        ref = gated_conv(**a)
        np.testing.assert_array_equal(plan.assemble([[ref.y[tuple(d)] for d in t.dest]
                                                     for t in plan.tiles]), ref.y)


def _imagenet(name, density=0.3):
    from cgaccel.model.resnet18 import layers
    shp = {s.name: s for s in layers("imagenet")}[f"imagenet.{name}"]
    return make_layer(shp, 4, density, seed=0, relu=True)


# 8 columns of 8 rows with 128-entry tables (the ``default`` preset until 2026-12-01).
_EIGHT = AccelConfig(axi_data_width=128, load_lanes=2, param_depth=128)


def test_8x8_deals_imagenet_layer2_0_downsample():
    # 128 channels of a 1x1 layer (28x28 outputs after the stride-2 gather): the channel
    # split gives every column 16 channels of every tile; 128-entry parameter tables let a
    # dealt tile hold all 128 channels too, so "auto" deals it in the channel split's 14
    # tiles (docs/bench.md: compute efficiency 0.911 -> 0.950, fewer cycles start to done).
    args = _imagenet("layer2.0.downsample")
    default = _EIGHT
    auto = plan_layer(default, **args, double_out=True)
    chan = plan_layer(default, **args, double_out=True, split="channel")
    assert len(auto.tiles) == 14 and all(t.cmd["pdeal"] and t.kt == 128 for t in auto.tiles)
    assert [(t.k0, t.kt, t.oy0, t.ho) for t in auto.tiles] == sorted(
        (t.k0, t.kt, t.oy0, t.ho) for t in chan.tiles)
    # With the minimum tables (64 entries) a dealt tile holds 64 channels: twice the tiles,
    # so the channel split stays.
    p64 = plan_layer(default.with_overrides(param_depth=None), **args, double_out=True)
    assert len(p64.tiles) == 14 and not any(t.cmd["psplit"] for t in p64.tiles)
    dealt64 = plan_layer(default.with_overrides(param_depth=None), **args, double_out=True,
                         split="deal")
    assert len(dealt64.tiles) == 14 and {t.kt for t in dealt64.tiles} == {64}


def test_8x8_keeps_channel_split_on_imagenet_layer3_0_downsample():
    # 256 channels, 128 input channels: a dealt tile's broadcast weights (16 words a channel)
    # fill the 1024-word weight bank at 64 channels, the channel split takes all 256 in one
    # tile: channel split, its 7 bands interleaved.
    plan = plan_layer(_EIGHT, **_imagenet("layer3.0.downsample"), double_out=True)
    assert not any(t.cmd["psplit"] for t in plan.tiles)
    assert [t.oy0 // 2 for t in plan.tiles] == [0, 4, 1, 5, 2, 6, 3]


@pytest.mark.parametrize("H, groups, split, want", [
    (10, 2, "channel", [0, 3, 1, 4, 2]),     # gated, one K tile, 5 bands: interleaved
    (8, 2, "channel", [0, 2, 1, 3]),         # 4 bands
    (4, 2, "channel", [0, 1]),               # 2 bands: nothing to interleave
    (10, 1, "channel", [0, 1, 2, 3, 4]),     # dense: no gate noise to spread
    (10, 2, "deal", [0, 1, 2, 3, 4]),        # dealt tiles mix the channels already
])
def test_gated_bands_are_interleaved(H, groups, split, want):
    c = cfg(cols=2, act_depth=256, weight_depth=256, out_depth=256)
    args = layer(C=4, H=H, W=6, K=4, R=1, pad=0, groups=groups)
    plan = plan_layer(c, **args, band_rows=2, split=split)
    assert len({(t.k0, t.kt) for t in plan.tiles}) == 1
    assert [t.oy0 // 2 for t in plan.tiles] == want
    # Every band loaded once, the weights in each half once: as in band order.
    assert all(t.load_act for t in plan.tiles)
    assert [t.load_wgt for t in plan.tiles] == [True, True] + [False] * (len(want) - 2)
    ref = gated_conv(**args)
    y = np.zeros(plan.shape, np.int64)
    for t in plan.tiles:
        y[tuple(t.dest.T)] = 1
    np.testing.assert_array_equal(y, np.ones(ref.y.shape, np.int64))


def test_interleaved_bands_keep_a_row_bands_strips_together():
    # A band of one full-width output row does not fit act_depth 32: column strips of 6,
    # two a row band. The row bands are interleaved, each band's strips stay in order.
    c = cfg(cols=2, act_depth=32, weight_depth=256, out_depth=256)
    gated = plan_layer(c, **layer(C=4, H=10, W=12, K=4, R=3, groups=2), split="channel")
    dense = plan_layer(c, **layer(C=4, H=10, W=12, K=4, R=3, groups=1), split="channel")
    rows = [0, 5, 1, 6, 2, 7, 3, 8, 4, 9]
    assert [(t.oy0, t.ox0) for t in gated.tiles] == [(y, x) for y in rows for x in (0, 6)]
    assert [(t.oy0, t.ox0) for t in dense.tiles] == [(y, x) for y in range(10) for x in (0, 6)]
