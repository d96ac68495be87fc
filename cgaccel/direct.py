"""The ``host="mmio"`` top: the engine behind an AXI4-Lite register window.

A small FPGA (the iCE40 UP5K) holds the engine but not the command-list controller and the two
AXI4 DMA engines beside it (``docs/synth.md``, "iCE40 UP5K"), and a board like the iCEBreaker
has no DRAM for them to read anyway: its host already sends every byte over a UART. With
``host="mmio"`` the host runs the layer's command list itself (:func:`cgaccel.cmdsim.execute`,
the controller's reference) and hands the engine each transaction through
:func:`cgaccel.regs.direct_register_map`'s registers (:mod:`cgaccel.direct_driver`). The
engine, its protocol and its results are the same as under the controller.
"""

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .axi import RESP_OKAY, RESP_SLVERR, AXI4LiteSignature
from .config import AccelConfig
from .engine import Engine
from .engine.geometry import Geometry
from .regfile import ADDR_WIDTH
from .regs import DIRECT_COUNTERS, direct_register_map, hwcfg_values

__all__ = ["HostPort", "DirectTop"]


class HostPort(wiring.Component):
    """AXI4-Lite subordinate serving :func:`~cgaccel.regs.direct_register_map`, driving the
    engine's streams.

    One access at a time: a write is taken with its address (both ``awready`` and ``wready``
    rise together), then answered; a write to ``WR``, ``RD`` or ``RUN`` is answered once the
    engine has taken the transaction, so the engine's backpressure reaches the host as a late
    write response and nothing is dropped. A read of ``RD_DATA`` waits for the engine's data
    if a read is pending and answers SLVERR if none is.

    Members
    -------
    bus : ``In(AXI4LiteSignature(addr_width=12))``
    o_wr, o_cmd, o_rd : ``Out(stream.Signature(...))``
        To the engine's ``i_wr``, ``i_cmd`` and ``i_rd``.
    i_done, i_rd : ``In(stream.Signature(...))``
        From the engine's ``o_done`` and ``o_rd`` (always ready for ``o_done``).
    busy : ``In(1)``
        The engine's ``busy``.
    cnt_busy, cnt_macs, cnt_skipped, cnt_open : ``In(32)``
        The low bits of the engine's counters.

    Parameters
    ----------
    config : AccelConfig
    """

    def __init__(self, config):
        # A component refused by its constructor is not "created but never used".
        self._MustUse__silence = True
        if not isinstance(config, AccelConfig):
            raise TypeError(f"Config must be an AccelConfig, not {config!r}")
        self._cfg = config
        self._geo = geo = Geometry(config)
        for name, width, most in (("Buffer address bits", geo.addr_bits, 20),
                                  ("Output address bits", geo.out_bits, 20),
                                  ("Column bits", geo.col_bits, 6)):
            if width > most:
                raise ValueError(f"{name} must be at most {most} for the direct host's "
                                 f"registers, not {width}")
        if geo.read_width > 32:
            raise ValueError(f"Write-back read width must be at most 32 bits for the direct "
                             f"host's RD_DATA, not {geo.read_width}")
        self._regs = {r.name: r for r in direct_register_map(config)}
        self._MustUse__silence = False
        super().__init__({
            "bus": In(AXI4LiteSignature(addr_width=ADDR_WIDTH)),
            "o_wr": Out(stream.Signature(geo.write_layout())),
            "o_cmd": Out(stream.Signature(geo.tile_layout())),
            "i_done": In(stream.Signature(data.StructLayout({"error": 1}))),
            "o_rd": Out(stream.Signature(geo.read_layout())),
            "i_rd": In(stream.Signature(geo.read_width)),
            "busy": In(1),
            "cnt_busy": In(32), "cnt_macs": In(32), "cnt_skipped": In(32), "cnt_open": In(32),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, regs = self._cfg, self._regs
        bus = self.bus

        def at(name):
            return regs[name].offset >> 2

        wdata = [Signal(32, name=n.lower()) for n in regs if n.startswith("WR_DATA")]
        tile = [Signal(32, name=n.lower()) for n in regs if n.startswith("TILE")]
        wr_word = Signal(32)    # the WR/RD/RUN register written: the transaction's fields
        waddr = Signal(ADDR_WIDTH - 2)
        raddr = Signal(ADDR_WIDTH - 2)
        rdata = Signal(32)
        resp = Signal(2)
        done = Signal(16)
        error = Signal()
        pending = Signal(8)     # read requests taken by the engine, data not yet read
        cycles = Signal(32)
        m.d.sync += cycles.eq(cycles + 1)

        m.d.comb += self.i_done.ready.eq(1)
        with m.If(self.i_done.valid):
            m.d.sync += done.eq(done + 1)
            with m.If(self.i_done.payload.error):
                m.d.sync += error.eq(1)

        wr, rd = self.o_wr.payload, self.o_rd.payload
        m.d.comb += [
            wr.addr.eq(wr_word[0:20]), wr.target.eq(wr_word[20:23]), wr.bank.eq(wr_word[23]),
            wr.bcast.eq(wr_word[24]), wr.col.eq(wr_word[25:31]), wr.data.eq(Cat(*wdata)),
            wr.more.eq(0),
            rd.addr.eq(wr_word[0:20]), rd.col.eq(wr_word[20:26]), rd.row.eq(wr_word[26]),
            rd.word.eq(wr_word[27]),
            self.o_cmd.payload.eq(Cat(*tile)),
        ]
        took_rd = self.o_rd.valid & self.o_rd.ready
        gave_rd = Signal()
        m.d.sync += pending.eq(pending + took_rd - gave_rd)

        hw = hwcfg_values(cfg)
        constants = {at("ID"): regs["ID"].reset, at("VERSION"): regs["VERSION"].reset,
                     at("HWCFG0"): hw["HWCFG0"], at("HWCFG1"): hw["HWCFG1"]}
        readable = {at("STATUS"): Cat(self.busy, error, pending != 0, Const(0, 13), done)}
        for (name, _), value in zip(DIRECT_COUNTERS, (cycles, self.cnt_busy, self.cnt_macs,
                                                      self.cnt_skipped, self.cnt_open),
                                    strict=True):
            readable[at(name)] = value

        with m.FSM():
            with m.State("IDLE"):
                with m.If(bus.awvalid & bus.wvalid):
                    m.d.comb += [bus.awready.eq(1), bus.wready.eq(1)]
                    m.d.sync += [waddr.eq(bus.awaddr[2:]), resp.eq(RESP_OKAY)]
                    with m.If(bus.wstrb != 0xF):
                        m.d.sync += resp.eq(RESP_SLVERR)
                        m.next = "BRESP"
                    with m.Else():
                        m.next = "WRITE"
                        with m.Switch(bus.awaddr[2:]):
                            for i, s in enumerate(wdata):
                                with m.Case(at(f"WR_DATA{i}")):
                                    m.d.sync += s.eq(bus.wdata)
                            for i, s in enumerate(tile):
                                with m.Case(at(f"TILE{i}")):
                                    m.d.sync += s.eq(bus.wdata)
                            with m.Case(at("WR"), at("RD")):
                                m.d.sync += wr_word.eq(bus.wdata)
                            with m.Case(at("CTRL")):
                                with m.If(bus.wdata[0]):
                                    m.d.sync += [done.eq(0), error.eq(0)]
                            with m.Case(at("RUN")):
                                pass
                            with m.Default():
                                m.d.sync += resp.eq(RESP_SLVERR)
                with m.Elif(bus.arvalid):
                    m.d.comb += bus.arready.eq(1)
                    m.d.sync += [raddr.eq(bus.araddr[2:]), rdata.eq(0), resp.eq(RESP_OKAY)]
                    m.next = "READ"
            with m.State("WRITE"):
                # A transaction waits here until the engine takes it; others pass through.
                with m.Switch(waddr):
                    with m.Case(at("WR")):
                        m.d.comb += self.o_wr.valid.eq(1)
                        with m.If(self.o_wr.ready):
                            m.next = "BRESP"
                    with m.Case(at("RD")):
                        m.d.comb += self.o_rd.valid.eq(1)
                        with m.If(self.o_rd.ready):
                            m.next = "BRESP"
                    with m.Case(at("RUN")):
                        m.d.comb += self.o_cmd.valid.eq(1)
                        with m.If(self.o_cmd.ready):
                            m.next = "BRESP"
                    with m.Default():
                        m.next = "BRESP"
            with m.State("BRESP"):
                m.d.comb += [bus.bvalid.eq(1), bus.bresp.eq(resp)]
                with m.If(bus.bready):
                    m.next = "IDLE"
            with m.State("READ"):
                m.next = "RRESP"
                with m.Switch(raddr):
                    for addr, value in constants.items():
                        with m.Case(addr):
                            m.d.sync += rdata.eq(value)
                    for addr, value in readable.items():
                        with m.Case(addr):
                            m.d.sync += rdata.eq(value)
                    with m.Case(at("RD_DATA")):
                        m.d.comb += self.i_rd.ready.eq(1)
                        with m.If(self.i_rd.valid):
                            m.d.comb += gave_rd.eq(1)
                            m.d.sync += rdata.eq(self.i_rd.payload)
                        with m.Elif(pending != 0):
                            m.next = "READ"     # the engine still owes it
                        with m.Else():
                            m.d.sync += resp.eq(RESP_SLVERR)
                    with m.Default():
                        m.d.sync += resp.eq(RESP_SLVERR)
            with m.State("RRESP"):
                m.d.comb += [bus.rvalid.eq(1), bus.rdata.eq(rdata), bus.rresp.eq(resp)]
                with m.If(bus.rready):
                    m.next = "IDLE"
        return m


class DirectTop(wiring.Component):
    """cgaccel top level with ``host="mmio"``: the engine and its :class:`HostPort`.

    Members
    -------
    s_axil : ``In(AXI4LiteSignature(addr_width=12))``
        Host access: :func:`cgaccel.regs.direct_register_map`.
    busy : ``Out(1)``
        The engine holds or runs a tile (a board's LED).

    Parameters
    ----------
    config : AccelConfig
        With ``host="mmio"``.
    """

    def __init__(self, config):
        self._MustUse__silence = True
        if not isinstance(config, AccelConfig):
            raise TypeError(f"Config must be an AccelConfig, not {config!r}")
        if config.host != "mmio":
            raise ValueError(f"Config host must be 'mmio' for DirectTop, not "
                             f"{config.host!r} (cgaccel.top.Top builds that one)")
        self._MustUse__silence = False
        self._config = config
        super().__init__({"s_axil": In(AXI4LiteSignature(addr_width=ADDR_WIDTH)),
                          "busy": Out(1)})

    @property
    def config(self):
        return self._config

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        m.submodules.engine = engine = Engine(cfg)
        m.submodules.port = port = HostPort(cfg)
        wiring.connect(m, wiring.flipped(self.s_axil), port.bus)
        wiring.connect(m, port.o_wr, engine.i_wr)
        wiring.connect(m, port.o_cmd, engine.i_cmd)
        wiring.connect(m, engine.o_done, port.i_done)
        wiring.connect(m, port.o_rd, engine.i_rd)
        wiring.connect(m, engine.o_rd, port.i_rd)
        m.d.comb += [port.busy.eq(engine.busy), self.busy.eq(engine.busy),
                     port.cnt_busy.eq(engine.cnt_busy), port.cnt_macs.eq(engine.cnt_macs),
                     port.cnt_skipped.eq(engine.cnt_skipped),
                     port.cnt_open.eq(engine.cnt_open)]
        return m
