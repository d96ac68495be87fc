"""UART-to-AXI4-Lite bridge: the host's access to the board design over a byte stream.

Protocol (all multi-byte fields little-endian; the host waits for each reply before sending the
next command):

=========  =================================  ============================================
command    host sends                         bridge replies
=========  =================================  ============================================
write      ``0x57`` ('W'), addr[4], data[4]   ``0xA0 | resp``
read       ``0x52`` ('R'), addr[4]            ``0xA0 | resp``, data[4]
=========  =================================  ============================================

``resp`` is the AXI response (0 OKAY, 2 SLVERR, 3 DECERR). Any other command byte is ignored
(send a few zero bytes to resynchronise); a command whose bytes stop arriving for ``timeout``
cycles is abandoned. Addresses below ``0x8000_0000`` go to the ``regs`` port (accelerator
registers, 4 KiB); ``0x8000_0000 + x`` goes to byte ``x`` of the ``mem`` port (the on-chip DRAM).
Anything else answers DECERR without a bus access.
"""

from amaranth.hdl import Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..axi import RESP_DECERR, AXI4LiteSignature

__all__ = ["UartAxiLiteBridge", "CMD_WRITE", "CMD_READ", "REPLY_TAG", "MEM_BASE"]

CMD_WRITE = 0x57
CMD_READ = 0x52
REPLY_TAG = 0xA0
MEM_BASE = 0x8000_0000


