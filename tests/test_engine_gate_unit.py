# amaranth: UnusedElaboratable=no
"""GateUnit: routing of finished work items."""

import pytest
from amaranth.sim import Simulator

from cgaccel.engine.gate_unit import GateUnit


@pytest.mark.parametrize("psum,base,thr,cond,gated,off,want", [
    # want: (out, acc, open, closed)
    (5, 0, 4, 0, 1, 0, (0, 5, 1, 0)),            # gated base, gate opens (psum > thr)
    (4, 0, 4, 0, 1, 0, (1, 4, 0, 1)),            # equal to thr: closed
    (-7, 0, -2**31, 0, 1, 0, (0, -7, 1, 0)),     # most negative threshold
    (9, 0, 2**31 - 1, 0, 1, 0, (1, 9, 0, 1)),    # largest threshold: never opens
    (9, 0, -100, 0, 0, 0, (1, 9, 0, 0)),         # dense: straight to output
    (9, 30, 0, 1, 1, 0, (1, 39, 0, 0)),          # conditional finished: base + cond
    (9, 0, 0, 0, 1, 1, (1, 0, 0, 0)),            # masked off: q = 0, no decision
])
@pytest.mark.parametrize("early", [False, True])
def test_routing(psum, base, thr, cond, gated, off, want, early):
    """``early``: the caller's registered ``psum > thr`` decides, as the compare did."""
    dut = GateUnit(32, early=early)
    got = {}
    cmp = dict(i_above=int(psum > thr)) if early else dict(i_thr=thr)

    async def bench(ctx):
        for name, v in dict(i_valid=1, i_psum=psum, i_base=base, i_cond=cond,
                            i_gated=gated, i_off=off, **cmp).items():
            ctx.set(getattr(dut, name), v)
        got["v"] = (ctx.get(dut.o_out), ctx.get(dut.o_acc), ctx.get(dut.o_open),
                    ctx.get(dut.o_closed))
        ctx.set(dut.i_valid, 0)
        got["idle"] = (ctx.get(dut.o_out), ctx.get(dut.o_open), ctx.get(dut.o_closed))

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    assert got["v"] == want
    assert got["idle"] == (0, 0, 0)


def test_early_must_be_bool():
    with pytest.raises(TypeError, match="GateUnit early must be a bool, not 1"):
        GateUnit(32, early=1)
