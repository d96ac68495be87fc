"""On-chip RAM standing in for DRAM on the boards: an AXI4 subordinate plus a host port.

One memory serves two ports, one transaction at a time (round-robin between the ports when both
ask): the accelerator's AXI4 master and the host's AXI4-Lite port (through the UART bridge). A
single address drives both memory ports so that yosys can map the memory to single-port RAM
(iCE40 SPRAM) as well as to block RAM.
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In

from ..axi import BURST_INCR, RESP_OKAY, RESP_SLVERR, AXI4LiteSignature, AXI4Signature

__all__ = ["AxiBurst", "AxiRam", "BURST_FIXED", "check_ram_args"]

BURST_FIXED = 0b00


def _check_pow2(name, value, lo):
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if value < lo or value & (value - 1):
        raise ValueError(f"{name} must be a power of two of at least {lo}, not {value}")


def check_ram_args(size_bytes, data_width, addr_width):
    """Raise if :class:`AxiRam` parameters are invalid (so callers can check early)."""
    _check_pow2("RAM size", size_bytes, 64)
    _check_pow2("RAM data width", data_width, 32)
    if size_bytes < 2 * data_width // 8:
        raise ValueError(f"RAM size must hold at least two data words, not {size_bytes}")
    if not isinstance(addr_width, int) or isinstance(addr_width, bool):
        raise TypeError(f"RAM address width must be an integer, not {addr_width!r}")
    if (1 << addr_width) < size_bytes:
        raise ValueError(f"RAM address width must reach {size_bytes} bytes, not "
                         f"{addr_width} bits")


class AxiBurst:
    """The AXI4 burst a one-transaction-at-a-time subordinate is serving.

    Signals: ``tid`` (its ID), ``cur`` (the beat it is at, in full-width beats), ``left``
    (beats to go), ``fixed`` (a FIXED burst: ``cur`` stays), ``err`` (answer SLVERR: a burst
    leaving the memory of ``beats`` beats, a narrow size or WRAP).
    """

    def __init__(self, axi, beats):
        self._lb = (len(axi.wstrb) - 1).bit_length()     # byte-offset bits of an address
        self._beats = beats
        self.tid = Signal.like(axi.awid)
        self.cur = Signal(range(beats))
        self.left = Signal(9)
        self.fixed = Signal()
        self.err = Signal()
        self.responses = [axi.bid.eq(self.tid), axi.rid.eq(self.tid),
                          axi.bresp.eq(Mux(self.err, RESP_SLVERR, RESP_OKAY)),
                          axi.rresp.eq(Mux(self.err, RESP_SLVERR, RESP_OKAY))]

    def start(self, aid, addr, length, size, burst):
        """Statements that take a burst from an AW or AR channel's payload."""
        start = addr[self._lb:]
        span = Mux(burst == BURST_FIXED, 0, length)
        ok = ((start + span) < self._beats) & (size == self._lb) & (
            (burst == BURST_INCR) | (burst == BURST_FIXED))
        return [self.tid.eq(aid), self.cur.eq(start), self.left.eq(length + 1),
                self.fixed.eq(burst == BURST_FIXED), self.err.eq(~ok)]

    def step(self):
        """Statements that move to the next beat."""
        return [self.left.eq(self.left - 1), self.cur.eq(self.cur + ~self.fixed)]


