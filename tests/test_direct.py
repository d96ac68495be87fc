"""The ``host="mmio"`` top (cgaccel.direct) and its driver (cgaccel.direct_driver), in the Amaranth
simulator: layers bit-exact against the golden model, the register protocol's errors, and the
transaction list against the command list's trace."""

import asyncio

import numpy as np
import pytest
from amaranth.sim import Simulator

from cgaccel.axi import RESP_OKAY, RESP_SLVERR
from cgaccel.cmdsim import Memory, execute
from cgaccel.config import AccelConfig, preset
from cgaccel.direct import DirectTop, HostPort
from cgaccel.direct_driver import DirectDriver, transactions
from cgaccel.driver import AcceleratorError, HardwareMismatch, compile_layer
from cgaccel.engine.tiling import expected_counts
from cgaccel.model.resnet18 import LayerShape
from cgaccel.model.vectors import make_vectors
from cgaccel.regs import MAGIC_DIRECT, direct_register_map
from cgaccel.top import Top, build_top

REG = {r.name: r.offset for r in direct_register_map(preset("tiny"))}
# Two columns, 2 rows: channel-split tiles, a column field, bytes and 2-byte words.
TWO_COLS = AccelConfig(rows=2, cols=2, max_channels=32, max_kernel=3, max_dim=16,
                       act_depth=128, weight_depth=128, out_depth=128, psum_slots=4,
                       max_groups=2, axi_data_width=32, out_word=2, deal=False,
                       counter_width=32, host="mmio")


class SimRegs:
    """AXI4-Lite manager on the simulator's ``s_axil`` (one access at a time)."""

    def __init__(self, ctx, bus):
        self.ctx, self.bus = ctx, bus
        self.responses = []

    async def write(self, offset, value, strb=0xF):
        ctx, bus = self.ctx, self.bus
        ctx.set(bus.awaddr, offset)
        ctx.set(bus.wdata, value)
        ctx.set(bus.wstrb, strb)
        ctx.set(bus.awvalid, 1)
        ctx.set(bus.wvalid, 1)
        await ctx.tick().until(bus.awready)
        ctx.set(bus.awvalid, 0)
        ctx.set(bus.wvalid, 0)
        ctx.set(bus.bready, 1)
        (resp,) = await ctx.tick().sample(bus.bresp).until(bus.bvalid)
        ctx.set(bus.bready, 0)
        self.responses.append(resp)
        if resp != RESP_OKAY:
            raise OSError(f"write at {offset:#x} answered {resp}")

    async def read(self, offset):
        ctx, bus = self.ctx, self.bus
        ctx.set(bus.araddr, offset)
        ctx.set(bus.arvalid, 1)
        await ctx.tick().until(bus.arready)
        ctx.set(bus.arvalid, 0)
        ctx.set(bus.rready, 1)
        data, resp = await ctx.tick().sample(bus.rdata, bus.rresp).until(bus.rvalid)
        ctx.set(bus.rready, 0)
        self.responses.append(resp)
        if resp != RESP_OKAY:
            raise OSError(f"read at {offset:#x} answered {resp}")
        return data


def simulate(config, body, cycles=2_000_000):
    """Run ``await body(regs)`` against a DirectTop; return what it returns."""
    dut = DirectTop(config)
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    out = {}

    async def bench(ctx):
        out["value"] = await body(SimRegs(ctx, dut.s_axil))

    async def watchdog(ctx):
        for _ in range(cycles):
            if "value" in out:
                return
            await ctx.tick()
        raise AssertionError(f"the bench must finish within {cycles} cycles, not hang")

    sim.add_testbench(bench)
    sim.add_testbench(watchdog)
    sim.run()
    return out["value"]


