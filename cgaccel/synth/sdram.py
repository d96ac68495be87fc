"""SDR SDRAM as the board's DRAM: an AXI4 subordinate plus a host port on a 16-bit SDRAM chip.

The ULX3S carries a 32 MiB 16-bit SDR SDRAM (IS42S16160 or an equivalent: 4 banks, 8192 rows,
512 columns). :class:`AxiSdram` serves the accelerator's AXI4 master and the host's AXI4-Lite
port from it, one transaction at a time like :class:`cgaccel.synth.dram.AxiRam`, so a board
design can hold real layers instead of the 32-64 KiB that spare block RAM gives, and spends no
block RAM on it.

Clocking (``clock_mhz`` up to 50): the board wrapper drives the chip's clock with the inverted
FPGA clock (on ECP5 from an ``ODDRX1F`` in the pin's I/O cell, so it leaves with little skew),
so the chip samples each command in the middle of the cycle that carries it. Every
pin output is a flip-flop; the data pins are sampled by a flip-flop each cycle. A READ in cycle
``k`` with CAS latency ``CL`` has its word on the pins in cycle ``k + CL`` (the chip drives it
from its edge at ``k + CL - 1/2``), held by the input register in cycle ``k + CL + 1``. At
25 MHz that gives 20 ns less the chip's access time (5.4-6 ns) and the board's delays of setup.

Addressing: byte address ``a`` is word ``a >> 1``; its low ``col_bits`` bits are the column, the
next ``bank_bits`` the bank, the rest the row (:func:`split_address`), so consecutive rows of a
long transfer rotate through the banks. One AXI beat of ``data_width / 16`` words lies in one
row and is moved as one READ or WRITE per word (burst length 1, so byte strobes are simply
DQM). The last row used stays open: the next beat in it (a 128-bit burst has 64 beats per row)
needs no ACTIVE, a beat elsewhere closes it first (PRECHARGE after tRAS and tWR), and so does a
refresh. Reads are pipelined through a two-beat FIFO: the next beat's READs go out while the
last one's words are still arriving. At 25 MHz a 128-bit beat takes about 9.2 cycles to write
and 9.4 to read over a long burst (8 of them moving data).
"""

import math
from dataclasses import dataclass

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from ..axi import RESP_OKAY, AXI4LiteSignature, AXI4Signature
from .dram import AxiBurst

__all__ = ["AxiSdram", "IS42S16160", "SdramBeats", "SdramChip", "SdramSignature",
           "beat_command_layout", "split_address"]

WORD_BITS = 16