class AxiRam(wiring.Component):
    """RAM with an AXI4 subordinate port and an AXI4-Lite subordinate port.

    Members
    -------
    axi : ``In(AXI4Signature(addr_width, data_width, id_width))``
        The accelerator's memory. Byte address ``a`` is RAM byte ``a``. Supported: INCR and
        FIXED bursts of full-width beats (``axsize`` = log2 of the data bytes), byte strobes.
        A burst that leaves the RAM, a narrow size or a WRAP burst answers SLVERR on every beat
        (writes are then dropped; reads return zeros); a WLAST on the wrong beat answers SLVERR.
    lite : ``In(AXI4LiteSignature(addr_width=log2(size_bytes)))``
        The host's 32-bit access to the same bytes (always OKAY: the window is the RAM).

    Parameters
    ----------
    size_bytes : int
        RAM size, a power of two, at least 64 and one data word per 8 bits of ``data_width``.
    data_width, addr_width, id_width : int
        AXI4 port widths (the accelerator's ``axi_data_width``, ``axi_addr_width``,
        ``axi_id_width``).
    """

    def __init__(self, *, size_bytes, data_width, addr_width, id_width):
        # A component refused by its constructor is not "created but never used".
        self._MustUse__silence = True
        check_ram_args(size_bytes, data_width, addr_width)
        self._MustUse__silence = False
        self._size = size_bytes
        self._dw = data_width
        super().__init__({
            "axi": In(AXI4Signature(addr_width=addr_width, data_width=data_width,
                                    id_width=id_width)),
            "lite": In(AXI4LiteSignature(addr_width=(size_bytes - 1).bit_length())),
        })

    @property
    def size_bytes(self):
        return self._size

    def elaborate(self, platform):
        m = Module()
        axi, lite = self.axi, self.lite
        dw = self._dw
        nbytes = dw // 8
        lb = (nbytes - 1).bit_length()           # byte-offset bits in an address
        words = self._size // nbytes
        wa = (words - 1).bit_length()
        lanes = dw // 32

        m.submodules.mem = mem = Memory(shape=dw, depth=words, init=[])
        wp = mem.write_port(granularity=8)
        rp = mem.read_port()
        addr = Signal(wa)
        m.d.comb += [wp.addr.eq(addr), rp.addr.eq(addr), rp.en.eq(0)]

        b = AxiBurst(axi, words)
        cur, left, err = b.cur, b.left, b.err       # left: beats to move (write) or to issue
        rv = Signal()             # the read port output holds an unsent beat
        rlast = Signal()
        lane = Signal(range(max(lanes, 2)))
        prefer_lite = Signal()

        m.d.comb += b.responses
        m.d.comb += [
            axi.rdata.eq(Mux(err, 0, rp.data)), axi.rlast.eq(rlast),
            lite.bresp.eq(RESP_OKAY), lite.rresp.eq(RESP_OKAY),
            lite.rdata.eq(rp.data.word_select(lane, 32) if lanes > 1 else rp.data),
        ]
        lite_lane_w = lite.awaddr[2:lb] if lanes > 1 else 0

        with m.FSM():
            with m.State("IDLE"):
                axi_req = axi.awvalid | axi.arvalid
                lite_req = (lite.awvalid & lite.wvalid) | lite.arvalid
                with m.If(lite_req & (prefer_lite | ~axi_req)):
                    m.d.sync += prefer_lite.eq(0)
                    with m.If(lite.awvalid & lite.wvalid):
                        m.d.comb += [lite.awready.eq(1), lite.wready.eq(1),
                                     addr.eq(lite.awaddr[lb:]),
                                     wp.data.eq(lite.wdata.replicate(lanes))]
                        for i in range(lanes):
                            with m.If(lite_lane_w == i):
                                m.d.comb += wp.en[4 * i:4 * i + 4].eq(lite.wstrb)
                        m.next = "LITE_B"
                    with m.Else():
                        m.d.comb += [lite.arready.eq(1), addr.eq(lite.araddr[lb:]),
                                     rp.en.eq(1)]
                        if lanes > 1:
                            m.d.sync += lane.eq(lite.araddr[2:lb])
                        m.next = "LITE_R"
                with m.Elif(axi.awvalid):
                    m.d.comb += axi.awready.eq(1)
                    m.d.sync += prefer_lite.eq(1)
                    m.d.sync += b.start(axi.awid, axi.awaddr, axi.awlen, axi.awsize,
                                        axi.awburst)
                    m.next = "AXI_W"
                with m.Elif(axi.arvalid):
                    m.d.comb += axi.arready.eq(1)
                    m.d.sync += [prefer_lite.eq(1), rv.eq(0)]
                    m.d.sync += b.start(axi.arid, axi.araddr, axi.arlen, axi.arsize,
                                        axi.arburst)
                    m.next = "AXI_R"
            with m.State("AXI_W"):
                m.d.comb += [axi.wready.eq(1), addr.eq(cur), wp.data.eq(axi.wdata)]
                with m.If(axi.wvalid):
                    with m.If(~err):
                        m.d.comb += wp.en.eq(axi.wstrb)
                    m.d.sync += b.step()
                    last = left == 1
                    with m.If(axi.wlast != last):
                        m.d.sync += err.eq(1)
                    with m.If(last):
                        m.next = "AXI_B"
            with m.State("AXI_B"):
                m.d.comb += axi.bvalid.eq(1)
                with m.If(axi.bready):
                    m.next = "IDLE"
            with m.State("AXI_R"):
                m.d.comb += axi.rvalid.eq(rv)
                # The read port's output register is the beat buffer: advance it only when it
                # is empty or being taken, so backpressure holds the beat in place.
                with m.If(~rv | axi.rready):
                    with m.If(left != 0):
                        m.d.comb += [rp.en.eq(1), addr.eq(cur)]
                        m.d.sync += [rv.eq(1), rlast.eq(left == 1)]
                        m.d.sync += b.step()
                    with m.Else():
                        m.d.sync += rv.eq(0)
                        with m.If(rv):
                            m.next = "IDLE"
            with m.State("LITE_B"):
                m.d.comb += lite.bvalid.eq(1)
                with m.If(lite.bready):
                    m.next = "IDLE"
            with m.State("LITE_R"):
                m.d.comb += lite.rvalid.eq(1)
                with m.If(lite.rready):
                    m.next = "IDLE"
        return m


