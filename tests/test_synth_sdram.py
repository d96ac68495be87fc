"""The board's SDRAM as DRAM (cgaccel.synth.sdram) against the SDRAM chip model.

Every test runs the controller against :class:`cgaccel.synth.sdram_model.SdramModel`, which
raises on any command or timing violation (initialisation, tRCD, tRP, tRAS, tRC, tWR, tRFC,
tMRD, the refresh interval, data-bus contention) and keeps the chip's contents, so the data
checks see the words where the documented address map puts them. Timing: the IS42S16160's at
25 MHz (CAS latency 2) and 50 MHz (CAS latency 3), with a short power-up wait and refresh
interval so that refreshes fall inside every burst, and slow chips at 50 MHz whose tRCD, tRAS,
tRC, tRP and tWR outlast the accesses themselves (each wait then decides a command's cycle).
"""

import random
from dataclasses import replace

import pytest
from amaranth.sim import Simulator
from axi4 import apply_bytes, axi_read, axi_write, word_at
from axil import axil_read, axil_write

from cgaccel.axi import RESP_OKAY, RESP_SLVERR
from cgaccel.synth.sdram import IS42S16160, AxiSdram, SdramBeats, SdramChip, split_address
from cgaccel.synth.sdram_model import SdramModel

# (MHz, CAS latency, slow): slow chips at 50 MHz whose waits outlast an access's own length,
# "rc" with tRC binding (tRCD, tRP 3 cycles, tRAS 15, tRC 21, tWR 3, tMRD 3), "rp" with tRP
# binding (tRP 5, tRAS 15, tRC 16).
CLOCKS = [(25.0, 2, None), (50.0, 3, None), (50.0, 2, "rc"), (50.0, 2, "rp")]


def _chip(cl, slow=None):
    chip = replace(IS42S16160, cas_latency=cl, t_init_ns=400.0, t_refi_ns=2400.0)
    if slow is not None:
        chip = replace(chip, t_rcd_ns=45.0, t_rp_ns=45.0, t_ras_ns=300.0, t_rc_ns=420.0,
                       t_wr_ns=50.0, t_rfc_ns=90.0, t_refi_ns=4000.0, t_mrd_cycles=3)
    if slow == "rp":
        chip = replace(chip, t_rp_ns=100.0, t_rc_ns=320.0)
    return chip


def _model(pins, chip, mhz, seed):
    t = chip.cycles(mhz)
    return SdramModel(pins, row_bits=chip.row_bits, col_bits=chip.col_bits,
                      bank_bits=chip.bank_bits, t_rcd=t["t_rcd"], t_rp=t["t_rp"],
                      t_ras=t["t_ras"], t_rc=t["t_rc"], t_wr=t["t_wr"], t_rfc=t["t_rfc"],
                      t_mrd=t["t_mrd"], refresh_cycles=t["refresh"], init_cycles=t["init"],
                      seed=seed)


def _run(dut, sdm, bench):
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(sdm.run, background=True)
    sim.add_testbench(bench)
    sim.run()


class Mirror:
    """What the memory should hold: bytes preloaded into the chip or written since."""

    def __init__(self):
        self.b = {}

    def load(self, sdm, addr, data):
        sdm.load(addr, data)
        for i, v in enumerate(data):
            self.b[addr + i] = v

    def word(self, addr, n):
        return int.from_bytes(bytes(self.b[addr + i] for i in range(n)), "little")

    def apply(self, addr, data, strb, n):
        for i in range(n):
            if strb >> i & 1:
                self.b[addr + i] = data >> (8 * i) & 0xFF


