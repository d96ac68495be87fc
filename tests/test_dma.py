# amaranth: UnusedElaboratable=no
"""Unit tests of the DMA engines' parameters, signatures and burst splitting (Amaranth sim).

The engines' bus behaviour is tested by the cocotb benches in ``sim/dma``.
"""

import random

import pytest
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.sim import Simulator

from cgaccel.axi import AXI4Signature
from cgaccel.config import preset
from cgaccel.dma import (
    AXI4ReadSignature,
    AXI4WriteSignature,
    DMAParams,
    ReadDMA,
    WriteDMA,
    connect_axi,
)
from cgaccel.dma.buffer import BufferFIFO
from cgaccel.dma.common import READ_MEMBERS, WRITE_MEMBERS, burst_beats

BASE = dict(addr_width=32, data_width=64, id_width=4, max_burst=16, max_outstanding=4)


@pytest.mark.parametrize(("key", "value", "exc", "match"), [
    ("addr_width", 11, ValueError, "Address width must be an integer between 12 and 64, not 11"),
    ("addr_width", "32", TypeError, "Address width must be an integer, not '32'"),
    ("data_width", 48, ValueError, "Data width must be a power of two, not 48"),
    ("data_width", 16, ValueError, "Data width must be an integer between 32 and 1024, not 16"),
    ("id_width", 0, ValueError, "ID width must be an integer between 1 and 16, not 0"),
    ("max_burst", 0, ValueError, "Max burst must be an integer between 1 and 256, not 0"),
    ("max_burst", 1024, ValueError, "Max burst must be an integer between 1 and 256, not 1024"),
    ("max_outstanding", 0, ValueError,
     "Max outstanding must be an integer between 1 and 256, not 0"),
    ("max_outstanding", True, TypeError, "Max outstanding must be an integer, not True"),
    ("len_width", 40, ValueError, "Length width must be an integer between 4 and 32, not 40"),
])
def test_params_rejected(key, value, exc, match):
    with pytest.raises(exc, match=match):
        DMAParams(**{**BASE, key: value})
    with pytest.raises(exc, match=match):
        ReadDMA(**{**BASE, key: value})


def test_params_burst_beyond_4k():
    with pytest.raises(ValueError, match=r"Max burst must fit in 4 KiB \(32 beats at 1024 "
                                         r"bits\), not 64"):
        WriteDMA(**{**BASE, "data_width": 1024, "max_burst": 64})


def test_params_sources():
    cfg = preset("tiny")
    from_cfg = ReadDMA(cfg).params
    assert (from_cfg.addr_width, from_cfg.data_width, from_cfg.id_width, from_cfg.max_burst,
            from_cfg.max_outstanding) == (cfg.axi_addr_width, cfg.axi_data_width,
                                          cfg.axi_id_width, cfg.max_burst, cfg.max_outstanding)
    params = DMAParams(**BASE)
    assert WriteDMA(params).params is params
    with pytest.raises(TypeError, match="DMA parameters must be an AccelConfig or a DMAParams, "
                                        "not 3"):
        ReadDMA(3)
    with pytest.raises(TypeError, match="DMA parameters must be given either as an object or "
                                        "as keywords, not both"):
        ReadDMA(params, max_burst=4)


def test_signatures_are_subsets_of_axi4():
    params = DMAParams(**BASE)
    full = AXI4Signature(addr_width=32, data_width=64, id_width=4)
    assert set(READ_MEMBERS) | set(WRITE_MEMBERS) == set(full.members.keys())
    assert not set(READ_MEMBERS) & set(WRITE_MEMBERS)
    for sig, names in ((AXI4ReadSignature(params), READ_MEMBERS),
                       (AXI4WriteSignature(params), WRITE_MEMBERS)):
        for name in names:
            assert sig.members[name] == full.members[name], name
    assert ReadDMA(params).signature.members["m_axi"].signature.members.keys() == set(
        READ_MEMBERS)
    assert WriteDMA(params).signature.members["m_axi"].signature.members.keys() == set(
        WRITE_MEMBERS)


def test_connect_axi_elaborates():
    """Both engines join onto one full AXI4 port with every member driven exactly once."""
    from amaranth.back import rtlil

    params = DMAParams(**BASE)

    class Pair(wiring.Component):
        m_axi: wiring.Out(AXI4Signature(addr_width=32, data_width=64, id_width=4))

        def elaborate(self, platform):
            m = Module()
            m.submodules.rd = rd = ReadDMA(params)
            m.submodules.wr = wr = WriteDMA(params)
            connect_axi(m, self.m_axi, read=rd.m_axi, write=wr.m_axi)
            return m

    text = rtlil.convert(Pair())
    assert "m_axi__arvalid" in text and "m_axi__wstrb" in text


