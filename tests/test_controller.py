# amaranth: UnusedElaboratable=no
"""Controller unit tests: the DMA engines are modelled in the testbench, the engine is real."""

import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.sim import Simulator

from cgaccel.commands import Command, Op, encode
from cgaccel.config import AccelConfig
from cgaccel.controller import Controller
from cgaccel.engine.engine import Engine
from cgaccel.engine.geometry import Target
from cgaccel.regs import ERRORS

CFG = AccelConfig(rows=2, cols=2, max_channels=16, max_kernel=3, max_dim=16, act_depth=256,
                  weight_depth=256, out_depth=256, psum_slots=8, max_groups=2)


class Harness(wiring.Component):
    """Controller wired to a real engine; DMA ports left to the testbench."""

    def __init__(self, config):
        self.ctl = Controller(config)
        self.engine = Engine(config)
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        m.submodules.ctl = ctl = self.ctl
        m.submodules.engine = eng = self.engine
        wiring.connect(m, ctl.eng_wr, eng.i_wr)
        wiring.connect(m, ctl.eng_cmd, eng.i_cmd)
        wiring.connect(m, eng.o_done, ctl.eng_done)
        wiring.connect(m, ctl.eng_rd, eng.i_rd)
        wiring.connect(m, eng.o_rd, ctl.eng_rd_data)
        m.d.comb += ctl.eng_busy.eq(eng.busy)
        return m


async def _handshake(ctx, valid, *fields):
    """Wait for ``valid`` (ready is already high), return ``fields`` as transferred.

    A plain loop rather than ``tick().until()``: these models run in the background and are
    left suspended when the simulation ends.
    """
    while not ctx.get(valid):
        await ctx.tick()
    values = [ctx.get(f) for f in fields]
    await ctx.tick()
    return values


async def _offer(ctx, valid, ready):
    """Hold ``valid`` (payload already set) until the transfer happens."""
    ctx.set(valid, 1)
    while not ctx.get(ready):
        await ctx.tick()
    await ctx.tick()


