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
    cfg = preset("small")
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


@pytest.mark.parametrize(("addr_width", "len_width", "data_width"),
                         [(32, 24, 128), (12, 16, 32), (16, 8, 64), (64, 32, 256)])
def test_command_checks_and_beats(addr_width, len_width, data_width):
    """The decode stage's checks and beat count against Python, at every boundary
    (length 0, 1, ``2**len_width`` and one more; a command ending at the top of the address
    space and one byte past it) and on random commands."""
    from amaranth.lib import stream

    from cgaccel.dma.common import DMAError, command_layout, decode_stage
    params = DMAParams(**{**BASE, "addr_width": addr_width, "len_width": len_width,
                          "data_width": data_width})
    nbytes, amax, lmax = data_width // 8, 1 << addr_width, 1 << len_width
    m = Module()
    cmd = stream.Signature(command_layout(addr_width, len_width)).flip().create()
    out, in_intake = decode_stage(m, params, cmd, Signal(init=1), Signal())
    top = amax - 1
    cases = [(0, 0), (5, 1), (0, lmax), (3, lmax), (0, lmax + 1), (7, 2 * lmax - 1),
             (amax - lmax, lmax), (amax - lmax + 1, lmax), (top, 1), (top, 2), (top - 10, 11),
             (top - 9, 10), (nbytes - 1, 1), (nbytes - 1, 2), (nbytes, nbytes)]
    rng = random.Random(addr_width)
    cases += [(rng.randrange(amax), rng.randrange(2 * lmax)) for _ in range(300)]
    cases += [(amax - rng.randrange(1, 3 * nbytes), rng.randrange(1, 4 * nbytes))
              for _ in range(100)]
    cases += [(rng.randrange(amax // 2), rng.randrange(1, min(lmax, amax // 2) + 1))
              for _ in range(150)]
    cases = [(a, n) for a, n in cases if 0 <= a < amax]
    checked = {"beats": 0, "bad": 0}

    async def bench(ctx):
        ctx.set(out.ready, 1)
        for a, n in cases:
            ctx.set(cmd.payload.addr, a)
            ctx.set(cmd.payload.length, n)
            ctx.set(cmd.valid, 1)
            await ctx.tick()
            ctx.set(cmd.valid, 0)
            # Through the intake slice, then the checks' register: out two cycles on.
            assert ctx.get(in_intake) and not ctx.get(out.valid), (a, n)
            await ctx.tick()
            assert ctx.get(out.valid) and not ctx.get(in_intake), (a, n)
            want = (DMAError.ZERO_LENGTH if n == 0 else DMAError.TOO_LONG if n > lmax
                    else DMAError.OUT_OF_RANGE if a + n > amax else DMAError.NONE)
            assert ctx.get(out.payload.bad) == want, (a, n)
            checked["bad"] += want != DMAError.NONE
            if want == DMAError.NONE:
                first = a // nbytes
                assert ctx.get(out.payload.beats) == (a + n - 1) // nbytes - first + 1, (a, n)
                assert ctx.get(out.payload.len_m1) == n - 1
                checked["beats"] += 1
            await ctx.tick()

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert checked["beats"] > 100 and checked["bad"] > 50


@pytest.mark.parametrize("depth", [2, 3, 5, 32])
def test_buffer_fifo_storage_never_reads_an_entry_being_written(depth):
    # BufferFIFO marks its storage NO_RW_CHECK (block RAM returns undefined data for a read of
    # the address written in the same cycle): under random traffic, with the queue often
    # empty and often full, no enabled read ever meets a write of its address, and the data
    # comes out in order.
    from cgaccel.dma.common import BufferFIFO
    fifo = BufferFIFO(width=8, depth=depth)
    m = fifo.elaborate(None)
    storage = m.submodules["storage"]
    assert storage.attrs["no_rw_check"]
    (wp,), (rp,) = storage.write_ports, storage.read_ports
    sim = Simulator(m)
    sim.add_clock(1e-8)
    rng = random.Random(depth)
    state = {"checked": 0, "out": []}

    async def bench(ctx):
        n = 0
        for _ in range(600):
            phase = (ctx.get(fifo.level) < depth // 2)
            ctx.set(fifo.w_en, rng.random() < (0.8 if phase else 0.3))
            ctx.set(fifo.w_data, n & 0xFF)
            ctx.set(fifo.r_en, rng.random() < (0.3 if phase else 0.8))
            both = ctx.get(wp.en) and ctx.get(rp.en)
            assert not (both and ctx.get(wp.addr) == ctx.get(rp.addr))
            state["checked"] += both
            if ctx.get(fifo.w_en) and ctx.get(fifo.w_rdy):
                n += 1
            if ctx.get(fifo.r_en) and ctx.get(fifo.r_rdy):
                state["out"].append(ctx.get(fifo.r_data))
            await ctx.tick()

    sim.add_testbench(bench)
    sim.run()
    # Reads and writes in the same cycle, often (depth 2 stores one entry: never both).
    assert state["checked"] > 50 or depth == 2
    assert state["out"] == [i & 0xFF for i in range(len(state["out"]))]
    assert len(state["out"]) > 150


@pytest.mark.parametrize("depth", [1, 2, 3, 5, 32])
def test_buffer_fifo_matches_sync_fifo_buffered(depth):
    # BufferFIFO keeps its inner flags as flip-flops: every port, in every cycle, is what
    # amaranth's SyncFIFOBuffered gives for the same traffic, with the queue often empty,
    # often full, and reads and writes in the same cycle.
    from amaranth.hdl import Module
    from amaranth.lib.fifo import SyncFIFOBuffered

    from cgaccel.dma.common import BufferFIFO
    m = Module()
    m.submodules.dut = dut = BufferFIFO(width=8, depth=depth)
    m.submodules.ref = ref = SyncFIFOBuffered(width=8, depth=depth)
    sim = Simulator(m)
    sim.add_clock(1e-8)
    rng = random.Random(100 + depth)
    seen = {"full": 0, "empty": 0, "both": 0, "out": 0}

    async def bench(ctx):
        for n in range(1200):
            phase = (n // (4 * depth + 12)) % 2
            w_en, r_en = rng.random() < (0.8, 0.3)[phase], rng.random() < (0.3, 0.8)[phase]
            for fifo in (dut, ref):
                ctx.set(fifo.w_en, w_en)
                ctx.set(fifo.w_data, n & 0xFF)
                ctx.set(fifo.r_en, r_en)
            for port in ("w_rdy", "r_rdy", "level"):
                assert ctx.get(getattr(dut, port)) == ctx.get(getattr(ref, port)), (n, port)
            if ctx.get(ref.r_rdy):
                assert ctx.get(dut.r_data) == ctx.get(ref.r_data), n
                seen["out"] += r_en
            seen["full"] += not ctx.get(ref.w_rdy)
            seen["empty"] += not ctx.get(ref.r_rdy)
            seen["both"] += w_en and r_en and ctx.get(ref.w_rdy) and ctx.get(ref.r_rdy)
            await ctx.tick()

    sim.add_testbench(bench)
    sim.run()
    if depth == 1:      # one register: never written and read in the same cycle
        del seen["both"]
    assert min(seen.values()) > 20, seen


@pytest.mark.parametrize("head_reg", [False, True])
@pytest.mark.parametrize("spare_slot", [False, True])
@pytest.mark.parametrize("depth", [1, 2, 4])
def test_small_fifo_matches_a_queue(depth, spare_slot, head_reg):
    # Every form behaves as one queue (the spare slot only changes which slot bits are
    # written when, the head register where the head is read from): level, ready flags and
    # every entry read, under random traffic that keeps the queue often empty and often
    # full, with reads and writes in the same cycle when full.
    from collections import deque

    from cgaccel.dma.common import SmallFIFO
    fifo = SmallFIFO(width=8, depth=depth, spare_slot=spare_slot, head_reg=head_reg)
    sim = Simulator(fifo)
    sim.add_clock(1e-8)
    rng = random.Random(depth * 2 + spare_slot + 8 * head_reg)
    stats = {"reads": 0, "full_both": 0}

    async def bench(ctx):
        model = deque()
        n = 0
        for cycle in range(800):
            fill = (cycle // 25) % 2 == 0     # write-heavy and read-heavy phases
            w_en = rng.random() < (0.9 if fill else 0.4)
            r_en = rng.random() < (0.5 if fill else 0.9)
            ctx.set(fifo.w_en, w_en)
            ctx.set(fifo.w_data, n & 0xFF)
            ctx.set(fifo.r_en, r_en)
            assert ctx.get(fifo.level) == len(model)
            assert ctx.get(fifo.r_rdy) == bool(model)
            assert ctx.get(fifo.w_rdy) == (len(model) < depth or r_en)
            do_r = r_en and bool(model)
            if model:
                assert ctx.get(fifo.r_data) == model[0]
                stats["reads"] += 1
                stats["full_both"] += w_en and len(model) == depth
            do_w = w_en and (len(model) < depth or r_en)
            if do_r:
                model.popleft()
            if do_w:
                model.append(n & 0xFF)
                n += 1
            await ctx.tick()

    sim.add_testbench(bench)
    sim.run()
    assert stats["reads"] > 250 and stats["full_both"] > 10


@pytest.mark.parametrize("depth", [3, 4, 7, 64])
def test_buffer_fifo_outreg_is_a_queue_a_cycle_later(depth):
    # With ``outreg`` the queue reads its storage through a second register: under random
    # traffic (often empty, often full, reads and writes in the same cycle) every entry
    # comes out once and in order, ``depth`` entries are held and ``w_rdy`` is low only then,
    # the storage itself never overflows, and ``r_rdy`` is high exactly when the head entry
    # was written at least three cycles before and the entry before it read at least one
    # cycle before (no bubble: one entry per cycle from a filled queue). Storage slices stay
    # within 16 bits.
    from collections import deque

    from cgaccel.dma.common import BufferFIFO
    fifo = BufferFIFO(width=40, depth=depth, outreg=True)
    m = fifo.elaborate(None)
    widths = [m.submodules[f"storage{k}"].shape for k in range(3)]
    assert widths == [16, 16, 8]
    with pytest.raises(AttributeError):
        m.submodules["storage3"]
    sim = Simulator(m)
    sim.add_clock(1e-8)
    rng = random.Random(7 * depth)
    seen = {"full": 0, "empty": 0, "both": 0, "out": 0, "fill": 0}

    async def bench(ctx):
        queue = deque()
        n = 0
        written_at = {}
        written_cyc = {}
        last_read = -1
        for cyc in range(1500):
            phase = (cyc // (4 * depth + 12)) % 2
            w_en, r_en = rng.random() < (0.8, 0.3)[phase], rng.random() < (0.3, 0.8)[phase]
            ctx.set(fifo.w_en, w_en)
            ctx.set(fifo.w_data, n * 0x1_0001_0001 & (2**40 - 1))
            ctx.set(fifo.r_en, r_en)
            level = ctx.get(fifo.level)
            assert level == len(queue), cyc
            assert ctx.get(fifo.w_rdy) == (level != depth), cyc
            assert ctx.get(fifo._inner_level) <= depth - 2
            ready = bool(queue) and cyc >= max(written_cyc[queue[0]] + 3, last_read + 1)
            assert ctx.get(fifo.r_rdy) == ready, cyc
            if ctx.get(fifo.r_rdy):
                value = ctx.get(fifo.r_data)
                assert value == queue[0] * 0x1_0001_0001 & (2**40 - 1), cyc
                if r_en:
                    last_read = cyc
                    k = queue.popleft()
                    seen["out"] += 1
                    if written_at[k] == "empty":
                        seen["fill"] += 1
            seen["empty"] += not ctx.get(fifo.r_rdy)
            seen["full"] += not ctx.get(fifo.w_rdy)
            seen["both"] += w_en and r_en and ctx.get(fifo.w_rdy) and ctx.get(fifo.r_rdy)
            if w_en and ctx.get(fifo.w_rdy):
                written_at[n] = "empty" if level == 0 else "busy"
                written_cyc[n] = cyc
                queue.append(n)
                n += 1
            await ctx.tick()
        assert min(seen.values()) > 20, seen

    sim.add_testbench(bench)
    sim.run()


def test_buffer_fifo_outreg_latency_and_throughput():
    # An entry written into the empty queue is readable three cycles after its write (one
    # more than without ``outreg``); a queue filled with entries gives one per cycle.
    from cgaccel.dma.common import BufferFIFO
    for outreg, first in ((False, 2), (True, 3)):
        fifo = BufferFIFO(width=8, depth=8, outreg=outreg)
        sim = Simulator(fifo)
        sim.add_clock(1e-8)
        got = {}

        async def bench(ctx, fifo=fifo, got=got):
            ctx.set(fifo.w_en, 1)
            ctx.set(fifo.w_data, 0x5A)
            await ctx.tick()
            ctx.set(fifo.w_en, 0)
            for cyc in range(1, 6):
                if ctx.get(fifo.r_rdy) and "first" not in got:
                    got["first"] = cyc
                    assert ctx.get(fifo.r_data) == 0x5A
                await ctx.tick()
            # Fill, then drain with r_en held: one entry per cycle, in order.
            ctx.set(fifo.r_en, 1)
            await ctx.tick()
            ctx.set(fifo.r_en, 0)
            for v in range(8):
                ctx.set(fifo.w_en, 1)
                ctx.set(fifo.w_data, v)
                await ctx.tick()
            ctx.set(fifo.w_en, 0)
            for _ in range(4):
                await ctx.tick()
            assert not ctx.get(fifo.w_rdy)
            ctx.set(fifo.r_en, 1)
            out = []
            for _ in range(8):
                assert ctx.get(fifo.r_rdy)
                out.append(ctx.get(fifo.r_data))
                await ctx.tick()
            assert out == list(range(8))
            assert not ctx.get(fifo.r_rdy)

        sim.add_testbench(bench)
        sim.run()
        assert got["first"] == first, (outreg, got)