@pytest.mark.parametrize(("data_width", "max_burst"), [(32, 16), (64, 1), (128, 32), (32, 256)])
def test_burst_beats(data_width, max_burst):
    """min(max_burst, beats left, beats to the next 4 KiB boundary), against Python."""
    params = DMAParams(**{**BASE, "data_width": data_width, "max_burst": max_burst})
    nbytes = data_width // 8
    m = Module()
    addr = Signal(32)
    left = Signal(params.beats_width)
    beats, stmts = burst_beats(params, addr, left)
    m.d.comb += stmts
    rng = random.Random(3)
    cases = [(4096 - nbytes, 100), (0, 1), (8192, 1 << 20), (4096 - 2 * nbytes, 1)]
    cases += [(rng.randrange(0, 1 << 32, nbytes), rng.randint(1, 5000)) for _ in range(200)]

    async def bench(ctx):
        for a, n in cases:
            ctx.set(addr, a)
            ctx.set(left, n)
            want = min(max_burst, n, (4096 - a % 4096) // nbytes)
            assert ctx.get(beats) == want, (a, n)

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize(("width", "depth"), [(8, 2), (8, 3), (40, 5), (20, 32)])
def test_buffer_fifo_in_order_never_reads_an_entry_being_written(width, depth):
    # BufferFIFO marks its storage NO_RW_CHECK (block RAM returns undefined data for a read of
    # the address written in the same cycle): under random traffic, with the queue often
    # empty and often full, no enabled read ever meets a write of its address, the data
    # comes out in order, and the queue holds ``depth`` words at least.
    fifo = BufferFIFO(width=width, depth=depth)
    m = fifo.elaborate(None)
    lanes = [m.submodules[f"storage{i}"] for i in range(-(-width // BufferFIFO.LANE))]
    assert all(mem.attrs["no_rw_check"] for mem in lanes)
    assert sum(len(mem.read_ports[0].data) for mem in lanes) == width
    ports = [(mem.write_ports[0], mem.read_ports[0]) for mem in lanes]
    sim = Simulator(m)
    sim.add_clock(1e-8)
    rng = random.Random(depth)
    mask = (1 << width) - 1
    state = {"checked": 0, "out": [], "most": 0}

    async def bench(ctx):
        n = 0
        for cyc in range(1200):
            phase = (cyc // 100) % 2
            ctx.set(fifo.w_en, rng.random() < (0.9 if phase else 0.3))
            ctx.set(fifo.w_data, (n * 0x9E3779B1) & mask)
            ctx.set(fifo.r_en, rng.random() < (0.2 if phase else 0.9))
            for wp, rp in ports:
                both = ctx.get(wp.en) and ctx.get(rp.en)
                assert not (both and ctx.get(wp.addr) == ctx.get(rp.addr))
                state["checked"] += both
            if ctx.get(fifo.w_en) and ctx.get(fifo.w_rdy):
                n += 1
            if ctx.get(fifo.r_en) and ctx.get(fifo.r_rdy):
                state["out"].append(ctx.get(fifo.r_data))
            state["most"] = max(state["most"], n - len(state["out"]))
            await ctx.tick()

    sim.add_testbench(bench)
    sim.run()
    # Reads and writes in the same cycle, often.
    assert state["checked"] > 50
    assert state["out"] == [(i * 0x9E3779B1) & mask for i in range(len(state["out"]))]
    assert len(state["out"]) > 250
    assert state["most"] >= depth


def test_buffer_fifo_moves_a_word_per_cycle_three_cycles_after_its_write():
    # Written every cycle and read whenever ready: the first word can be read in the third
    # cycle after its write, and then one word every cycle (the read-ahead covers the two
    # read stages).
    fifo = BufferFIFO(width=36, depth=8)
    sim = Simulator(fifo)
    sim.add_clock(1e-8)
    got = []

    async def bench(ctx):
        ctx.set(fifo.r_en, 1)
        for cyc in range(40):
            ctx.set(fifo.w_en, cyc < 30)
            ctx.set(fifo.w_data, cyc)
            if ctx.get(fifo.r_rdy):
                got.append((cyc, ctx.get(fifo.r_data)))
            await ctx.tick()

    sim.add_testbench(bench)
    sim.run()
    assert got == [(c + 3, c) for c in range(30)]


def test_buffer_fifo_read_data_leaves_through_a_plain_register():
    # ``cgaccel synth --bram-outreg`` moves a register into the block RAM only when it loads
    # every cycle with no reset: the read register must stay reset-less and enable-less.
    from amaranth.back import rtlil
    text = rtlil.convert(BufferFIFO(width=20, depth=16))
    cells = [c.split("\n  end")[0] for c in text.split("  cell ")[1:]
             if "connect \\Q \\rdata\n" in c]
    assert len(cells) == 1 and cells[0].startswith("$dff ")     # not $sdff, $dffe, $adff
    d = cells[0].split("connect \\D ")[1].split()[0]
    # Its input: the read ports' data, with no reset or enable switch in front.
    proc = [p.split("\n  end")[0] for p in text.split("  process ")[1:]
            if f"assign {d} " in p]
    assert len(proc) == 1 and "switch" not in proc[0], proc
    sources = {line.split()[-2] for line in proc[0].splitlines()[1:]}
    assert sources - {"\\rdata"} and all(s.startswith("\\rp__data") for s in sources
                                            - {"\\rdata"}), sources
