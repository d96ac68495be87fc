"""MacColumn: masked dot products with the stated latency."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from cgaccel.engine.pe import MacColumn


def pack(vals, width):
    return sum((int(v) & ((1 << width) - 1)) << (i * width) for i, v in enumerate(vals))


@pytest.mark.parametrize("rows", [1, 2, 3, 8])
def test_dot_products_and_latency(rows):
    dut = MacColumn(rows, 8, 8, 8 + 8 + 4, meta_width=5)
    rng = np.random.default_rng(rows)
    n = 40
    a = rng.integers(-128, 128, (n, rows))
    w = rng.integers(-128, 128, (n, rows))
    mask = rng.integers(0, 2, (n, rows))
    a[0], w[0], mask[0] = -128, -128, 1  # largest products
    valid = rng.integers(0, 2, n)
    got = []

    async def bench(ctx):
        for t in range(n + dut.latency + 1):
            if t < n:
                ctx.set(dut.i_valid, int(valid[t]))
                ctx.set(dut.i_act, pack(a[t], 8))
                ctx.set(dut.i_wgt, pack(w[t], 8))
                ctx.set(dut.i_mask, pack(mask[t], 1))
                ctx.set(dut.i_meta, t % 32)
            else:
                ctx.set(dut.i_valid, 0)
            if ctx.get(dut.o_valid):
                got.append((ctx.get(dut.o_meta), ctx.get(dut.o_sum), t))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    want = [(t % 32, int((a[t] * w[t] * mask[t]).sum()), t + dut.latency)
            for t in range(n) if valid[t]]
    assert got == want


@pytest.mark.parametrize("kw,exc,msg", [
    (dict(rows=0), ValueError, "MacColumn rows must be an integer >= 1, not 0"),
    (dict(rows=2.0), TypeError, "MacColumn rows must be an integer, not 2.0"),
    (dict(rows=4, sum_width=10), ValueError, "MacColumn sum_width must be an integer >= 18"),
])
def test_bad_parameters(kw, exc, msg):
    with pytest.raises(exc, match=msg):
        MacColumn(**kw)


def test_shift_add_is_the_exact_product_without_a_multiplier():
    from amaranth import Elaboratable, Module, Signal, signed

    from cgaccel.engine.pe import shift_add

    a = Signal(signed(7))
    b = Signal(5)
    y = Signal(signed(7 + 5 + 1))
    yc = Signal(signed(7 + 5))
    expr = shift_add(a, b)
    # No multiplication operator left for Yosys to map to a DSP block.
    assert "(*" not in repr(expr) and "(*" not in repr(shift_add(a, 11))

    class Top(Elaboratable):
        def elaborate(self, platform):
            m = Module()
            m.d.comb += [y.eq(expr), yc.eq(shift_add(a, 11))]
            return m

    rng = np.random.default_rng(1)
    pairs = [(-64, 31), (63, 31), (-1, 0), (0, 17)] + [
        (int(x), int(z)) for x, z in zip(rng.integers(-64, 64, 60), rng.integers(0, 32, 60),
                                         strict=True)]
    got = []

    async def bench(ctx):
        for x, z in pairs:
            ctx.set(a, x)
            ctx.set(b, z)
            got.append((ctx.get(y), ctx.get(yc)))

    sim = Simulator(Top())
    sim.add_testbench(bench)
    sim.run()
    assert got == [(x * z, x * 11) for x, z in pairs]


def test_shift_add_rejects_signed_and_negative_multipliers():
    from amaranth import Signal, signed

    from cgaccel.engine.pe import shift_add
    with pytest.raises(TypeError, match=r"shift_add multiplier must be unsigned, not signed\(3\)"):
        shift_add(Signal(4), Signal(signed(3)))
    with pytest.raises(ValueError, match="shift_add constant must be a non-negative integer, "
                                         "not -3"):
        shift_add(Signal(4), -3)