class UartAxiLiteBridge(wiring.Component):
    """Byte-stream command interpreter driving two AXI4-Lite manager ports.

    Members
    -------
    rx : ``In(stream.Signature(8))``
        Command bytes from the host (from :class:`~cgaccel.synth.uart.UARTRx`).
    tx : ``Out(stream.Signature(8))``
        Reply bytes to the host.
    regs : ``Out(AXI4LiteSignature(addr_width=regs_addr_width))``
        Host addresses ``0 .. 2**regs_addr_width - 1``.
    mem : ``Out(AXI4LiteSignature(addr_width=mem_addr_width))``
        Host addresses ``MEM_BASE .. MEM_BASE + 2**mem_addr_width - 1``.
    busy : ``Out(1)``
        A command is being received, executed or answered.

    Parameters
    ----------
    regs_addr_width, mem_addr_width : int
        Address widths of the two windows (2..31).
    timeout : int
        Cycles without a byte after which a partial command is dropped.
    """

    def __init__(self, *, regs_addr_width=12, mem_addr_width=16, timeout=1 << 20):
        # A component refused by its constructor is not "created but never used".
        self._MustUse__silence = True
        for name, w in (("Register window width", regs_addr_width),
                        ("Memory window width", mem_addr_width)):
            if not isinstance(w, int) or isinstance(w, bool):
                raise TypeError(f"{name} must be an integer, not {w!r}")
            if not 2 <= w <= 31:
                raise ValueError(f"{name} must be an integer between 2 and 31, not {w}")
        if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout < 1:
            raise ValueError(f"Timeout must be a positive integer, not {timeout!r}")
        self._MustUse__silence = False
        self._widths = (regs_addr_width, mem_addr_width)
        self._timeout = timeout
        super().__init__({
            "rx": In(stream.Signature(8)),
            "tx": Out(stream.Signature(8)),
            "regs": Out(AXI4LiteSignature(addr_width=regs_addr_width)),
            "mem": Out(AXI4LiteSignature(addr_width=mem_addr_width)),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        regs_w, mem_w = self._widths
        is_write = Signal()
        # addr in bits 0..31, data in 32..63; then the read data in 32..63, then the reply
        # (shifted out a byte at a time): one register for all three saves 72 flip-flops.
        args = Signal(64)
        need = Signal(range(9))
        got = Signal(range(9))
        idle = Signal(range(self._timeout + 1))
        addr = args[:32]
        wdata = args[32:]
        to_mem = Signal()
        resp = Signal(2)
        reply_left = Signal(range(6))
        aw_done = Signal()
        w_done = Signal()

        in_regs = addr[regs_w:] == 0
        in_mem = (addr[31] == 1) & (addr[mem_w:31] == 0)
        ports = (self.regs, self.mem)
        for port, w in zip(ports, self._widths, strict=True):
            m.d.comb += [port.awaddr.eq(addr[:w]), port.araddr.eq(addr[:w]),
                         port.wdata.eq(wdata), port.wstrb.eq(0xF)]

        m.d.comb += self.tx.payload.eq(args[:8])
        with m.FSM():
            with m.State("CMD"):
                m.d.comb += self.rx.ready.eq(1)
                with m.If(self.rx.valid):
                    with m.If(self.rx.payload == CMD_WRITE):
                        m.d.sync += [is_write.eq(1), need.eq(8), got.eq(0), idle.eq(0)]
                        m.next = "ARGS"
                    with m.Elif(self.rx.payload == CMD_READ):
                        m.d.sync += [is_write.eq(0), need.eq(4), got.eq(0), idle.eq(0)]
                        m.next = "ARGS"
            with m.State("ARGS"):
                m.d.comb += [self.rx.ready.eq(1), self.busy.eq(1)]
                m.d.sync += idle.eq(idle + 1)
                with m.If(self.rx.valid):
                    m.d.sync += [got.eq(got + 1), idle.eq(0)]
                    with m.Switch(got):
                        for i in range(8):
                            with m.Case(i):
                                m.d.sync += args[8 * i:8 * i + 8].eq(self.rx.payload)
                    with m.If(got + 1 == need):
                        m.next = "DECODE"
                with m.Elif(idle == self._timeout):
                    m.next = "CMD"
            with m.State("DECODE"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += [to_mem.eq(addr[31]), aw_done.eq(0), w_done.eq(0)]
                with m.If(~in_regs & ~in_mem):
                    m.d.sync += [resp.eq(RESP_DECERR), wdata.eq(0)]
                    m.next = "REPLY_LOAD"
                with m.Elif(is_write):
                    m.next = "WRITE"
                with m.Else():
                    m.next = "READ"
            with m.State("WRITE"):
                m.d.comb += self.busy.eq(1)
                for sel, port in enumerate(ports):
                    with m.If(to_mem == sel):
                        m.d.comb += [port.awvalid.eq(~aw_done), port.wvalid.eq(~w_done)]
                        with m.If(port.awvalid & port.awready):
                            m.d.sync += aw_done.eq(1)
                        with m.If(port.wvalid & port.wready):
                            m.d.sync += w_done.eq(1)
                        with m.If((aw_done | port.awready) & (w_done | port.wready)):
                            m.next = "WRESP"
            with m.State("WRESP"):
                m.d.comb += self.busy.eq(1)
                for sel, port in enumerate(ports):
                    with m.If(to_mem == sel):
                        m.d.comb += port.bready.eq(1)
                        with m.If(port.bvalid):
                            m.d.sync += resp.eq(port.bresp)
                            m.next = "REPLY_LOAD"
            with m.State("READ"):
                m.d.comb += self.busy.eq(1)
                for sel, port in enumerate(ports):
                    with m.If(to_mem == sel):
                        m.d.comb += port.arvalid.eq(1)
                        with m.If(port.arready):
                            m.next = "RRESP"
            with m.State("RRESP"):
                m.d.comb += self.busy.eq(1)
                for sel, port in enumerate(ports):
                    with m.If(to_mem == sel):
                        m.d.comb += port.rready.eq(1)
                        with m.If(port.rvalid):
                            m.d.sync += [resp.eq(port.rresp), wdata.eq(port.rdata)]
                            m.next = "REPLY_LOAD"
            with m.State("REPLY_LOAD"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += [args.eq(Const(REPLY_TAG, 8) | resp | (wdata << 8)),
                             reply_left.eq(Mux(is_write, 1, 5))]
                m.next = "REPLY"
            with m.State("REPLY"):
                m.d.comb += [self.busy.eq(1), self.tx.valid.eq(1)]
                with m.If(self.tx.ready):
                    m.d.sync += [args.eq(args >> 8), reply_left.eq(reply_left - 1)]
                    with m.If(reply_left == 1):
                        m.next = "CMD"
        return m
