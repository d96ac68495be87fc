# amaranth: UnusedElaboratable=no

import pytest
from amaranth.sim import Simulator
from axil import axil_read, axil_write

from cgaccel.axi import RESP_OKAY
from cgaccel.cli_verilog import lint_verilog
from cgaccel.config import AccelConfig, preset
from cgaccel.regs import ERRORS, MAGIC, register_map
from cgaccel.rtl import write_verilog
from cgaccel.top import Top

REGS = {r.name: r.offset for r in register_map()}


@pytest.mark.parametrize("name", ["small", pytest.param("default", marks=pytest.mark.slow)])
def test_emitted_verilog_lints_clean(tmp_path, name):
    path = write_verilog(Top(preset(name)), "cgaccel", tmp_path / "cgaccel.v")
    rc, out = lint_verilog(path)
    assert rc == 0, out


def test_config_type_is_checked():
    with pytest.raises(TypeError, match=r"^Config must be an AccelConfig, not 'default'$"):
        Top("default")


def test_host_sees_identity_and_irq():
    dut = Top(AccelConfig(rows=3, cols=5, max_channels=32, max_dim=16, act_depth=64,
                          weight_depth=64, out_depth=64))
    out = {}

    async def bench(ctx):
        bus = dut.s_axil
        assert await axil_read(ctx, bus, REGS["ID"]) == (MAGIC, RESP_OKAY)
        hw0, _ = await axil_read(ctx, bus, REGS["HWCFG0"])
        assert hw0 & 0xFFFF == 3 | 5 << 8
        await axil_write(ctx, bus, REGS["IRQ_EN"], 1)
        await axil_write(ctx, bus, REGS["CTRL"], 1)
        await ctx.tick().repeat(2)
        out["irq"] = ctx.get(dut.irq)
        out["status"], _ = await axil_read(ctx, bus, REGS["STATUS"])
        out["error"], _ = await axil_read(ctx, bus, REGS["ERROR"])
        await axil_write(ctx, bus, REGS["IRQ"], 1)
        await axil_write(ctx, bus, REGS["CTRL"], 2)
        await ctx.tick().repeat(2)
        out["irq_after"] = ctx.get(dut.irq)
        out["status_after"], _ = await axil_read(ctx, bus, REGS["STATUS"])

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert out["irq"] == 1
    assert out["status"] & 0b110 == 0b110
    # Nothing was programmed: CMD_LEN = 0 is refused before any DRAM access.
    assert out["error"] == ERRORS["misaligned"]
    assert out["irq_after"] == 0 and out["status_after"] == 0