def layer(C, H, W, K, R, stride=1, groups=2, density=0.4, seed=0, **kw):
    shape = LayerShape("t", C, H, W, K, R, R, stride, R // 2)
    return make_vectors(shape, groups, density, seed=seed, **kw)


CASES = [
    # (config, vectors, tiling options). ``tiny`` has no CGNet gating: dense and FBS layers;
    # TWO_COLS gates.
    (preset("tiny"), dict(C=6, H=5, W=6, K=4, R=3, groups=1, density=0.0, seed=1,
                          residual=True, relu=True, fbs_density=0.8), {}),
    (preset("tiny"), dict(C=5, H=6, W=5, K=3, R=3, stride=2, groups=1, density=0.0, seed=2,
                          fbs_density=0.7), {}),
    (TWO_COLS, dict(C=4, H=6, W=5, K=6, R=3, groups=2, density=0.5, seed=3, residual=True),
     dict(k_tile=2, band_rows=2, double_out=True)),
    (TWO_COLS, dict(C=4, H=4, W=4, K=4, R=1, groups=1, density=0.0, seed=4), {}),
]


@pytest.mark.parametrize("n", range(len(CASES)))
def test_layer_bit_exact(n):
    """A layer through the register window equals the golden model's ``y``; the MAC and gate
    counters equal the plan's counts."""
    config, vkw, opts = CASES[n]
    vec = layer(**vkw)
    compiled = compile_layer(config, vec, **opts)

    async def body(regs):
        return await DirectDriver(config, regs).run_compiled(compiled)

    run = simulate(config, body)
    np.testing.assert_array_equal(run.y, vec["y"])
    words, skipped, opens = expected_counts(compiled.plan, vec["gate"])
    assert run.counters["macs_issued"] == words * config.rows
    assert run.counters["macs_skipped"] == skipped * config.rows
    assert run.counters["gate_open"] == opens
    assert 0 < run.counters["busy"] <= run.counters["cycles"]


def test_word_reads_replace_byte_reads():
    """A STORE of whole output words becomes one RD + RD_DATA per word, and the bytes each
    word read lands on are the trace's."""
    config = TWO_COLS
    vec = layer(C=4, H=4, W=8, K=2, R=1, groups=1, density=0.0)
    c = compile_layer(config, vec)
    mem = Memory(c.image())
    mem.add(c.y_addr, c.y_len)
    trace = execute(config, mem, c.cmd_addr, c.cmd_len, c.y_addr, c.y_len)
    ops = transactions(config, trace)
    reads = [op for op in ops if op[0] == "r"]
    dram = [e[2] for e in trace.events if e[0] == "read"]
    assert [a for op in reads for a in op[2]] == dram
    assert len(reads) == len(dram) // config.out_word
    word = config.out_word
    assert word > 1
    assert all(op[2] == list(range(op[2][0], op[2][0] + word)) for op in reads)


def test_registers_and_errors():
    """Identification, SLVERR for unmapped, read-only, write-only, partial and unbacked
    accesses, a refused tile sets STATUS.error and CTRL.clear clears it."""
    config = preset("tiny")

    async def body(regs):
        drv = DirectDriver(config, regs)
        await drv.check_hardware()
        assert await regs.read(REG["ID"]) == MAGIC_DIRECT
        assert await regs.read(REG["STATUS"]) == 0
        failures = []
        for what, call in (("unmapped read", regs.read(0x3F0)),
                           ("unmapped write", regs.write(0x3F0, 1)),
                           ("write to ID", regs.write(REG["ID"], 1)),
                           ("read of RUN", regs.read(REG["RUN"])),
                           ("read of TILE0", regs.read(REG["TILE0"])),
                           ("partial write", regs.write(REG["TILE0"], 0, strb=0x3)),
                           ("RD_DATA with no read pending", regs.read(REG["RD_DATA"]))):
            try:
                await call
            except OSError:
                continue
            failures.append(what)
        assert not failures, f"answered OKAY: {failures}"
        assert regs.responses[-7:] == [RESP_SLVERR] * 7
        # A tile whose kernel is larger than the configuration's: refused, no hang.
        for k in range(3):
            await regs.write(REG[f"TILE{k}"], 0)
        await regs.write(REG["TILE0"], 0xFF << 8)    # r, s = 15
        await regs.write(REG["RUN"], 1)
        for _ in range(200):
            status = await regs.read(REG["STATUS"])
            if status >> 16:
                break
        status_err = status
        await regs.write(REG["CTRL"], 1)
        return status_err, await regs.read(REG["STATUS"])

    status, cleared = simulate(config, body, cycles=100_000)
    assert status >> 16 == 1 and status & 0b10, f"STATUS {status:#x}"
    assert cleared == 0


def test_driver_refuses_the_other_top_and_config():
    """A DirectDriver on a DMA top's ID, or with another configuration's HWCFG, raises."""
    config = preset("tiny")

    async def body(regs):
        results = []
        other = config.with_overrides(rows=2)
        for cfg in (other,):
            try:
                await DirectDriver(cfg, regs).check_hardware()
            except HardwareMismatch as exc:
                results.append(str(exc))
        return results

    (msg,) = simulate(config, body, cycles=10_000)
    assert "HWCFG0" in msg
    class Regs:
        async def read(self, offset):
            return 0

        async def write(self, offset, value):
            pass

    with pytest.raises(ValueError, match="host must be 'mmio'"):
        DirectDriver(preset("small"), Regs())
    with pytest.raises(TypeError, match="regs must have a read"):
        DirectDriver(config, object())
    with pytest.raises(AcceleratorError):
        asyncio.run(_refused_list(config))


async def _refused_list(config):
    vec = layer(C=4, H=4, W=4, K=2, R=1, groups=1, density=0.0)
    c = compile_layer(config, vec)
    c.y_len = 1     # every STORE now leaves the output window: the host refuses the list

    class NoRegs:
        async def read(self, offset):
            return {REG["ID"]: MAGIC_DIRECT}.get(offset, 0)

        async def write(self, offset, value):
            raise AssertionError("the engine must not be touched")

    await DirectDriver(config, NoRegs()).run_compiled(c, check=False)


def test_tops_and_config():
    """build_top picks the top by host; each top refuses the other host; the config checks
    the direct host's limits."""
    for name, cls in (("tiny", DirectTop), ("small", Top)):
        top = build_top(preset(name))
        top._MustUse__silence = True    # built to be looked at, not elaborated
        assert type(top) is cls
    with pytest.raises(ValueError, match="host must be 'dma' for Top"):
        Top(preset("tiny"))
    with pytest.raises(ValueError, match="host must be 'mmio' for DirectTop"):
        DirectTop(preset("small"))
    with pytest.raises(ValueError, match="Host interface must be one of dma, mmio, not 'pci'"):
        AccelConfig(host="pci")
    with pytest.raises(TypeError, match="Host interface must be a string"):
        AccelConfig(host=1)
    with pytest.raises(ValueError, match="Load lanes must be 1 with host='mmio'"):
        AccelConfig(rows=4, cols=1, axi_data_width=128, load_lanes=4, host="mmio")
    with pytest.raises(ValueError, match="at most 32 bits with host='mmio'.*not 64"):
        AccelConfig(cols=8, host="mmio")
    with pytest.raises(TypeError):
        HostPort("tiny")
