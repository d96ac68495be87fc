# amaranth: UnusedElaboratable=no
"""The analytical cycle model against the engine RTL (Amaranth simulator) on small layers."""

import numpy as np
import pytest

from cgaccel.bench.cycle_model import (
    OUTPUT_UNIT_LATENCY,
    estimate_plan,
    model_error_pct,
    pipeline_timing,
)
from cgaccel.config import AccelConfig
from cgaccel.engine.output_unit import OutputUnit
from cgaccel.engine.pe import MacColumn
from cgaccel.engine.sim import run_plans
from cgaccel.engine.tiling import plan_layer
from cgaccel.model.data import make_layer
from cgaccel.model.layer import gated_conv
from cgaccel.model.resnet18 import LayerShape

# The model's stated accuracy (docs/bench.md): within 5% of the measured RTL cycles.
TOLERANCE_PCT = 5.0


def small_config(**kw):
    base = dict(rows=2, cols=2, max_channels=64, max_dim=32, max_kernel=3, act_depth=256,
                weight_depth=256, out_depth=256, psum_slots=8, max_groups=8)
    base.update(kw)
    return AccelConfig(**base)


def measure(cfg, shape, groups, density, *, band_rows=None, k_tile=None, double_out=False,
            split="channel", wide="auto", **extra):
    args = make_layer(shape, groups, density, seed=3, relu=True, **extra)
    ref = gated_conv(**args)
    plan = plan_layer(cfg, **args, band_rows=band_rows, k_tile=k_tile, double_out=double_out,
                      split=split, wide=wide)
    assert plan.wide == (wide is True)
    res = run_plans(cfg, [plan])
    np.testing.assert_array_equal(res.ys[0], ref.y)
    return plan, ref, res, estimate_plan(cfg, plan, ref.gate)


def check(cfg, est, res):
    assert abs(model_error_pct(est.compute_cycles, res.counters["busy"])) <= TOLERANCE_PCT
    assert abs(model_error_pct(est.total_cycles, res.cycles)) <= TOLERANCE_PCT
    # Stricter than the stated accuracy: on these layers the model, counted from the RTL
    # stage by stage, is exact, so any latency change in the RTL must update its constants.
    assert (est.compute_cycles, est.total_cycles) == (res.counters["busy"], res.cycles)
    assert est.words * cfg.rows == res.counters["macs"]


FAST = [
    # id, config kwargs, shape, groups, density, tiling / make_layer extras
    ("gated_3x3_multitile", {}, LayerShape("t", 4, 6, 6, 4, 3, 3, 1, 1), 2, 0.4,
     dict(band_rows=2)),
    ("gated_3x3_double_out", {}, LayerShape("t", 4, 6, 6, 4, 3, 3, 1, 1), 2, 0.4,
     dict(band_rows=2, double_out=True)),
    ("dense_1x1_res", dict(rows=4), LayerShape("t", 8, 5, 5, 6, 1, 1, 1, 0), 1, 0.0,
     dict(residual=True)),
    # Without the hard-block registers (``tiny``): a fetch stage and an output stage fewer.
    ("gated_3x3_no_hb_regs", dict(hard_block_regs=False),
     LayerShape("t", 4, 6, 6, 4, 3, 3, 1, 1), 2, 0.4, dict(band_rows=2)),
    ("dense_1x1_res_no_hb_regs", dict(rows=4, hard_block_regs=False),
     LayerShape("t", 8, 5, 5, 6, 1, 1, 1, 0), 1, 0.0, dict(residual=True)),
    ("pixel_gated_3x3", dict(cols=3), LayerShape("t", 4, 6, 5, 4, 3, 3, 1, 1), 2, 0.4,
     dict(band_rows=2, split="pixel", double_out=True)),
    # One column (``tiny``): no per-column write-back request registers, a read cycle less.
    ("one_column_res", dict(rows=4, cols=1, hard_block_regs=False),
     LayerShape("t", 8, 5, 5, 6, 1, 1, 1, 0), 2, 0.5, dict(residual=True, double_out=True)),
    # Dealt pixels: 4 columns on rows of 3 (the step wraps rows), P = 2*3 not a multiple of 4.
    ("deal_gated_1x1_cols_gt_wo", dict(cols=4), LayerShape("t", 4, 6, 3, 6, 1, 1, 1, 0), 2,
     0.5, dict(band_rows=2, split="deal", double_out=True)),
    ("deal_gated_3x3", dict(cols=3), LayerShape("t", 4, 6, 5, 4, 3, 3, 1, 1), 2, 0.4,
     dict(band_rows=2, split="deal", double_out=True)),
    # Rotated dealt pixels on tiles of P = 2 or 4 pixels below 5 columns, 12 channels: the
    # columns pass channels without a pixel there, and a column past the tile at its start
    # goes on with the next channels.
    ("deal_gated_1x1_small_tiles", dict(cols=5), LayerShape("t", 4, 3, 2, 12, 1, 1, 1, 0),
     2, 0.5, dict(band_rows=2, k_tile=12, split="deal", double_out=True)),
    ("column_strips", dict(act_depth=32), LayerShape("t", 4, 7, 17, 4, 3, 3, 1, 1), 2, 0.5,
     dict(double_out=True)),
    # Wide tiles: a band's activation writes wait for the band before.
    ("wide_tiles", dict(act_depth=32), LayerShape("t", 8, 4, 5, 8, 3, 3, 1, 1), 2, 0.5,
     dict(k_tile=2, double_out=True, wide=True)),
]
SLOW = [
    ("gated_g4_slots4", dict(rows=2, cols=3, psum_slots=4), LayerShape("t", 8, 5, 5, 8, 1, 1,
                                                                       1, 0), 4, 0.8, {}),
    ("fbs_stride2", {}, LayerShape("t", 6, 7, 7, 4, 3, 3, 2, 1), 2, 0.5,
     dict(fbs_density=0.6)),
    ("dense_rows3_ktile", dict(rows=3, cols=2), LayerShape("t", 7, 6, 6, 5, 3, 3, 1, 1), 1,
     0.0, dict(k_tile=2)),
    ("gated_res_double_out", dict(cols=3), LayerShape("t", 8, 5, 5, 6, 1, 1, 1, 0), 2, 0.5,
     dict(residual=True, double_out=True, band_rows=1)),
]