def simulate(mem, *, cmd_addr, cmd_len, y_addr=0, y_len=0, rd_fail_at=None, reset_after=None,
             max_cycles=20000, config=CFG, writes=None, rd_reqs=None, wr_pause=None):
    """Run one layer; return (error_code, done, finished pulses, memory).

    With a list ``writes``, append every engine buffer write to it as cmdsim's
    ``(target, col, bcast, bank, addr, data)``; with a list ``rd_reqs``, every write-back
    read request ``(col, addr)``, ``("row", addr)`` for a row read or ``("word", col, addr)``
    for a word read. With a seed
    ``wr_pause``, the write DMA model drops its ``ready``s at random (backpressure).
    """
    import random
    rng = random.Random(wr_pause)

    def pause():
        return wr_pause is not None and rng.random() < 0.5
    dut = Harness(config)
    ctl = dut.ctl
    beat = config.axi_bytes
    out = {"finished": 0}
    reads = []

    async def read_dma(ctx):
        served = 0
        while True:
            ctx.set(ctl.rd_cmd.ready, 1)
            addr, length = await _handshake(ctx, ctl.rd_cmd.valid, ctl.rd_cmd.payload.addr,
                                            ctl.rd_cmd.payload.length)
            ctx.set(ctl.rd_cmd.ready, 0)
            reads.append((addr, length))
            if rd_fail_at is not None and served == rd_fail_at:
                ctx.set(ctl.rd_error, 1)
                ctx.set(ctl.dma_busy, 1)
                while not ctx.get(ctl.dma_abort):
                    await ctx.tick()
                ctx.set(ctl.rd_error, 0)
                ctx.set(ctl.dma_busy, 0)
                return
            served += 1
            data = bytes(mem[addr:addr + length])
            for i in range(0, length, beat):
                chunk = data[i:i + beat]
                ctx.set(ctl.rd_data.payload.data, int.from_bytes(chunk, "little"))
                ctx.set(ctl.rd_data.payload.count, len(chunk))
                ctx.set(ctl.rd_data.payload.last, i + beat >= length)
                await _offer(ctx, ctl.rd_data.valid, ctl.rd_data.ready)
            ctx.set(ctl.rd_data.valid, 0)

    async def write_dma(ctx):
        while True:
            while pause():
                await ctx.tick()
            ctx.set(ctl.wr_cmd.ready, 1)
            addr, length = await _handshake(ctx, ctl.wr_cmd.valid, ctl.wr_cmd.payload.addr,
                                            ctl.wr_cmd.payload.length)
            ctx.set(ctl.wr_cmd.ready, 0)
            got = b""
            while len(got) < length:
                ctx.set(ctl.wr_data.ready, 0)
                while pause():
                    await ctx.tick()
                ctx.set(ctl.wr_data.ready, 1)
                word, = await _handshake(ctx, ctl.wr_data.valid, ctl.wr_data.payload.data)
                word = word.to_bytes(beat, "little")
                got += word[:min(beat, length - len(got))]
            ctx.set(ctl.wr_data.ready, 0)
            mem[addr:addr + length] = got
            ctx.set(ctl.wr_done, 1)
            await ctx.tick()
            ctx.set(ctl.wr_done, 0)

    async def host(ctx):
        ctx.set(ctl.cmd_addr, cmd_addr)
        ctx.set(ctl.cmd_len, cmd_len)
        ctx.set(ctl.y_addr, y_addr)
        ctx.set(ctl.y_len, y_len)
        ctx.set(ctl.start, 1)
        await ctx.tick()
        ctx.set(ctl.start, 0)
        for cycle in range(max_cycles):
            if reset_after is not None and cycle == reset_after:
                ctx.set(ctl.soft_reset, 1)
                await ctx.tick()
                ctx.set(ctl.soft_reset, 0)
            if ctx.get(ctl.finished):
                out["finished"] += 1
            if not ctx.get(ctl.busy) and cycle > 2:
                break
            await ctx.tick()
        else:
            raise AssertionError("controller never finished")
        await ctx.tick().repeat(3)
        out["error"] = ctx.get(ctl.error_code)
        out["done"] = ctx.get(ctl.done)

    async def monitor(ctx):
        p = ctl.eng_wr.payload
        async for _, _, valid, ready, *fields in ctx.tick().sample(
                ctl.eng_wr.valid, ctl.eng_wr.ready, p.target, p.col, p.bcast, p.bank, p.addr,
                p.data):
            if valid and ready:
                writes.append(tuple(int(f) for f in fields))

    async def rd_monitor(ctx):
        p = ctl.eng_rd.payload
        async for _, _, valid, ready, col, addr, row, word in ctx.tick().sample(
                ctl.eng_rd.valid, ctl.eng_rd.ready, p.col, p.addr, p.row, p.word):
            if valid and ready:
                rd_reqs.append(("row", int(addr)) if row else
                               ("word", int(col), int(addr)) if word else
                               (int(col), int(addr)))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    if writes is not None:
        sim.add_testbench(monitor, background=True)
    if rd_reqs is not None:
        sim.add_testbench(rd_monitor, background=True)
    sim.add_testbench(read_dma, background=True)
    sim.add_testbench(write_dma, background=True)
    sim.add_testbench(host)
    sim.run()
    return out, reads


def program(*cmds):
    return b"".join(encode(c) for c in cmds)


def test_misaligned_list_is_refused_without_touching_dram():
    mem = bytearray(4096)
    out, reads = simulate(mem, cmd_addr=0x104, cmd_len=32)
    assert out["error"] == ERRORS["misaligned"] and out["done"] == 1
    assert reads == []


def test_unknown_opcode():
    mem = bytearray(4096)
    mem[0:32] = program(Command(op=9))
    out, _ = simulate(mem, cmd_addr=0, cmd_len=32)
    assert out["error"] == ERRORS["command"]


def test_list_without_end():
    mem = bytearray(4096)
    mem[0:64] = program(Command(op=Op.LOAD, outer=0), Command(op=Op.LOAD, outer=0))
    out, reads = simulate(mem, cmd_addr=0, cmd_len=64)
    assert out["error"] == ERRORS["command"]
    assert [a for a, _ in reads] == [0, 32]


def test_end_only_finishes_cleanly():
    mem = bytearray(4096)
    mem[0x200:0x220] = program(Command(op=Op.END))
    out, _ = simulate(mem, cmd_addr=0x200, cmd_len=32)
    assert out == {"finished": 1, "error": 0, "done": 1}