@dataclass(frozen=True)
class SdramChip:
    """Geometry and timing of an SDR SDRAM chip with a 16-bit data bus.

    Times are in nanoseconds (the controller rounds each up to whole cycles of its clock), so
    one description serves any clock. The defaults cover the ISSI IS42S16160 (-7) and Micron
    MT48LC16M16A2 (-7E) data sheets with margin.
    """

    name: str = "IS42S16160"
    row_bits: int = 13
    col_bits: int = 9
    bank_bits: int = 2
    cas_latency: int = 2
    t_rcd_ns: float = 20.0
    t_rp_ns: float = 20.0
    t_ras_ns: float = 45.0
    t_rc_ns: float = 70.0
    t_wr_ns: float = 15.0
    t_wr_min_cycles: int = 2
    t_rfc_ns: float = 70.0
    t_mrd_cycles: int = 2
    t_refi_ns: float = 7812.5      # 64 ms / 8192 rows
    t_init_ns: float = 200_000.0   # power-up wait with NOPs before the first command

    def __post_init__(self):
        for name in ("row_bits", "col_bits", "bank_bits", "cas_latency", "t_wr_min_cycles",
                     "t_mrd_cycles"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool):
                raise TypeError(f"SDRAM {name} must be an integer, not {v!r}")
        if not 11 <= self.row_bits <= 13:
            raise ValueError(f"SDRAM row_bits must be 11 to 13, not {self.row_bits}")
        if not 8 <= self.col_bits <= 10:
            raise ValueError(f"SDRAM col_bits must be 8 to 10, not {self.col_bits}")
        if self.bank_bits not in (1, 2):
            raise ValueError(f"SDRAM bank_bits must be 1 or 2, not {self.bank_bits}")
        if self.cas_latency not in (2, 3):
            raise ValueError(f"SDRAM cas_latency must be 2 or 3, not {self.cas_latency}")
        for name in ("t_rcd_ns", "t_rp_ns", "t_ras_ns", "t_rc_ns", "t_wr_ns", "t_rfc_ns",
                     "t_refi_ns", "t_init_ns"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or v <= 0:
                raise ValueError(f"SDRAM {name} must be a positive number, not {v!r}")

    @property
    def size_bytes(self):
        return 2 << (self.row_bits + self.bank_bits + self.col_bits)

    def cycles(self, clock_mhz):
        """The chip's timing in whole cycles of a ``clock_mhz`` clock (each at least 1)."""
        def c(ns):
            return max(1, math.ceil(ns * clock_mhz / 1000 - 1e-9))
        return dict(t_rcd=c(self.t_rcd_ns), t_rp=c(self.t_rp_ns), t_ras=c(self.t_ras_ns),
                    t_rc=c(self.t_rc_ns), t_wr=max(c(self.t_wr_ns), self.t_wr_min_cycles),
                    t_rfc=c(self.t_rfc_ns), t_mrd=self.t_mrd_cycles,
                    refresh=int(self.t_refi_ns * clock_mhz / 1000), init=c(self.t_init_ns))


IS42S16160 = SdramChip()


def split_address(chip, byte_addr):
    """``(bank, row, col)`` of byte address ``byte_addr`` (row | bank | column | byte)."""
    w = byte_addr >> 1
    col = w & ((1 << chip.col_bits) - 1)
    bank = (w >> chip.col_bits) & ((1 << chip.bank_bits) - 1)
    row = w >> (chip.col_bits + chip.bank_bits)
    return bank, row, col


class SdramSignature(wiring.Signature):
    """The chip's pins from the controller's side (the clock pin is the board wrapper's).

    ``dq_o``/``dq_oe`` drive the data pins, ``dq_i`` is what they carry; ``a`` is the address
    bus (row, or column with A10 the auto-precharge / all-banks bit); ``dqm`` bit 0 masks the
    low byte of a word, bit 1 the high byte.
    """

    def __init__(self, *, row_bits, bank_bits):
        super().__init__({
            "cke": Out(1), "cs_n": Out(1, init=1), "ras_n": Out(1, init=1),
            "cas_n": Out(1, init=1), "we_n": Out(1, init=1), "ba": Out(bank_bits),
            "a": Out(row_bits), "dqm": Out(2, init=3), "dq_o": Out(WORD_BITS),
            "dq_oe": Out(1), "dq_i": In(WORD_BITS),
        })


# (ras_n, cas_n, we_n)
_NOP, _ACTIVE, _READ, _WRITE, _PRECHARGE, _REFRESH, _MODE = (
    0b111, 0b011, 0b101, 0b100, 0b010, 0b001, 0b000)


def beat_command_layout(data_width, beat_bits):
    return data.StructLayout({"write": 1, "beat": beat_bits, "data": data_width,
                              "strb": data_width // 8})


class SdramBeats(wiring.Component):
    """Moves whole beats of ``data_width`` bits to and from the chip; owns its initialisation
    and refresh.

    Members
    -------
    i_cmd : ``In(stream.Signature(beat_command_layout(...)))``
        One beat: ``beat`` is the beat index (byte address / (data_width / 8)); a write takes
        ``data`` with byte strobes ``strb``. Commands run in order, so a read after a write sees
        it. A read is taken only when the read FIFO has room for it beside the reads still in
        flight; a write only when no read data is still due.
    o_rdata : ``Out(stream.Signature(data_width))``
        Each read's beat.
    sdram : ``Out(SdramSignature(...))``
    ready : ``Out(1)``
        Initialisation done (commands wait until then).

    Parameters
    ----------
    chip : SdramChip
    data_width : int
        A power of two from 16 to ``16 << col_bits``.
    clock_mhz : float
        The clock the timing is counted in, at most 50 (see the module docstring).
    """

    def __init__(self, *, chip, data_width, clock_mhz):
        self._MustUse__silence = True
        if not isinstance(chip, SdramChip):
            raise TypeError(f"SDRAM chip must be an SdramChip, not {chip!r}")
        if not isinstance(data_width, int) or isinstance(data_width, bool):
            raise TypeError(f"SDRAM data width must be an integer, not {data_width!r}")
        words = data_width // WORD_BITS
        if data_width < WORD_BITS or data_width & (data_width - 1) or \
                words > (1 << chip.col_bits):
            raise ValueError(f"SDRAM data width must be a power of two from 16 to "
                             f"{WORD_BITS << chip.col_bits}, not {data_width}")
        if not isinstance(clock_mhz, (int, float)) or isinstance(clock_mhz, bool) or \
                not 0 < clock_mhz <= 50:
            raise ValueError(f"SDRAM clock must be a frequency in MHz above 0 and at most 50, "
                             f"not {clock_mhz!r}")
        t = chip.cycles(clock_mhz)
        # A refresh that falls due waits for at most one row to close, one to open, one beat
        # access and the row's closing again.
        self._op_cycles = (t["t_ras"] + 2 * t["t_rp"] + t["t_rc"] + t["t_rcd"] + words +
                           max(t["t_wr"], chip.cas_latency + 2) + 6)
        period = t["refresh"] - self._op_cycles - t["t_rfc"]
        if period < 16:
            raise ValueError(f"SDRAM clock must leave at least 16 cycles between refreshes, "
                             f"not {period} at {clock_mhz} MHz")
        self._MustUse__silence = False
        self._chip, self._dw, self._t = chip, data_width, t
        self._words = words
        self._refresh_period = period
        beat_bits = chip.row_bits + chip.bank_bits + chip.col_bits - (words.bit_length() - 1)
        self._beat_bits = beat_bits
        super().__init__({
            "i_cmd": In(stream.Signature(beat_command_layout(data_width, beat_bits))),
            "o_rdata": Out(stream.Signature(data_width)),
            "sdram": Out(SdramSignature(row_bits=chip.row_bits, bank_bits=chip.bank_bits)),
            "ready": Out(1),
        })

    @property
    def timing(self):
        """The chip's timing in cycles, as used (``cycles(clock_mhz)`` of the chip)."""
        return dict(self._t)

    @property
    def refresh_period(self):
        """Cycles from one AUTO REFRESH to when the next falls due."""
        return self._refresh_period

    def elaborate(self, platform):
        m = Module()
        chip, t, words = self._chip, self._t, self._words
        cl, cb, bb = chip.cas_latency, chip.col_bits, chip.bank_bits
        pins = self.sdram
        cmd = self.i_cmd.p

        # Pin registers: one command per cycle, NOP unless a state asks for another.
        op = Signal(3)
        m.d.comb += op.eq(_NOP)
        a_next = Signal(chip.row_bits)
        ba_next = Signal(bb)
        dqm_next = Signal(2)
        dq_next = Signal(WORD_BITS)
        oe_next = Signal()
        m.d.sync += [pins.cke.eq(1), pins.cs_n.eq(0), Cat(pins.we_n, pins.cas_n, pins.ras_n)
                     .eq(op), pins.a.eq(a_next), pins.ba.eq(ba_next), pins.dqm.eq(dqm_next),
                     pins.dq_o.eq(dq_next), pins.dq_oe.eq(oe_next)]
        dq_r = Signal(WORD_BITS)
        m.d.sync += dq_r.eq(pins.dq_i)

        # The command's beat, as the chip sees it.
        wpb = words.bit_length() - 1           # word-in-beat bits
        word_addr = Signal(chip.row_bits + bb + cb)
        m.d.comb += word_addr.eq(cmd.beat << wpb)
        c_col, c_bank, c_row = word_addr[:cb], word_addr[cb:cb + bb], word_addr[cb + bb:]
        # At most one row is open, left open after an access so that the next beat of a burst
        # (64 beats of 128 bits share a row) needs no ACTIVE or PRECHARGE.
        is_open = Signal()
        o_bank = Signal(bb)
        o_row = Signal(chip.row_bits)
        hit = is_open & (o_bank == c_bank) & (o_row == c_row)

        col = Signal(cb)
        write = Signal()
        wdata = Signal(self._dw)
        wstrb = Signal(self._dw // 8)
        j = Signal(range(words + 1))

        def saturating(name, limit):
            sig = Signal(range(limit + 1), init=limit, name=name)
            m.d.sync += sig.eq(Mux(sig == limit, limit, sig + 1))
            return sig
        # Cycles since the last ACTIVE and the last WRITE (each counts from the cycle after the
        # command is on the pins).
        since_act = saturating("since_act", max(t["t_rc"], t["t_ras"]))
        since_wr = saturating("since_wr", t["t_wr"])
        may_close = (since_act >= t["t_ras"] - 1) & (since_wr >= t["t_wr"] - 1)

        # Read data: a READ's token reaches the end of this line in the cycle its word is in
        # dq_r; whole beats go into a two-beat FIFO. A read is taken only when the FIFO has room
        # for it beside the beats still arriving, so data is never dropped.
        tok = Signal(cl + 2)
        issue_read = Signal()
        m.d.sync += tok.eq(Cat(issue_read, tok[:-1]))
        m.submodules.rfifo = rf = SyncFIFO(width=self._dw, depth=2)
        rdata = Signal(self._dw)
        got = Signal(range(words))
        pending = Signal(2)                    # read beats taken, not yet in the FIFO
        take_read = Signal()
        new_beat = Cat(rdata[WORD_BITS:], dq_r) if words > 1 else dq_r
        m.d.comb += rf.w_data.eq(new_beat)
        with m.If(tok[-1]):
            m.d.sync += rdata.eq(new_beat)
            with m.If(got == words - 1):
                m.d.comb += rf.w_en.eq(1)
                m.d.sync += got.eq(0)
            with m.Else():
                m.d.sync += got.eq(got + 1)
        m.d.sync += pending.eq(pending + take_read - rf.w_en)
        o = self.o_rdata
        m.d.comb += [o.valid.eq(rf.r_rdy), o.payload.eq(rf.r_data), rf.r_en.eq(o.ready)]

        wait = Signal(range(max(t.values()) + 2))
        refresh_cnt = Signal(range(self._refresh_period + 1))
        refresh_due = Signal()
        m.d.sync += refresh_cnt.eq(refresh_cnt + (refresh_cnt != self._refresh_period))
        m.d.comb += refresh_due.eq(refresh_cnt == self._refresh_period)
        refreshes = Signal(2)

        with m.If(wait != 0):
            m.d.sync += wait.eq(wait - 1)
        with m.FSM():
            with m.State("POWER_UP"):
                m.d.sync += wait.eq(t["init"])
                m.next = "INIT_WAIT"
            with m.State("INIT_WAIT"):
                with m.If(wait == 0):
                    m.d.comb += [op.eq(_PRECHARGE), a_next.eq(1 << 10)]
                    m.d.sync += [wait.eq(t["t_rp"] - 1), refreshes.eq(0)]
                    m.next = "INIT_REFRESH"
            with m.State("INIT_REFRESH"):
                with m.If(wait == 0):
                    with m.If(refreshes == 2):
                        # Burst length 1, sequential, CAS latency cl, burst writes.
                        m.d.comb += [op.eq(_MODE), a_next.eq(cl << 4)]
                        m.d.sync += wait.eq(t["t_mrd"] - 1)
                        m.next = "INIT_MODE"
                    with m.Else():
                        m.d.comb += op.eq(_REFRESH)
                        m.d.sync += [wait.eq(t["t_rfc"] - 1), refreshes.eq(refreshes + 1),
                                     refresh_cnt.eq(0)]
            with m.State("INIT_MODE"):
                with m.If(wait == 0):
                    m.next = "IDLE"
            with m.State("IDLE"):
                m.d.comb += self.ready.eq(1)
                # A write waits for the reads before it to leave the data pins.
                can_take = Mux(cmd.write, pending == 0, rf.level + pending < 2)
                with m.If(wait != 0):
                    pass
                with m.Elif(refresh_due | (self.i_cmd.valid & can_take & is_open & ~hit)):
                    # Refresh (every bank closed, no read data due) or a row miss: close the
                    # open row first.
                    with m.If(is_open):
                        with m.If(may_close):
                            m.d.comb += [op.eq(_PRECHARGE), ba_next.eq(o_bank)]
                            m.d.sync += [is_open.eq(0), wait.eq(t["t_rp"] - 1)]
                    with m.Elif(pending == 0):
                        # (Conservative: the data sheets do not say whether a read's word may
                        # still be due on the pins at AUTO REFRESH.)
                        m.d.comb += op.eq(_REFRESH)
                        m.d.sync += [wait.eq(t["t_rfc"] - 1), refresh_cnt.eq(0)]
                with m.Elif(self.i_cmd.valid & can_take & (hit | (since_act >= t["t_rc"] - 1))):
                    m.d.comb += [self.i_cmd.ready.eq(1), take_read.eq(~cmd.write)]
                    m.d.sync += [col.eq(c_col), write.eq(cmd.write), wdata.eq(cmd.data),
                                 wstrb.eq(cmd.strb), j.eq(0)]
                    with m.If(~hit):
                        m.d.comb += [op.eq(_ACTIVE), a_next.eq(c_row), ba_next.eq(c_bank)]
                        m.d.sync += [is_open.eq(1), o_bank.eq(c_bank), o_row.eq(c_row),
                                     since_act.eq(0), wait.eq(t["t_rcd"] - 1)]
                    m.next = "ACCESS"
            with m.State("ACCESS"):
                # One READ or WRITE per cycle, columns in order.
                with m.If(wait == 0):
                    m.d.comb += [op.eq(Mux(write, _WRITE, _READ)), a_next.eq(col | j),
                                 ba_next.eq(o_bank), issue_read.eq(~write)]
                    with m.If(write):
                        m.d.comb += [oe_next.eq(1),
                                     dq_next.eq(wdata.word_select(j[:max(wpb, 1)], WORD_BITS)
                                                if words > 1 else wdata),
                                     dqm_next.eq(~(wstrb.word_select(j[:max(wpb, 1)], 2)
                                                   if words > 1 else wstrb))]
                        m.d.sync += since_wr.eq(0)
                    m.d.sync += j.eq(j + 1)
                    with m.If(j == words - 1):
                        m.next = "IDLE"
        return m


def _check_int(name, value):
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, not {value!r}")


class AxiSdram(wiring.Component):
    """SDRAM with an AXI4 subordinate port and an AXI4-Lite subordinate port.

    The same contract as :class:`cgaccel.synth.dram.AxiRam` (INCR and FIXED bursts of
    full-width beats, byte strobes; a burst leaving the chip, a narrow size or WRAP answers
    SLVERR on every beat, writes dropped and reads returning zeros; a WLAST on the wrong beat
    answers SLVERR; the host's 32-bit port always OKAY), served from an SDRAM chip.

    Members
    -------
    axi : ``In(AXI4Signature(addr_width, data_width, id_width))``
    lite : ``In(AXI4LiteSignature(addr_width=log2(chip.size_bytes)))``
    sdram : ``Out(SdramSignature(...))``
        To the chip's pins (the clock pin is the board wrapper's: the inverted clock).
    ready : ``Out(1)``
        The chip is initialised (requests wait until then).

    Parameters
    ----------
    chip : SdramChip
    data_width, addr_width, id_width : int
        AXI4 port widths (the accelerator's).
    clock_mhz : float
        The clock, at most 50 MHz.
    """

    def __init__(self, *, chip=IS42S16160, data_width, addr_width, id_width, clock_mhz):
        self._MustUse__silence = True
        _check_int("SDRAM address width", addr_width)
        if not isinstance(chip, SdramChip):
            raise TypeError(f"SDRAM chip must be an SdramChip, not {chip!r}")
        if (1 << addr_width) < chip.size_bytes:
            raise ValueError(f"SDRAM address width must reach {chip.size_bytes} bytes, not "
                             f"{addr_width} bits")
        if isinstance(data_width, int) and not isinstance(data_width, bool) and \
                data_width < 32:
            raise ValueError(f"SDRAM data width must be at least 32, not {data_width}")
        self._beats = SdramBeats(chip=chip, data_width=data_width, clock_mhz=clock_mhz)
        self._MustUse__silence = False
        self._chip, self._dw = chip, data_width
        super().__init__({
            "axi": In(AXI4Signature(addr_width=addr_width, data_width=data_width,
                                    id_width=id_width)),
            "lite": In(AXI4LiteSignature(addr_width=(chip.size_bytes - 1).bit_length())),
            "sdram": Out(SdramSignature(row_bits=chip.row_bits, bank_bits=chip.bank_bits)),
            "ready": Out(1),
        })

    @property
    def size_bytes(self):
        return self._chip.size_bytes

    @property
    def chip(self):
        return self._chip

    @property
    def beats(self):
        """The :class:`SdramBeats` inside (its timing and refresh period)."""
        return self._beats

    def elaborate(self, platform):
        m = Module()
        axi, lite = self.axi, self.lite
        dw = self._dw
        nbytes = dw // 8
        lb = (nbytes - 1).bit_length()
        nbeats = self._chip.size_bytes // nbytes
        lanes = dw // 32
        m.submodules.beats = beats = self._beats
        wiring.connect(m, wiring.flipped(self.sdram), beats.sdram)
        m.d.comb += self.ready.eq(beats.ready)
        cmd, rd = beats.i_cmd, beats.o_rdata

        b = AxiBurst(axi, nbeats)
        cur, left, err = b.cur, b.left, b.err     # left: beats to move (write) or to return
        issue = Signal(9)         # read beats still to ask for
        lane = Signal(range(max(lanes, 2)))
        prefer_lite = Signal()
        wbuf = Signal(dw)
        wstrb = Signal(nbytes)
        lite_addr = Signal(len(lite.awaddr))

        m.d.comb += b.responses
        m.d.comb += [
            lite.bresp.eq(RESP_OKAY), lite.rresp.eq(RESP_OKAY),
            lite.rdata.eq(rd.payload.word_select(lane, 32) if lanes > 1 else rd.payload),
        ]
        lite_lane_w = lite.awaddr[2:lb] if lanes > 1 else 0

        with m.FSM():
            with m.State("IDLE"):
                axi_req = axi.awvalid | axi.arvalid
                lite_req = (lite.awvalid & lite.wvalid) | lite.arvalid
                with m.If(lite_req & (prefer_lite | ~axi_req)):
                    m.d.sync += prefer_lite.eq(0)
                    with m.If(lite.awvalid & lite.wvalid):
                        m.d.comb += [lite.awready.eq(1), lite.wready.eq(1)]
                        m.d.sync += [lite_addr.eq(lite.awaddr),
                                     wbuf.eq(lite.wdata.replicate(lanes))]
                        m.d.sync += wstrb.eq(0)
                        for i in range(lanes):
                            with m.If(lite_lane_w == i):
                                m.d.sync += wstrb[4 * i:4 * i + 4].eq(lite.wstrb)
                        m.next = "LITE_W"
                    with m.Else():
                        m.d.comb += lite.arready.eq(1)
                        m.d.sync += lite_addr.eq(lite.araddr)
                        if lanes > 1:
                            m.d.sync += lane.eq(lite.araddr[2:lb])
                        m.next = "LITE_AR"
                with m.Elif(axi.awvalid):
                    m.d.comb += axi.awready.eq(1)
                    m.d.sync += prefer_lite.eq(1)
                    m.d.sync += b.start(axi.awid, axi.awaddr, axi.awlen, axi.awsize,
                                        axi.awburst)
                    m.next = "AXI_W"
                with m.Elif(axi.arvalid):
                    m.d.comb += axi.arready.eq(1)
                    m.d.sync += [prefer_lite.eq(1), issue.eq(axi.arlen + 1)]
                    m.d.sync += b.start(axi.arid, axi.araddr, axi.arlen, axi.arsize,
                                        axi.arburst)
                    m.next = "AXI_R"
            with m.State("AXI_W"):
                m.d.comb += axi.wready.eq(1)
                with m.If(axi.wvalid):
                    m.d.sync += [wbuf.eq(axi.wdata), wstrb.eq(axi.wstrb), left.eq(left - 1)]
                    last = left == 1
                    with m.If(axi.wlast != last):
                        m.d.sync += err.eq(1)
                    # An erroneous burst's beats are taken and dropped.
                    with m.If(err | (axi.wlast != last)):
                        m.next = "AXI_W_NEXT"
                    with m.Else():
                        m.next = "AXI_W_BEAT"
            with m.State("AXI_W_BEAT"):
                m.d.comb += [cmd.valid.eq(1), cmd.p.write.eq(1), cmd.p.beat.eq(cur),
                             cmd.p.data.eq(wbuf), cmd.p.strb.eq(wstrb)]
                with m.If(cmd.ready):
                    m.next = "AXI_W_NEXT"
            with m.State("AXI_W_NEXT"):
                m.d.sync += cur.eq(cur + ~b.fixed)
                with m.If(left == 0):
                    m.next = "AXI_B"
                with m.Else():
                    m.next = "AXI_W"
            with m.State("AXI_B"):
                m.d.comb += axi.bvalid.eq(1)
                with m.If(axi.bready):
                    m.next = "IDLE"
            with m.State("AXI_R"):
                # Ask for the next beat while the last one waits for RREADY: the beat engine
                # takes a read only once its output is free.
                with m.If(~err & (issue != 0)):
                    m.d.comb += [cmd.valid.eq(1), cmd.p.write.eq(0), cmd.p.beat.eq(cur)]
                    with m.If(cmd.ready):
                        m.d.sync += [issue.eq(issue - 1), cur.eq(cur + ~b.fixed)]
                m.d.comb += [axi.rvalid.eq(err | rd.valid), axi.rlast.eq(left == 1),
                             axi.rdata.eq(Mux(err, 0, rd.payload)),
                             rd.ready.eq(~err & axi.rready)]
                with m.If(axi.rvalid & axi.rready):
                    m.d.sync += left.eq(left - 1)
                    with m.If(left == 1):
                        m.next = "IDLE"
            with m.State("LITE_W"):
                m.d.comb += [cmd.valid.eq(1), cmd.p.write.eq(1), cmd.p.beat.eq(lite_addr[lb:]),
                             cmd.p.data.eq(wbuf), cmd.p.strb.eq(wstrb)]
                with m.If(cmd.ready):
                    m.next = "LITE_B"
            with m.State("LITE_B"):
                m.d.comb += lite.bvalid.eq(1)
                with m.If(lite.bready):
                    m.next = "IDLE"
            with m.State("LITE_AR"):
                m.d.comb += [cmd.valid.eq(1), cmd.p.write.eq(0), cmd.p.beat.eq(lite_addr[lb:])]
                with m.If(cmd.ready):
                    m.next = "LITE_R"
            with m.State("LITE_R"):
                m.d.comb += [lite.rvalid.eq(rd.valid), rd.ready.eq(lite.rready)]
                with m.If(rd.valid & lite.rready):
                    m.next = "IDLE"
        return m

