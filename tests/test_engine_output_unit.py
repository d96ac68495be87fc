"""OutputUnit: requantization, residual and ReLU bit-exact with the golden model."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from cgaccel.engine.output_unit import OutputUnit
from cgaccel.model.layer import requantize


def run(dut, items, relu, residual):
    got = []

    async def bench(ctx):
        ctx.set(dut.relu, relu)
        ctx.set(dut.residual, residual)
        for t in range(len(items) + dut.latency + 1):
            # The residual of a result is due ``res_delay`` cycles after the result; junk
            # otherwise, so a misaligned residual shows.
            tr = t - dut.res_delay
            ctx.set(dut.i_res, items[tr][4] if 0 <= tr < len(items) else -1)
            if t < len(items):
                acc, bias, mult, shift, res, off = items[t]
                ctx.set(dut.i_valid, 1)
                ctx.set(dut.i_acc, acc)
                ctx.set(dut.i_bias, bias)
                ctx.set(dut.i_mult, mult)
                ctx.set(dut.i_shift, shift)
                ctx.set(dut.i_off, off)
                ctx.set(dut.i_addr, t)
            else:
                ctx.set(dut.i_valid, 0)
            if ctx.get(dut.o_valid):
                got.append((ctx.get(dut.o_addr), ctx.get(dut.o_data), t))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return got


@pytest.mark.parametrize("dsp_copy", [True, False])
@pytest.mark.parametrize("relu,residual", [(0, 0), (1, 0), (0, 1), (1, 1)])
def test_matches_golden(relu, residual, dsp_copy):
    rng = np.random.default_rng(relu * 2 + residual)
    n = 60
    acc = rng.integers(-2**31, 2**31, n)
    bias = rng.integers(-2**31, 2**31, n)
    mult = rng.integers(1, 2**31, n)
    shift = rng.integers(1, 63, n)
    # Corner values: extremes of every operand, exact ties of the rounding.
    acc[:4] = [2**31 - 1, -2**31, 3, -3]
    bias[:4] = [2**31 - 1, -2**31, 0, 0]
    mult[:4] = [2**31 - 1, 2**31 - 1, 1, 1]
    shift[:4] = [1, 1, 1, 1]
    res = rng.integers(-128, 128, n)
    off = (rng.random(n) < 0.2).astype(int)
    items = list(zip(acc, bias, mult, shift, res, off, strict=True))
    dut = OutputUnit(8, 32, 8, dsp_copy=dsp_copy)
    assert dut.latency == 9 + dsp_copy
    got = run(dut, [tuple(int(v) for v in it) for it in items], relu, residual)
    q = np.array([requantize(np.array([a]), int(b), int(m), int(s))[0]
                  for a, b, m, s in zip(acc, bias, mult, shift, strict=True)], np.int64)
    q[off == 1] = 0
    if residual:
        q = np.clip(q + res, -128, 127)
    if relu:
        q = np.maximum(q, 0)
    assert [g[0] for g in got] == list(range(n))
    assert [g[2] for g in got] == [t + dut.latency for t in range(n)]
    np.testing.assert_array_equal(np.array([g[1] for g in got]), q)


def test_bad_parameters():
    with pytest.raises(ValueError, match="OutputUnit act_width must be an integer >= 2, not 1"):
        OutputUnit(act_width=1)


def reference(acc, bias, mult, shift, res, off, aw, relu, residual):
    """Python-int statement of the requantization for any activation width."""
    lo, hi = -(1 << (aw - 1)), (1 << (aw - 1)) - 1
    q = 0 if off else min(max(((acc + bias) * mult + (1 << (shift - 1))) >> shift, lo), hi)
    if residual:
        q = min(max(q + res, lo), hi)
    return max(q, 0) if relu else q


@pytest.mark.parametrize("aw,cw", [(8, 32), (4, 24), (16, 48)])
def test_unsaturated_and_ties(aw, cw):
    # Most random operands saturate; pick the shift from the product's magnitude so that the
    # results spread over the whole output range (and just past it), which exercises every
    # shift amount of the two-stage shifter and the rounding +1, plus exact ties.
    rng = np.random.default_rng(aw * 100 + cw)
    n = 200
    items = []
    for i in range(n):
        acc = int(rng.integers(-2**(cw - 1), 2**(cw - 1)))
        bias = int(rng.integers(-2**31, 2**31))
        mult = int(rng.integers(1, 2**31))
        mag = abs((acc + bias) * mult).bit_length()
        shift = int(np.clip(mag - aw + int(rng.integers(-2, 3)), 1, 62))
        if i % 10 == 0:     # exact tie: (acc + bias) * mult == (2j + 1) * 2**(shift - 1)
            shift = int(rng.integers(1, 20))
            acc, bias, mult = int(rng.integers(-2**(aw - 1), 2**(aw - 1))) * 2 + 1, 0, 1
            acc <<= shift - 1
            if not -2**(cw - 1) <= acc < 2**(cw - 1):
                acc, shift = acc >> (shift - 1), 1
        items.append((acc, bias, mult, shift, int(rng.integers(-2**(aw - 1), 2**(aw - 1))),
                      int(rng.random() < 0.1)))
    for relu, residual in ((0, 0), (1, 1)):
        dut = OutputUnit(aw, cw, 8)
        got = run(dut, items, relu, residual)
        want = [reference(*it, aw, relu, residual) for it in items]
        assert [g[0] for g in got] == [t % 256 for t in range(n)]
        np.testing.assert_array_equal(np.array([g[1] for g in got]), np.array(want))
        # Not all saturated: the test really checks the rounding path.
        lo, hi = -(1 << (aw - 1)), (1 << (aw - 1)) - 1
        assert sum(lo < w < hi for w in want) > n // 4