@pytest.mark.parametrize("dram, window, outer, stride", [
    (0x7F0, (0x800, 0x100), 1, 0), (0x8F8, (0x800, 0x100), 1, 0),
    # The last of 5 transfers (0x800 + 4*0x3D = 0x8F4, 16 bytes) ends past the window.
    (0x800, (0x800, 0x100), 5, 0x3D),
    # Span of 2**32 + 0x800: only a 64-bit product catches it.
    (0x800, (0x800, 0x100), 3, (1 << 31) + 0x400),
    # Span 3 * 0x55555655 = 2**32 + 0x2FF, past the 32-bit address space by the carry of the
    # last addition: its low 32 bits would end inside the window.
    (0x800, (0x800, 0x1000), 4, 0x55555655),
    # Past the 32-bit address space: in a window reaching there, in a window lying there, and
    # below such a window.
    ((1 << 32) + 0x800, (0x800, 0xFFFFF000), 1, 0),
    ((1 << 32) + 0x800, ((1 << 32) + 0x800, 0x100), 1, 0),
    (0x800, (1 << 32, 0x1000), 1, 0)])
def test_store_outside_window_is_refused(dram, window, outer, stride):
    mem = bytearray(4096)
    mem[0:64] = program(Command(op=Op.STORE, chan=1, inner=16, outer=outer, dram=dram,
                                dram_stride=stride), Command(op=Op.END))
    before = bytes(mem)
    out, _ = simulate(mem, cmd_addr=0, cmd_len=64, y_addr=window[0], y_len=window[1])
    assert out["error"] == ERRORS["out_of_range"]
    assert bytes(mem) == before


@pytest.mark.parametrize("inner, refused", [(12, False), (13, True)])
def test_store_ending_at_the_window_end(inner, refused):
    # The last of 5 transfers starts at 0x800 + 4*0x3D = 0x8F4: 12 bytes end exactly at the
    # window's end, 13 one byte past it (the end as ``dram + inner`` plus the strides summed
    # during the check).
    mem = bytearray(4096)
    mem[0:64] = program(Command(op=Op.STORE, chan=1, inner=inner, outer=5, dram=0x800,
                                dram_stride=0x3D), Command(op=Op.END))
    out, _ = simulate(mem, cmd_addr=0, cmd_len=64, y_addr=0x800, y_len=0x100)
    assert out["error"] == (ERRORS["out_of_range"] if refused else 0)


@pytest.mark.parametrize("outer", [2, 5])
def test_store_inside_window_writes_only_its_bytes(outer):
    mem = bytearray(4096)
    mem[0:64] = program(Command(op=Op.STORE, chan=1, inner=5, outer=outer, dram=0x803,
                                dram_stride=7), Command(op=Op.END))
    mem[0x800:0x900] = b"\xAA" * 0x100
    out, _ = simulate(mem, cmd_addr=0, cmd_len=64, y_addr=0x800, y_len=0x100)
    assert out["error"] == 0
    # Output banks are zero after reset: 5 bytes every 7 from 0x803 are written, nothing else.
    expect = bytearray(b"\xAA" * 0x100)
    for n in range(outer):
        expect[3 + 7 * n:8 + 7 * n] = bytes(5)
    assert bytes(mem[0x800:0x900]) == bytes(expect)


def test_dram_read_error_stops_with_code():
    mem = bytearray(4096)
    mem[0:64] = program(Command(op=Op.END), Command(op=Op.END))
    out, _ = simulate(mem, cmd_addr=0, cmd_len=64, rd_fail_at=0)
    assert out["error"] == ERRORS["dram_read"] and out["done"] == 1


def test_soft_reset_returns_to_idle_with_clear_status():
    mem = bytearray(8192)
    # A long load keeps the controller busy when the reset arrives.
    mem[0:64] = program(Command(op=Op.LOAD, target=0, bcast=1, item_log2=1, inner=200,
                                outer=4, dram=0x1000, dram_stride=400), Command(op=Op.END))
    out, _ = simulate(mem, cmd_addr=0, cmd_len=64, reset_after=30)
    assert out["finished"] == 0 and out["error"] == 0 and out["done"] == 0


