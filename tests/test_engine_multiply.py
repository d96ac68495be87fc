"""``registered_product`` and the synthesis platform ``Primitives``.

The instantiated form is checked cycle for cycle against the inferred one in
``sim/dsp/test_dsp_cocotb.py`` and inside the whole engine in
``tests/test_engine.py::test_engine_with_ecp5_dsps_matches_golden``.
"""

import random

import pytest
from amaranth import Module, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from cgaccel.engine.multiply import Primitives, registered_product
from cgaccel.rtl import to_verilog


class _Product(wiring.Component):
    def __init__(self, a_shape, b_shape):
        self._shapes = (a_shape, b_shape)
        out = (Signal(a_shape) * Signal(b_shape)).shape()
        super().__init__({"a": In(a_shape), "b": In(b_shape), "keep": In(1), "p": Out(out)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.p.eq(registered_product(m, self.a, self.b, name="prod",
                                                 platform=platform, keep=self.keep))
        return m


def test_primitives_family_is_checked():
    assert repr(Primitives("ecp5")) == "Primitives('ecp5')"
    with pytest.raises(TypeError, match="Primitive family must be a string, not 5"):
        Primitives(5)


@pytest.mark.parametrize("a_shape, b_shape, instantiated", [
    (signed(8), signed(8), True),
    (signed(18), signed(18), True),
    (unsigned(17), signed(16), True),
    (unsigned(18), signed(8), False),       # 18 unsigned bits need a 19-bit signed operand
    (signed(19), signed(8), False),
])
def test_dsp_only_where_the_operands_fit(a_shape, b_shape, instantiated):
    text = to_verilog(_Product(a_shape, b_shape), "p", Primitives("ecp5"))
    assert ("MULT18X18D" in text) == instantiated
    assert "MULT18X18D" not in to_verilog(_Product(a_shape, b_shape), "p")
    assert "MULT18X18D" not in to_verilog(_Product(a_shape, b_shape), "p", Primitives("ice40"))
    if instantiated:
        assert '.REG_OUTPUT_CLK("CLK0")' in text and '.RESETMODE("SYNC")' in text


@pytest.mark.parametrize("a_shape, b_shape", [(signed(8), signed(8)),
                                              (unsigned(17), signed(16))])
def test_inferred_product_one_cycle_later_and_kept(a_shape, b_shape):
    dut = _Product(a_shape, b_shape)
    rng = random.Random(4)

    def draw(shape):
        lo = -(1 << (shape.width - 1)) if shape.signed else 0
        return rng.randrange(lo, lo + (1 << shape.width))

    async def bench(ctx):
        for _ in range(200):
            a, b, keep = draw(a_shape), draw(b_shape), rng.getrandbits(1)
            ctx.set(dut.a, a)
            ctx.set(dut.b, b)
            ctx.set(dut.keep, keep)
            await ctx.tick()
            assert ctx.get(dut.p) == (a * b if keep else 0)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