def _split(extra):
    tiling = {k: extra[k] for k in ("band_rows", "k_tile", "double_out", "split", "wide")
              if k in extra}
    data = {k: v for k, v in extra.items() if k not in tiling}
    return tiling, data


@pytest.mark.parametrize("cfg_kw,shape,groups,density,extra", [c[1:] for c in FAST],
                         ids=[c[0] for c in FAST])
def test_model_matches_rtl(cfg_kw, shape, groups, density, extra):
    tiling, data = _split(extra)
    cfg = small_config(**cfg_kw)
    _, _, res, est = measure(cfg, shape, groups, density, **tiling, **data)
    check(cfg, est, res)


@pytest.mark.slow
@pytest.mark.parametrize("cfg_kw,shape,groups,density,extra", [c[1:] for c in SLOW],
                         ids=[c[0] for c in SLOW])
def test_model_matches_rtl_more(cfg_kw, shape, groups, density, extra):
    tiling, data = _split(extra)
    cfg = small_config(**cfg_kw)
    _, _, res, est = measure(cfg, shape, groups, density, **tiling, **data)
    check(cfg, est, res)


@pytest.mark.parametrize("double_out", [False, True])
def test_dealt_tile_beyond_the_minimum_parameter_table(double_out):
    # max_channels 128 on 2 columns: a channel-split column owns at most 64 channels (the
    # minimum table). With 128-entry tables a dealt tile broadcasts all 128 channels'
    # parameters to both columns (entries 64..127 included): bit-exact, model exact.
    cfg = small_config(max_channels=128, param_depth=128, out_depth=512)
    assert cfg.min_param_depth == 64
    plan, _, res, est = measure(cfg, LayerShape("t", 4, 2, 3, 128, 1, 1, 1, 0), 2, 0.4,
                                split="deal", double_out=double_out)
    assert res.errors == [0] * len(plan.tiles)
    assert {t.kt for t in plan.tiles} == {128} and all(t.cmd["pdeal"] for t in plan.tiles)
    check(cfg, est, res)
    # With the minimum tables the same layer takes dealt tiles of 64 channels.
    assert {t.kt for t in plan_layer(cfg.with_overrides(param_depth=None),
                                     **make_layer(LayerShape("t", 4, 2, 3, 128, 1, 1, 1, 0),
                                                  2, 0.4, seed=3, relu=True),
                                     split="deal", double_out=double_out).tiles} == {64}


@pytest.mark.parametrize("rows", [1, 2, 3, 8, 16])
@pytest.mark.parametrize("hb", [True, False])
def test_timing_constants_follow_rtl_blocks(rows, hb):
    t = pipeline_timing(small_config(rows=rows, hard_block_regs=hb))
    assert t.mac_latency == MacColumn(rows, 8, 8, 20).latency
    ou = OutputUnit(dsp_copy=hb)
    assert OUTPUT_UNIT_LATENCY + hb == ou.latency
    # Issue register, list read, (output register and) fabric register, operand read, output
    # register and fabric register; MAC; accumulate and gate registers; output unit;
    # completion check.
    assert t.drain == 6 + hb + t.mac_latency + 2 + ou.latency + 1
    assert t.gate_latency == 6 + hb + t.mac_latency + 3


def test_gated_plan_needs_gate():
    cfg = small_config()
    args = make_layer(LayerShape("t", 4, 4, 4, 4, 3, 3, 1, 1), 2, 0.5, seed=0)
    plan = plan_layer(cfg, **args)
    with pytest.raises(ValueError, match="gate must be given for a gated plan, not None"):
        estimate_plan(cfg, plan)
    with pytest.raises(ValueError, match=r"gate must have shape \(4, 4, 4\), not \(4, 4\)"):
        estimate_plan(cfg, plan, np.zeros((4, 4)))


def test_dense_model_is_fill_plus_work_plus_drain():
    cfg = small_config()
    args = make_layer(LayerShape("t", 4, 4, 4, 2, 3, 3, 1, 1), 1, 0.0, seed=0)
    plan = plan_layer(cfg, **args)
    est = estimate_plan(cfg, plan, gated_conv(**args).gate)
    t = pipeline_timing(cfg)
    # One channel per column, 2 words (4 channels / 2 rows) per valid tap.
    work = 2 * int(plan.taps.sum())
    assert [e.busy for e in est.tiles] == [t.fill + work + t.drain]


def test_model_error_pct():
    assert model_error_pct(105, 100) == pytest.approx(5.0)
    assert model_error_pct(95, 100) == pytest.approx(-5.0)
    assert model_error_pct(1, None) is None