def _cmdsim_writes(config, mem, n_bytes):
    from cgaccel.cmdsim import Memory, execute
    trace = execute(config, Memory([(0, bytes(mem))]), 0, n_bytes, 0, 0)
    return [tuple(int(f) for f in ev[1]) for ev in trace.events if ev[0] == "write"]


def test_deal_load_writes_items_to_columns():
    """deal: item m of iteration n goes to column (m - n) % cols at buf_addr + n * buf_stride +
    m // cols (rotated a column per iteration); the engine writes are cmdsim's."""
    cfg = CFG.with_overrides(cols=3)
    mem = bytearray(range(256)) * 32
    cmds = [Command(op=Op.LOAD, target=3, deal=1, bank=1, item_log2=2, buf_addr=1,
                    buf_stride=1, inner=7, outer=1, dram=0x1004),
            # Four transfers of 5 CFG items, 3 columns: each starts a column lower (0, 2, 1,
            # 0), the row steps every 3 items.
            Command(op=Op.LOAD, target=6, deal=1, item_log2=0, buf_addr=4, buf_stride=3,
                    inner=5, outer=4, dram=0x1101, dram_stride=0x20),
            Command(op=Op.END)]
    mem[0:96] = program(*cmds)
    writes = []
    out, reads = simulate(mem, cmd_addr=0, cmd_len=96, config=cfg, writes=writes)
    assert out["error"] == 0 and out["done"] == 1
    # One DMA read per transfer besides the command fetches.
    assert reads == [(0, 32), (0x1004, 28), (32, 32), (0x1101, 5), (0x1121, 5), (0x1141, 5),
                     (0x1161, 5), (64, 32)]
    expect = _cmdsim_writes(cfg, mem, 96)
    assert [(t, c, a) for t, c, _, _, a, _ in expect] == (
        [(3, n % 3, 1 + n // 3) for n in range(7)]
        + [(6, (m - n) % 3, 4 + 3 * n + m // 3) for n in range(4) for m in range(5)])
    assert writes == expect


@pytest.mark.parametrize("wr_pause", [None, 5])
def test_deal_store_reads_bytes_from_columns(wr_pause):
    """STORE deal: byte m of iteration n from column (m - n) % cols at buf_addr + n *
    buf_stride + m // cols (col ignored); the read requests are cmdsim's, one DMA write per
    iteration; 3 columns do not divide the beat (byte reads); under write DMA backpressure.
    """
    from cgaccel.cmdsim import Memory, execute
    cfg = CFG.with_overrides(cols=3)
    mem = bytearray(4096)
    mem[0:64] = program(Command(op=Op.STORE, deal=1, col=5, buf_addr=2, buf_stride=6, inner=5,
                                outer=4, dram=0x803, dram_stride=0x10), Command(op=Op.END))
    trace = execute(cfg, Memory([(0, bytes(mem))]), 0, 64, 0x800, 0x100)
    expect = [ev[1] for ev in trace.events if ev[0] == "read"]
    assert expect == [((m - n) % 3, 2 + 6 * n + m // 3) for n in range(4) for m in range(5)]
    rd_reqs = []
    out, _ = simulate(mem, cmd_addr=0, cmd_len=64, y_addr=0x800, y_len=0x100, config=cfg,
                      rd_reqs=rd_reqs, wr_pause=wr_pause)
    assert out["error"] == 0 and out["done"] == 1
    assert rd_reqs == expect


@pytest.mark.parametrize("cols,inner,wr_pause", [
    (2, 7, None), (2, 7, 1), (4, 13, 2), (4, 8, None), (8, 21, 3), (8, 3, 4)])
def test_deal_store_reads_rows(cols, inner, wr_pause):
    """STORE deal with ``cols`` dividing the beat (8 bytes): one row read (every column at
    buf_addr + n * buf_stride + r) per ``cols`` bytes, the last row of an iteration shorter
    when ``inner`` is not a multiple of ``cols``; misaligned DRAM addresses; under write DMA
    backpressure; five iterations, so the rotation (a column per iteration) wraps. The bytes
    a dealt OUT LOAD put in the columns come back unchanged, the window's other bytes
    untouched, and the requests are the rows of cmdsim's reads."""
    from cgaccel.cmdsim import Memory, execute
    cfg = CFG.with_overrides(cols=cols)
    outer, stride = 5, -(-inner // cols) + 1
    mem = bytearray(8192)
    src = bytes((7 * i + 3) & 0xFF for i in range(outer * 0x20))
    mem[0x1005:0x1005 + len(src)] = src
    mem[0:96] = program(
        Command(op=Op.LOAD, target=7, deal=1, buf_addr=2, buf_stride=stride, inner=inner,
                outer=outer, dram=0x1005, dram_stride=0x20),
        Command(op=Op.STORE, deal=1, col=1, buf_addr=2, buf_stride=stride, inner=inner,
                outer=outer, dram=0x803, dram_stride=inner + 6),
        Command(op=Op.END))
    trace = execute(cfg, Memory([(0, bytes(mem))]), 0, 96, 0x800, 0x100)
    rows = -(-inner // cols)
    assert trace.store_requests == outer * rows
    byte_reads = [ev[1] for ev in trace.events if ev[0] == "read"]
    assert byte_reads == [((m - n) % cols, 2 + stride * n + m // cols)
                          for n in range(outer) for m in range(inner)]
    rd_reqs, writes = [], []
    out, _ = simulate(mem, cmd_addr=0, cmd_len=96, y_addr=0x800, y_len=0x100, config=cfg,
                      rd_reqs=rd_reqs, wr_pause=wr_pause, writes=writes)
    assert out["error"] == 0 and out["done"] == 1
    # The LOAD's items went where cmdsim puts them (item m of iteration n: column (m - n) %
    # cols), so the round trip checks the STORE's rotation of each row.
    assert writes == [tuple(int(f) for f in ev[1]) for ev in trace.events if ev[0] == "write"]
    assert rd_reqs == [("row", 2 + stride * n + r) for n in range(outer) for r in range(rows)]
    expect = bytearray(0x100)
    for n in range(outer):
        at = 3 + n * (inner + 6)
        expect[at:at + inner] = src[n * 0x20:n * 0x20 + inner]
    assert bytes(mem[0x800:0x900]) == bytes(expect)


@pytest.mark.parametrize("chan,buf_addr,stride,inner,outer,dram,wr_pause,word,cols", [
    (1, 0, 12, 12, 4, 0x803, None, 4, 2),   # word-aligned, inner a multiple of W
    (1, 4, 8, 7, 5, 0x801, 1, 4, 2),        # inner not a multiple of W, backpressure
    (0, 8, 4, 3, 3, 0x805, 2, 4, 2),        # plain: one column, short iterations
    (1, 2, 8, 6, 3, 0x800, 3, 4, 2),        # unaligned base: byte reads
    (1, 4, 6, 6, 4, 0x807, 4, 4, 2),        # unaligned stride: byte reads
    (1, 0, 16, 13, 4, 0x802, 5, 8, 2),      # W = 8 (a whole beat), backpressure
    (1, 0, 8, 8, 3, 0x804, None, 1, 2),     # W = 1: byte reads
    (1, 0, 12, 10, 5, 0x806, 6, 4, 1),      # one column (o_rd W bytes wide)
    (1, 8, 12, 11, 9, 0x801, 7, 4, 8),      # eight columns (o_rd wider than a word)
])
def test_store_reads_words(chan, buf_addr, stride, inner, outer, dram, wr_pause, word, cols):
    """A channel-split (or plain) STORE whose ``buf_addr`` and ``buf_stride`` are multiples
    of ``out_word`` reads one output-bank word (``min(W, inner - idx)`` bytes) per request,
    else byte by byte; misaligned DRAM addresses, write DMA backpressure. The bytes an OUT
    LOAD of the same shape put in the banks come back unchanged, the window's other bytes
    untouched, the request count is cmdsim's and the requests are its reads grouped."""
    from cgaccel.cmdsim import Memory, execute
    cfg = CFG.with_overrides(out_word=word, cols=cols)
    mem = bytearray(8192)
    src = bytes((5 * i + 11) & 0xFF for i in range(outer * 0x20))
    mem[0x1003:0x1003 + len(src)] = src
    mem[0:96] = program(
        Command(op=Op.LOAD, target=7, chan=chan, col=1, buf_addr=buf_addr, buf_stride=stride,
                inner=inner, outer=outer, dram=0x1003, dram_stride=0x20),
        Command(op=Op.STORE, chan=chan, col=1, buf_addr=buf_addr, buf_stride=stride,
                inner=inner, outer=outer, dram=dram, dram_stride=inner + 5),
        Command(op=Op.END))
    trace = execute(cfg, Memory([(0, bytes(mem))]), 0, 96, 0x800, 0x100)
    aligned = word > 1 and buf_addr % word == 0 and stride % word == 0
    step = word if aligned else 1
    assert trace.store_requests == outer * -(-inner // step)
    byte_reads = [ev[1] for ev in trace.events if ev[0] == "read"]
    expect_reqs = []
    for n in range(outer):
        its = byte_reads[n * inner:(n + 1) * inner]
        expect_reqs += [("word", c, a) if aligned else (c, a) for c, a in its[::step]]
    rd_reqs = []
    out, _ = simulate(mem, cmd_addr=0, cmd_len=96, y_addr=0x800, y_len=0x100, config=cfg,
                      rd_reqs=rd_reqs, wr_pause=wr_pause)
    assert out["error"] == 0 and out["done"] == 1
    assert rd_reqs == expect_reqs
    expect = bytearray(0x100)
    for n in range(outer):
        at = dram - 0x800 + n * (inner + 5)
        expect[at:at + inner] = src[n * 0x20:n * 0x20 + inner]
    assert bytes(mem[0x800:0x900]) == bytes(expect)


@pytest.mark.parametrize("cmd", [
    Command(op=Op.LOAD, target=3, deal=1, chan=1, inner=4, outer=1, dram=0x1000),
    Command(op=Op.LOAD, target=3, deal=1, bcast=1, inner=4, outer=1, dram=0x1000),
    Command(op=Op.LOAD, target=1, deal=1, item_log2=1, inner=4, outer=1, dram=0x1000),
    Command(op=Op.LOAD, target=0, deal=1, item_log2=1, inner=4, outer=0, dram=0x1000),
    Command(op=Op.LOAD, target=3, chan=1, bcast=1, inner=4, outer=1, dram=0x1000),
    Command(op=Op.STORE, deal=1, chan=1, inner=4, outer=1, dram=0x800),
    Command(op=Op.STORE, deal=1, target=7, inner=4, outer=0, dram=0x800),
], ids=["deal_chan", "deal_bcast", "deal_wgt", "deal_act_empty", "chan_bcast", "store_deal_chan",
        "store_deal_target_empty"])
def test_refused_mode_combinations(cmd):
    """Refused at decode, even with nothing to move, as cmdsim refuses them."""
    from cgaccel.cmdsim import CommandError
    mem = bytearray(8192)
    mem[0:64] = program(cmd, Command(op=Op.END))
    with pytest.raises(CommandError) as info:
        _cmdsim_writes(CFG, mem, 64)
    assert info.value.name == "command"
    writes = []
    out, reads = simulate(mem, cmd_addr=0, cmd_len=64, y_addr=0x800, y_len=0x100,
                          writes=writes)
    assert out["error"] == ERRORS["command"] and out["done"] == 1
    assert reads == [(0, 32)] and writes == []


def test_axi_too_narrow_for_buffer_items():
    with pytest.raises(ValueError, match=r"^AXI data width must be at least the widest buffer "
                                         r"item \(64 bits for this array\), not 32$"):
        Controller(CFG.with_overrides(max_channels=128, axi_data_width=32))


def _run_compiled(cfg_vectors_seed):
    from cgaccel.driver import compile_layer
    from cgaccel.model.vectors import make_vectors
    shape, groups, density, kw = cfg_vectors_seed
    kw = dict(kw)
    split = kw.pop("split", "channel")
    wr_pause = kw.pop("wr_pause", None)
    cfg = CFG.with_overrides(**kw.pop("config", {}))
    vec = make_vectors(shape, groups, density, seed=3, **kw)
    comp = compile_layer(cfg, vec, base_addr=0x1000, split=split)
    mem = bytearray(comp.end_addr + 4096)
    for addr, blob in comp.image():
        mem[addr:addr + len(blob)] = blob
    out, _ = simulate(mem, cmd_addr=comp.cmd_addr, cmd_len=comp.cmd_len, y_addr=comp.y_addr,
                      y_len=comp.y_len, max_cycles=200000, config=cfg, wr_pause=wr_pause)
    assert out["error"] == 0 and out["done"] == 1
    y = comp.decode_y(bytes(mem[comp.y_addr:comp.y_addr + comp.y_len]))
    return y, vec["y"]


@pytest.mark.parametrize("case", [
    ("g2_res_relu", (4, 5, 6, 4, 3, 3, 1, 1), 2, 0.4, dict(residual=True, relu=True)),
    ("dense_s2", (3, 7, 7, 5, 3, 3, 2, 1), 1, 0.0, {}),
    # Pixel split: broadcast weights, one residual preload and one STORE per column.
    ("pixel_g2_res", (4, 5, 6, 5, 3, 3, 1, 1), 1, 0.0, dict(residual=True, split="pixel")),
    # Dealt pixels: one dealt residual LOAD and one dealt STORE per tile; 3 columns on rows
    # of 2 outputs, P = 10 not a multiple of 3.
    ("deal_1x1_g2_res", (4, 5, 2, 4, 1, 1, 1, 0), 2, 0.5,
     dict(residual=True, split="deal", config=dict(cols=3))),
    ("deal_3x3_g2_res_relu", (4, 5, 6, 6, 3, 3, 1, 1), 2, 0.4,
     dict(residual=True, relu=True, split="deal")),
    # Dealt STOREs read rows of 4 columns (two a beat); P = 35 per channel, write DMA
    # backpressure.
    ("deal_1x1_g2_rows4_pause", (4, 5, 7, 6, 1, 1, 1, 0), 2, 0.5,
     dict(residual=True, split="deal", wr_pause=5, config=dict(cols=4))),
    # Strided 1x1: the activations are gathered (every other row and column).
    ("gather_1x1_s2", (6, 7, 8, 4, 1, 1, 2, 0), 2, 0.5, dict(relu=True)),
    # Several activation/weight words per engine write (one 64-bit beat: 4 words of 2 lanes,
    # 2 of 4), odd transfer lengths leaving one or three words for the last write.
    ("lanes4_g2_res", (4, 5, 7, 4, 3, 3, 1, 1), 2, 0.4,
     dict(residual=True, config=dict(load_lanes=4))),
    ("lanes2_rows4_s2", (5, 7, 7, 6, 3, 3, 2, 1), 1, 0.0,
     dict(relu=True, config=dict(rows=4, load_lanes=2))),
], ids=lambda c: c[0])
def test_controller_runs_a_compiled_layer_bit_exact(case):
    import numpy as np

    from cgaccel.model.resnet18 import LayerShape
    name, dims, groups, density, kw = case
    y, expect = _run_compiled((LayerShape(name, *dims), groups, density, kw))
    np.testing.assert_array_equal(y, expect)


@pytest.mark.parametrize("cols", [2, 3])
def test_store_right_after_an_output_load_reads_the_loaded_bytes(cols):
    """LOAD to the output bank (a residual preload), then at once a STORE of the same
    addresses: the STORE's reads must see every loaded byte (the engine holds a read while an
    output-bank write is still on its way to the column)."""
    cfg = CFG.with_overrides(cols=cols)
    mem = bytearray(4096)
    mem[0x1000:0x1040] = bytes((7 * i + 3) & 0xFF for i in range(0x40))
    mem[0:128] = program(
        Command(op=Op.LOAD, target=Target.OUT, deal=1, buf_addr=4, buf_stride=5, inner=6,
                outer=2, dram=0x1000, dram_stride=16),
        Command(op=Op.STORE, deal=1, buf_addr=4, buf_stride=5, inner=6, outer=2, dram=0x800,
                dram_stride=16),
        Command(op=Op.END))
    out, _ = simulate(mem, cmd_addr=0, cmd_len=96, y_addr=0x800, y_len=0x100, config=cfg)
    assert out["error"] == 0 and out["done"] == 1
    for n in range(2):
        assert bytes(mem[0x800 + 16 * n:0x806 + 16 * n]) == bytes(mem[0x1000 + 16 * n:
                                                                       0x1006 + 16 * n])