@pytest.mark.parametrize("mhz, cl, slow", CLOCKS)
@pytest.mark.parametrize("data_width", [32, 128])
@pytest.mark.parametrize("pause", [0.0, 0.5])
def test_axi_sdram_bursts_and_host_port(mhz, cl, slow, data_width, pause):
    chip = _chip(cl, slow)
    nbytes = data_width // 8
    size = chip.size_bytes
    dut = AxiSdram(chip=chip, data_width=data_width, addr_width=32, id_width=4, clock_mhz=mhz)
    sdm = _model(dut.sdram, chip, mhz, seed=int(mhz) + data_width)
    rng = random.Random(data_width * 3 + int(pause * 10) + cl)
    mem = Mirror()
    # Regions spread over the whole chip (every row, bank and column bit), and its last beats.
    regions = [rng.randrange(0, size // 64 - 1) * 64 for _ in range(6)] + [size - 8 * nbytes]
    for r in regions:
        mem.load(sdm, r, bytes(rng.getrandbits(8) for _ in range(8 * nbytes)))

    async def bench(ctx):
        axi, lite = dut.axi, dut.lite
        for r in regions:
            # The accelerator reads what was preloaded (the chip's own address map).
            got = await axi_read(ctx, axi, rng, pause, r, 8)
            assert got == [(mem.word(r + i * nbytes, nbytes), RESP_OKAY, int(i == 7), 5)
                           for i in range(8)]
            # A partial burst with random strobes, read back by the accelerator and the host.
            n = rng.randint(1, 8)
            start = r + rng.randrange(0, 8 - n + 1) * nbytes
            beats = [rng.getrandbits(data_width) for _ in range(n)]
            strbs = [rng.getrandbits(nbytes) for _ in range(n)]
            assert await axi_write(ctx, axi, rng, pause, start, beats, strbs) == (3, RESP_OKAY)
            for i in range(n):
                mem.apply(start + i * nbytes, beats[i], strbs[i], nbytes)
            got = await axi_read(ctx, axi, rng, pause, r, 8)
            assert [g[0] for g in got] == [mem.word(r + i * nbytes, nbytes) for i in range(8)]
            a = r + 4 * rng.randrange(0, 2 * nbytes)
            assert await axil_read(ctx, lite, a) == (mem.word(a, 4), RESP_OKAY)
            # Host byte writes land in one lane of one word.
            v, strb = rng.getrandbits(32), rng.getrandbits(4)
            assert await axil_write(ctx, lite, a, v, strb) == RESP_OKAY
            mem.apply(a, v, strb, 4)
            got = await axi_read(ctx, axi, rng, pause, a - a % nbytes, 1)
            assert got[0][0] == mem.word(a - a % nbytes, nbytes)
        # FIXED burst: every beat to one address, reads repeat it.
        fa = regions[0] + 2 * nbytes
        beats = [rng.getrandbits(data_width) for _ in range(3)]
        assert (await axi_write(ctx, axi, rng, pause, fa, beats, [(1 << nbytes) - 1] * 3,
                                burst=0))[1] == RESP_OKAY
        mem.apply(fa, beats[-1], (1 << nbytes) - 1, nbytes)
        got = await axi_read(ctx, axi, rng, pause, fa, 2, burst=0)
        assert [g[0] for g in got] == [mem.word(fa, nbytes)] * 2

    _run(dut, sdm, bench)
    # The chip holds the bytes where split_address puts them (the model's own map).
    for addr, v in mem.b.items():
        assert sdm.dump(addr, 1) == bytes([v])
    assert sdm.initialised and sdm.mode.cas_latency == cl and sdm.mode.burst_length == 1
    assert sdm.counts["AUTO REFRESH"] > 2 + 2
    assert sdm.last_refresh_gap_max <= chip.cycles(mhz)["refresh"]


@pytest.mark.parametrize("mhz, cl, slow", CLOCKS)
def test_long_bursts_are_refreshed_and_survive_backpressure(mhz, cl, slow):
    """256-beat bursts take many refresh intervals; a stalled RREADY holds the beat."""
    chip = _chip(cl, slow)
    dut = AxiSdram(chip=chip, data_width=64, addr_width=32, id_width=2, clock_mhz=mhz)
    sdm = _model(dut.sdram, chip, mhz, seed=3)
    rng = random.Random(cl)
    model = bytearray(256 * 8)
    base = 0x1234_000 & ~0xFFF

    async def bench(ctx):
        beats = [rng.getrandbits(64) for _ in range(256)]
        assert await axi_write(ctx, dut.axi, rng, 0.3, base, beats, [0xFF] * 256) == \
            (3, RESP_OKAY)
        for i, b in enumerate(beats):
            apply_bytes(model, i * 8, b, 0xFF, 8)
        got = await axi_read(ctx, dut.axi, rng, 0.7, base, 256, aid=1)
        assert [g[0] for g in got] == [word_at(model, i * 8, 8) for i in range(256)]
        assert [g[2] for g in got] == [0] * 255 + [1]

    _run(dut, sdm, bench)
    assert sdm.dump(base, len(model)) == bytes(model)
    refresh = dut.beats.refresh_period
    assert sdm.counts["AUTO REFRESH"] >= 2 + 256 * 8 // refresh
    assert sdm.last_refresh_gap_max <= chip.cycles(mhz)["refresh"]


@pytest.mark.parametrize("ready_pause", [0.0, 0.8])
def test_beat_commands_in_any_order(ready_pause):
    """SdramBeats on its own: reads, writes and row changes back to back, with the read data
    held back by its consumer (the reads' FIFO must not overflow, a write must wait for the
    reads before it to leave the data pins)."""
    chip = _chip(3, "rc")
    mhz, dw = 50.0, 64
    nbytes = dw // 8
    dut = SdramBeats(chip=chip, data_width=dw, clock_mhz=mhz)
    sdm = _model(dut.sdram, chip, mhz, seed=8)
    rng = random.Random(int(ready_pause * 10))
    mem = Mirror()
    row = 1 << (chip.col_bits + chip.bank_bits + 1)       # bytes per row of all banks
    bank = 1 << (chip.col_bits + 1)
    # Beats in one row, the same bank's next row, another bank, and back.
    addrs = [0, 8, 16, row, row + 8, bank, 24, 2 * bank + 3 * row, 0]
    for a in set(addrs):
        mem.load(sdm, a, bytes(rng.getrandbits(8) for _ in range(nbytes)))
    ops = [(rng.random() < 0.4, a) for a in addrs * 4]
    expected, got = [], []

    async def producer(ctx):
        for is_write, a in ops:
            ctx.set(dut.i_cmd.p.write, is_write)
            ctx.set(dut.i_cmd.p.beat, a // nbytes)
            if is_write:
                v, strb = rng.getrandbits(dw), rng.getrandbits(nbytes)
                ctx.set(dut.i_cmd.p.data, v)
                ctx.set(dut.i_cmd.p.strb, strb)
                mem.apply(a, v, strb, nbytes)
            else:
                expected.append(mem.word(a, nbytes))
            ctx.set(dut.i_cmd.valid, 1)
            await ctx.tick().until(dut.i_cmd.ready)
            ctx.set(dut.i_cmd.valid, 0)
        await ctx.tick().repeat(64)          # the last write reaches the chip

    async def consumer(ctx):
        for _ in range(20_000):
            ready = rng.random() >= ready_pause
            ctx.set(dut.o_rdata.ready, ready)
            _, _, valid, data = await ctx.tick().sample(dut.o_rdata.valid,
                                                       dut.o_rdata.payload)
            if valid and ready:
                got.append(data)
                if len(got) == sum(1 for w, _ in ops if not w):
                    return
        raise AssertionError(f"only {len(got)} read beats came back")

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(sdm.run, background=True)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.run()
    assert got == expected
    for a in set(addrs):
        assert sdm.dump(a, nbytes) == bytes(mem.b[a + i] for i in range(nbytes))
    assert sdm.counts["ACTIVE"] > 8 and sdm.counts["WRITE"] > 0


def test_errors_leave_memory_alone():
    chip = _chip(2)
    nbytes = 8
    size = chip.size_bytes
    dut = AxiSdram(chip=chip, data_width=64, addr_width=32, id_width=2, clock_mhz=25.0)
    sdm = _model(dut.sdram, chip, 25.0, seed=9)
    rng = random.Random(5)
    last = size - nbytes
    sdm.load(last, bytes(range(8)))
    sdm.load(0, bytes(range(10, 10 + 4 * nbytes)))

    async def bench(ctx):
        axi = dut.axi
        # A burst running past the end: SLVERR, nothing written.
        assert await axi_write(ctx, axi, rng, 0.0, last, [1, 2], [0xFF] * 2, aid=1) == \
            (1, RESP_SLVERR)
        # Outside the chip, narrow size, WRAP burst: SLVERR; reads return zero data.
        got = await axi_read(ctx, axi, rng, 0.0, size, 2)
        assert got == [(0, RESP_SLVERR, 0, 5 & 3), (0, RESP_SLVERR, 1, 5 & 3)]
        assert (await axi_write(ctx, axi, rng, 0.0, 0, [9], [0xFF], size=2))[1] == RESP_SLVERR
        assert (await axi_write(ctx, axi, rng, 0.0, 0, [9, 9], [0xFF] * 2, burst=2))[1] \
            == RESP_SLVERR
        # WLAST on the wrong beat: SLVERR, and the burst is dropped from there on.
        assert (await axi_write(ctx, axi, rng, 0.0, 0, [1, 2, 3], [0xFF] * 3,
                                wlast_at=0))[1] == RESP_SLVERR
        # The controller still works afterwards.
        assert await axil_read(ctx, dut.lite, last + 4) == (0x07060504, RESP_OKAY)

    _run(dut, sdm, bench)
    assert sdm.dump(last, 8) == bytes(range(8))
    assert sdm.dump(0, 4 * nbytes) == bytes(range(10, 10 + 4 * nbytes))
    assert sdm.counts["WRITE"] == 0


def test_requests_wait_for_initialisation():
    """A request at reset is answered only after the chip's power-up sequence."""
    chip = replace(_chip(2), t_init_ns=1600.0)        # 40 cycles at 25 MHz
    dut = AxiSdram(chip=chip, data_width=32, addr_width=32, id_width=2, clock_mhz=25.0)
    sdm = _model(dut.sdram, chip, 25.0, seed=1)
    sdm.load(0x100, b"\x11\x22\x33\x44")
    seen = {}

    async def bench(ctx):
        assert not ctx.get(dut.ready)
        assert await axil_read(ctx, dut.lite, 0x100) == (0x44332211, RESP_OKAY)
        seen["ready"] = ctx.get(dut.ready)
        seen["init"] = sdm.initialised

    _run(dut, sdm, bench)
    assert seen == {"ready": 1, "init": True}
    assert sdm.counts["ACTIVE"] == 1 and sdm.counts["READ"] == 2


def test_split_address_is_row_bank_column():
    c = IS42S16160
    assert c.size_bytes == 32 << 20
    assert split_address(c, 0) == (0, 0, 0)
    assert split_address(c, 2) == (0, 0, 1)
    assert split_address(c, 1024) == (1, 0, 0)          # 512 columns of 2 bytes
    assert split_address(c, 4096) == (0, 1, 0)          # 4 banks later: the next row
    assert split_address(c, c.size_bytes - 2) == (3, 8191, 511)


def test_timing_in_cycles():
    t = IS42S16160.cycles(25.0)
    assert (t["t_rcd"], t["t_rp"], t["t_ras"], t["t_rc"], t["t_wr"], t["t_rfc"]) == \
        (1, 1, 2, 2, 2, 2)
    assert t["refresh"] == 195 and t["init"] == 5000
    t = IS42S16160.cycles(50.0)
    assert (t["t_rcd"], t["t_rp"], t["t_ras"], t["t_rc"], t["t_wr"]) == (1, 1, 3, 4, 2)


def test_rejects_bad_parameters():
    with pytest.raises(ValueError, match="SDRAM row_bits must be 11 to 13, not 14"):
        SdramChip(row_bits=14)
    with pytest.raises(ValueError, match="SDRAM cas_latency must be 2 or 3, not 1"):
        SdramChip(cas_latency=1)
    with pytest.raises(TypeError, match="SDRAM col_bits must be an integer, not 9.0"):
        SdramChip(col_bits=9.0)
    with pytest.raises(ValueError, match="SDRAM t_rp_ns must be a positive number, not 0"):
        SdramChip(t_rp_ns=0)
    with pytest.raises(ValueError, match="SDRAM clock must be a frequency in MHz above 0 and "
                                         "at most 50, not 100"):
        SdramBeats(chip=IS42S16160, data_width=64, clock_mhz=100)
    with pytest.raises(ValueError, match="SDRAM clock must leave at least 16 cycles between "
                                         "refreshes, not -"):
        SdramBeats(chip=IS42S16160, data_width=128, clock_mhz=2)
    with pytest.raises(ValueError, match="SDRAM data width must be a power of two from 16 to "
                                         "8192, not 48"):
        SdramBeats(chip=IS42S16160, data_width=48, clock_mhz=25)
    with pytest.raises(TypeError, match="SDRAM chip must be an SdramChip, not 'x'"):
        SdramBeats(chip="x", data_width=64, clock_mhz=25)
    with pytest.raises(ValueError, match="SDRAM address width must reach 33554432 bytes, not "
                                         "24 bits"):
        AxiSdram(data_width=64, addr_width=24, id_width=2, clock_mhz=25)
    with pytest.raises(ValueError, match="SDRAM data width must be at least 32, not 16"):
        AxiSdram(data_width=16, addr_width=32, id_width=2, clock_mhz=25)


def test_sustained_rate_at_25_mhz():
    """Cycles per 128-bit beat over 256-beat bursts at the ULX3S's 25 MHz with the real
    refresh interval (the figures docs/synth.md quotes; -s prints them)."""
    mhz, dw, n = 25.0, 128, 256
    chip = replace(IS42S16160, t_init_ns=400.0)
    dut = AxiSdram(chip=chip, data_width=dw, addr_width=32, id_width=2, clock_mhz=mhz)
    sdm = _model(dut.sdram, chip, mhz, seed=2)
    rng = random.Random(2)
    beats = [rng.getrandbits(dw) for _ in range(n)]
    cycles = {}

    async def bench(ctx):
        await ctx.tick().until(dut.ready)
        c0 = sdm.cycle
        assert await axi_write(ctx, dut.axi, rng, 0.0, 0, beats, [(1 << dw // 8) - 1] * n) == \
            (3, RESP_OKAY)
        c1 = sdm.cycle
        got = await axi_read(ctx, dut.axi, rng, 0.0, 0, n)
        cycles.update(write=c1 - c0, read=sdm.cycle - c1)
        assert [g[0] for g in got] == beats

    _run(dut, sdm, bench)
    w, r = cycles["write"] / n, cycles["read"] / n
    print(f"\nSDRAM at {mhz:g} MHz, {dw}-bit beats: write {w:.2f} cycles/beat "
          f"({dw / 8 * mhz / w:.1f} MB/s), read {r:.2f} ({dw / 8 * mhz / r:.1f} MB/s)")
    # 8 words a beat and a cycle to take the next, the row left open (64 beats share a row),
    # plus a row change every 64 beats and the refreshes.
    assert 8 < w < 9.5 and 8 < r < 9.5


def test_a_layer_runs_from_sdram():
    """The accelerator top on AxiSdram and the chip model: the host driver runs a gated layer
    from the chip (placed there through the model's back door) and the result is bit-exact."""
    import numpy as np
    from amaranth.hdl import Module
    from amaranth.lib import wiring

    from cgaccel.config import AccelConfig
    from cgaccel.driver import Driver
    from cgaccel.model.resnet18 import LayerShape
    from cgaccel.model.vectors import make_vectors
    from cgaccel.top import Top

    cfg = AccelConfig(rows=2, cols=2, max_channels=16, max_dim=8, max_kernel=3, act_depth=128,
                      weight_depth=128, out_depth=128, psum_slots=8, max_groups=4,
                      axi_data_width=32)
    vec = make_vectors(LayerShape("t", 4, 5, 5, 4, 3, 3, 1, 1), 2, 0.5, seed=1)
    chip, mhz = _chip(2), 25.0
    top = Top(cfg)
    ram = AxiSdram(chip=chip, data_width=cfg.axi_data_width, addr_width=cfg.axi_addr_width,
                   id_width=cfg.axi_id_width, clock_mhz=mhz)
    m = Module()
    m.submodules.top, m.submodules.ram = top, ram
    wiring.connect(m, top.m_axi, ram.axi)
    sdm = _model(ram.sdram, chip, mhz, seed=4)
    out = {}

    class Mem:
        def write(self, addr, data):
            sdm.load(addr, bytes(data))

        def read(self, addr, n):
            return sdm.dump(addr, n)

    async def bench(ctx):
        class Regs:
            async def read(self, offset):
                data, resp = await axil_read(ctx, top.s_axil, offset)
                assert resp == RESP_OKAY
                return data

            async def write(self, offset, value):
                assert await axil_write(ctx, top.s_axil, offset, value) == RESP_OKAY

        async def wait():
            await ctx.tick().repeat(64)

        # Near the top of the chip: the highest rows of every bank.
        drv = Driver(cfg, Regs(), Mem(), base_addr=chip.size_bytes - (1 << 16), wait=wait)
        await drv.check_hardware()
        out["run"] = await drv.run_layer(vec)

    _run(m, sdm, bench)
    np.testing.assert_array_equal(out["run"].y, vec["y"])
    assert sdm.counts["READ"] > 0 and sdm.counts["WRITE"] > 0
