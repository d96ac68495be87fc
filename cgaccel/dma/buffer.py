"""The DMA engines' beat buffer: a block-RAM queue whose reads leave through a plain register."""

from amaranth.hdl import Array, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..config import _check_int
from ..rtl import LOCAL_COPY, NO_RW_CHECK

__all__ = ["BufferFIFO"]


class BufferFIFO(wiring.Component):
    """First-word-fall-through queue of ``depth`` words in block RAM, for the DMA data beats.

    A block RAM's read data leaves it 5.8 ns after the clock on an ECP5 (speed grade 6)
    unless it goes through the block's own output register (0.9 ns): no logic may sit
    between the two, so a read into fabric logic cannot reach 150 MHz
    (``docs/synth.md``, "Read/write collision logic, and a block RAM's output register").
    Here every read goes into a register that loads every cycle and has no reset
    (``cgaccel synth --bram-outreg`` moves it into the block RAM), and the storage is split
    into memories of at most :attr:`LANE` bits, each one DP16KD in a true dual-port mode
    (the 36-bit mode, which a wider memory takes, has no separate output register per port).
    A read is issued ahead, into a small queue of flip-flops (:attr:`AHEAD` words, reads in
    flight included), as long as it has room; ``r_data`` is the queue's head, or the read
    register itself while the queue is empty. So words move one per cycle, and a word written
    in cycle ``t`` can be read in cycle ``t + 3``.

    Ports as :class:`amaranth.lib.fifo.SyncFIFO`: ``w_data``, ``w_en``, ``w_rdy``, ``r_data``,
    ``r_en``, ``r_rdy``. ``w_rdy`` depends only on registers. The storage is read only while
    it holds the entry read, and written only while it has room, so a read never meets a
    write of its address: it is marked ``NO_RW_CHECK`` (no collision logic).

    Parameters
    ----------
    width : int
    depth : int
        Words of block RAM (2 or more); the queue holds up to ``depth + AHEAD`` words.
    """

    #: Bits per block-RAM lane (an ECP5 DP16KD's 18-bit mode; an iCE40 SB_RAM40_4K's 16).
    LANE = 16
    #: Words read ahead of the consumer: the flip-flop queue and the two read stages.
    AHEAD = 4

    def __init__(self, *, width, depth):
        _check_int("FIFO width", width, 1)
        _check_int("FIFO depth", depth, 2)
        self._width = width
        self._depth = depth
        super().__init__({
            "w_data": In(width), "w_en": In(1), "w_rdy": Out(1),
            "r_data": Out(width), "r_en": In(1), "r_rdy": Out(1),
        })

    @property
    def width(self):
        return self._width

    @property
    def depth(self):
        return self._depth

    def elaborate(self, platform):
        m = Module()
        width, depth, ahead = self._width, self._depth, self.AHEAD

        wr = Signal(range(depth))
        rd = Signal(range(depth))
        stored = Signal(range(depth + 1))      # words in block RAM not yet read out
        full = Signal()
        do_w = Signal()
        issue = Signal()
        m.d.comb += [
            self.w_rdy.eq(~full),
            do_w.eq(self.w_en & ~full),
        ]

        # One memory per lane, every read straight into ``rdata`` (reset-less, no enable).
        rdata = Signal(width, reset_less=True)
        for i, lo in enumerate(range(0, width, self.LANE)):
            hi = min(lo + self.LANE, width)
            mem = Memory(shape=hi - lo, depth=depth, init=[],
                         attrs={**NO_RW_CHECK, "ram_style": "block"})
            m.submodules[f"storage{i}"] = mem
            wp = mem.write_port()
            rp = mem.read_port(transparent_for=())
            m.d.comb += [
                wp.addr.eq(wr), wp.data.eq(self.w_data[lo:hi]), wp.en.eq(do_w),
                rp.addr.eq(rd), rp.en.eq(issue),
            ]
            m.d.sync += rdata[lo:hi].eq(rp.data)

        # ``q``: a ring of words out of ``rdata``. Every word is written into it as it arrives
        # (enables from registers only); the consumer reads the oldest one not taken, or
        # ``rdata`` itself when that is the word (``count == 0``).
        q = [Signal(width, name=f"q{i}", reset_less=True) for i in range(ahead)]
        q_wr = Signal(range(ahead))
        q_rd = Signal(range(ahead))
        count = Signal(range(ahead + 1))        # words in ``q`` not taken, ``rdata``'s not
        v1 = Signal()       # a read was issued last cycle: the block RAM's data is valid
        v2 = Signal()       # ``rdata`` holds a word
        # Words issued and not yet taken fit in ``q`` whatever the consumer does.
        m.d.comb += issue.eq((stored != 0) & (count + v1 + v2 < ahead))
        m.d.sync += [v1.eq(issue), v2.eq(v1)]

        with m.If(do_w):
            m.d.sync += wr.eq(Mux(wr == depth - 1, 0, wr + 1))
        with m.If(issue):
            m.d.sync += rd.eq(Mux(rd == depth - 1, 0, rd + 1))
        m.d.sync += stored.eq(stored + do_w - issue)
        with m.If(do_w & ~issue):
            m.d.sync += full.eq(stored == depth - 1)
        with m.Elif(issue & ~do_w):
            m.d.sync += full.eq(0)

        take = Signal()
        m.d.comb += [
            self.r_rdy.eq((count != 0) | v2),
            self.r_data.eq(Mux(count == 0, rdata, Array(q)[q_rd])),
            take.eq(self.r_en & self.r_rdy),
        ]
        # Which entry ``rdata`` goes to, decoded a cycle early into one flip-flop per entry
        # and lane: a single enable net fanning out to every bit of the ring was the block's
        # critical path (one LUT, 11.5 ns of routing).
        lanes = range(0, width, self.LANE)
        for i in range(ahead):
            for lo in lanes:
                we = Signal(name=f"q{i}_we{lo // self.LANE}", attrs=LOCAL_COPY)
                m.d.sync += we.eq(v1 & ((q_wr + v2)[:len(q_wr)] == i))
                with m.If(we):
                    m.d.sync += q[i][lo:lo + self.LANE].eq(rdata[lo:lo + self.LANE])
        with m.If(v2):
            m.d.sync += q_wr.eq(q_wr + 1)
        with m.If(take):
            m.d.sync += q_rd.eq(q_rd + 1)
        m.d.sync += count.eq(count + v2 - take)
        return m
