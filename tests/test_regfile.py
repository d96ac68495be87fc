# amaranth: UnusedElaboratable=no
import pytest
from amaranth.sim import Simulator
from axil import axil_read, axil_write

from cgaccel.axi import RESP_OKAY, RESP_SLVERR
from cgaccel.config import preset
from cgaccel.regfile import RegFile
from cgaccel.regs import MAGIC, VERSION, hwcfg_values, register_map

REGS = {r.name: r.offset for r in register_map()}


def run(dut, bench):
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


def test_registers():
    hw = hwcfg_values(preset("default"))
    dut = RegFile(hw)
    seen = {}

    async def bench(ctx):
        bus = dut.bus
        assert await axil_read(ctx, bus, REGS["ID"]) == (MAGIC, RESP_OKAY)
        assert await axil_read(ctx, bus, REGS["VERSION"]) == (VERSION, RESP_OKAY)
        assert await axil_read(ctx, bus, REGS["HWCFG0"]) == (hw["HWCFG0"], RESP_OKAY)
        # rw with byte strobes
        assert await axil_write(ctx, bus, REGS["CMD_ADDR_LO"], 0x11223344) == RESP_OKAY
        assert await axil_write(ctx, bus, REGS["CMD_ADDR_LO"], 0xAABBCCDD, strb=0b0101) == RESP_OKAY
        assert ctx.get(dut.cmd_addr_lo) == 0x11BB33DD
        assert await axil_read(ctx, bus, REGS["CMD_ADDR_LO"]) == (0x11BB33DD, RESP_OKAY)
        # unmapped address
        assert await axil_write(ctx, bus, 0xFFC, 1) == RESP_SLVERR
        assert (await axil_read(ctx, bus, 0xFFC))[1] == RESP_SLVERR
        # w1p: reads 0 (the pulse itself is checked below)
        assert await axil_write(ctx, bus, REGS["CTRL"], 1) == RESP_OKAY
        assert ctx.get(dut.ctrl) == 0
        assert (await axil_read(ctx, bus, REGS["CTRL"]))[0] == 0
        # w1c: hardware sets, host clears
        ctx.set(dut.irq_set, 1)
        await ctx.tick()
        ctx.set(dut.irq_set, 0)
        await ctx.tick()
        assert await axil_read(ctx, bus, REGS["IRQ"]) == (1, RESP_OKAY)
        assert await axil_write(ctx, bus, REGS["IRQ"], 1) == RESP_OKAY
        assert await axil_read(ctx, bus, REGS["IRQ"]) == (0, RESP_OKAY)
        # counter: reading _LO latches _HI
        ctx.set(dut.cycles_lo, 0xFFFFFFFF)
        ctx.set(dut.cycles_hi, 7)
        assert await axil_read(ctx, bus, REGS["CYCLES_LO"]) == (0xFFFFFFFF, RESP_OKAY)
        ctx.set(dut.cycles_lo, 0)
        ctx.set(dut.cycles_hi, 8)
        assert await axil_read(ctx, bus, REGS["CYCLES_HI"]) == (7, RESP_OKAY)
        seen["done"] = True

    run(dut, bench)
    assert seen == {"done": True}


@pytest.mark.parametrize("width, hi", [(64, 0x89ABCDEF), (40, 0xEF), (32, 0)])
def test_counter_hi_holds_only_the_counter_width(width, hi):
    dut = RegFile(hwcfg_values(preset("small")), counter_width=width)
    seen = []

    async def bench(ctx):
        ctx.set(dut.busy_lo, 0x01234567)
        ctx.set(dut.busy_hi, 0x89ABCDEF)
        seen.append(await axil_read(ctx, dut.bus, REGS["BUSY_LO"]))
        seen.append(await axil_read(ctx, dut.bus, REGS["BUSY_HI"]))

    run(dut, bench)
    assert seen == [(0x01234567, RESP_OKAY), (hi, RESP_OKAY)]


def test_counter_width_is_checked():
    with pytest.raises(ValueError,
                       match=r"^Counter width must be an integer between 32 and 64, not 31$"):
        RegFile({}, counter_width=31)


def test_w1p_pulse_lasts_one_cycle():
    dut = RegFile(hwcfg_values(preset("small")))
    trace = []

    async def bench(ctx):
        await axil_write(ctx, dut.bus, REGS["CTRL"], 0b10)
        for _ in range(4):
            trace.append(ctx.get(dut.ctrl))
            await ctx.tick()

    async def monitor(ctx):
        async for _, _, ctrl in ctx.tick().sample(dut.ctrl):
            trace.append(("m", ctrl))
            if len([t for t in trace if isinstance(t, tuple)]) > 40:
                break

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.add_process(monitor)
    sim.run_until(1e-6)
    pulses = [v for t in trace if isinstance(t, tuple) for v in [t[1]] if v]
    assert pulses == [0b10]
