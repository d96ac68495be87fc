"""The top level ``cgaccel``: AXI4-Lite control, AXI4 master to DRAM, interrupt."""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .axi import AXI4LiteSignature, AXI4Signature
from .config import AccelConfig
from .controller import LEN_WIDTH, Controller
from .dma.common import DMAParams, connect_axi
from .dma.reader import ReadDMA
from .dma.writer import WriteDMA
from .engine.engine import Engine
from .regfile import ADDR_WIDTH, RegFile
from .regs import counter_names, hwcfg_values
from .rtl import LOCAL_COPY
from .stream import PairBuffer, SkidBuffer

__all__ = ["Top", "build_top"]


class Top(wiring.Component):
    """cgaccel top level.

    Members
    -------
    s_axil : ``In(AXI4LiteSignature(addr_width=12))``
        Host control: the register map of :mod:`cgaccel.regs`.
    m_axi : ``Out(AXI4Signature(...))``
        Off-chip memory master, widths from the config.
    irq : ``Out(1)``
        Level interrupt: ``IRQ.done & IRQ_EN.done``.

    Parameters
    ----------
    config : AccelConfig
    """

    def __init__(self, config):
        # A component refused by its constructor is not "created but never used".
        self._MustUse__silence = True
        if not isinstance(config, AccelConfig):
            raise TypeError(f"Config must be an AccelConfig, not {config!r}")
        if config.host != "dma":
            raise ValueError(f"Config host must be 'dma' for Top, not {config.host!r} "
                             f"(cgaccel.direct.DirectTop builds that one; build_top picks)")
        self._MustUse__silence = False
        self._config = config
        super().__init__({
            "s_axil": In(AXI4LiteSignature(addr_width=ADDR_WIDTH)),
            "m_axi": Out(AXI4Signature(addr_width=config.axi_addr_width,
                                       data_width=config.axi_data_width,
                                       id_width=config.axi_id_width)),
            "irq": Out(1),
        })

    @property
    def config(self):
        return self._config

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        m.submodules.regs = regs = RegFile(hwcfg_values(cfg), counter_width=cfg.counter_width)
        wiring.connect(m, wiring.flipped(self.s_axil), regs.bus)

        params = DMAParams.from_config(cfg, len_width=LEN_WIDTH)
        m.submodules.rdma = rdma = ReadDMA(params)
        m.submodules.wdma = wdma = WriteDMA(params)
        connect_axi(m, self.m_axi, read=rdma.m_axi, write=wdma.m_axi)
        m.submodules.engine = engine = Engine(cfg)
        m.submodules.controller = ctl = Controller(cfg)

        # The controller's LOAD moves a beat from the read DMA into an engine buffer write
        # in one cycle; with the engine's ``ready`` and the DMA's realigner on either side
        # that was the routed ECP5 critical path (three blocks in one cycle). A register
        # slice on each side keeps LOAD's handshakes inside the controller: one cycle more
        # per read command, one more before a RUN that follows a LOAD. While the read slice
        # holds a beat the DMA side counts as busy (an abort drains it); while the write
        # slice holds a write the engine counts as busy, and no tile command or output read
        # passes it (a tile must see every write before it, a read every preload). The write
        # slice is a ``PairBuffer``: a skid buffer cycle for cycle, whose wide payload
        # registers are not enabled by the engine's ``ready``.
        m.submodules.rd_slice = rd_slice = SkidBuffer(rdma.o_stream.payload.shape())
        m.submodules.wr_slice = wr_slice = PairBuffer(engine.i_wr.payload.shape())
        wiring.connect(m, ctl.rd_cmd, rdma.cmd)
        wiring.connect(m, rdma.o_stream, rd_slice.i)
        wiring.connect(m, rd_slice.o, ctl.rd_data)
        wiring.connect(m, ctl.wr_cmd, wdma.cmd)
        wiring.connect(m, ctl.wr_data, wdma.i_stream)
        wiring.connect(m, ctl.eng_wr, wr_slice.i)
        wiring.connect(m, wr_slice.o, engine.i_wr)
        wr_pending = wr_slice.o.valid
        # Tile commands and output reads through register slices too, gated behind a pending
        # write at their outputs: with the engine's ``ready`` and the write slice's ``valid``
        # straight into the controller, the handshakes enabled its tile-command and read
        # request registers (``fetching``, ``rq_base``, ``rq_left``: some 200 flip-flops)
        # over the wire from the engine, routed ECP5 paths of ``default``'s top (11-13 ns,
        # 9-11 ns of it wire). One cycle more per tile command and per STORE's first read.
        # The command slice is a ``PairBuffer``: as a skid buffer, the engine's ``ready``
        # (a select by the command's own bank) enabled its ~150 payload flip-flops
        # (``rdy_half`` -> ``i_cmd`` payload, 3 levels, 56 endpoints failing at 150 MHz).
        m.submodules.cmd_slice = cmd_slice = PairBuffer(ctl.eng_cmd.payload.shape())
        m.submodules.rq_slice = rq_slice = SkidBuffer(ctl.eng_rd.payload.shape())
        wiring.connect(m, ctl.eng_cmd, cmd_slice.i)
        wiring.connect(m, ctl.eng_rd, rq_slice.i)
        m.d.comb += [
            engine.i_cmd.payload.eq(cmd_slice.o.payload),
            engine.i_cmd.valid.eq(cmd_slice.o.valid & ~wr_pending),
            cmd_slice.o.ready.eq(engine.i_cmd.ready & ~wr_pending),
            engine.i_rd.payload.eq(rq_slice.o.payload),
            engine.i_rd.valid.eq(rq_slice.o.valid & ~wr_pending),
            rq_slice.o.ready.eq(engine.i_rd.ready & ~wr_pending),
        ]
        wiring.connect(m, engine.o_done, ctl.eng_done)
        # Output reads back through a slice as well: the engine's read queue straight into
        # the controller's packing register (``engine.rd_fifo`` -> ``pack``) and its
        # ``valid`` into the packing's enables and ``pack_full`` were routed ECP5 paths of
        # ``default``'s top. One cycle more from a STORE's reads to its beats.
        m.submodules.ord_slice = ord_slice = SkidBuffer(engine.o_rd.payload.shape())
        wiring.connect(m, engine.o_rd, ord_slice.i)
        wiring.connect(m, ord_slice.o, ctl.eng_rd_data)
        m.d.comb += [
            ctl.start.eq(regs.ctrl[0]),
            ctl.soft_reset.eq(regs.ctrl[1]),
            ctl.cmd_addr.eq(Cat(regs.cmd_addr_lo, regs.cmd_addr_hi)),
            ctl.cmd_len.eq(regs.cmd_len),
            ctl.y_addr.eq(Cat(regs.y_addr_lo, regs.y_addr_hi)),
            ctl.y_len.eq(regs.y_len),
            ctl.rd_error.eq(rdma.error),
            ctl.wr_error.eq(wdma.error),
            ctl.wr_done.eq(wdma.done & ~wdma.error),
            ctl.dma_busy.eq(rdma.busy | wdma.busy | rd_slice.o.valid),
            ctl.eng_busy.eq(engine.busy | wr_pending | cmd_slice.o.valid | rq_slice.o.valid
                            | ord_slice.o.valid),
            rdma.abort.eq(ctl.dma_abort),
            wdma.abort.eq(ctl.dma_abort),
            regs.status.eq(ctl.busy | ctl.done << 1 | (ctl.done & (ctl.error_code != 0)) << 2),
            regs.error.eq(ctl.error_code),
            regs.irq_set.eq(ctl.finished),
            self.irq.eq((regs.irq & regs.irq_en)[0]),
        ]

        # Performance counters: per layer, from the start pulse. The engine's counters run
        # free, so the layer's share is the difference from a snapshot taken at start.
        # The counters are cleared (and the engine's snapshot) a cycle after the start, each
        # group from a flip-flop of its own (``LOCAL_COPY``), and the cycle count follows a
        # register of ``busy``: the start decode (the controller's state) fanned out to some
        # 600 counter bits over the die was a family of routed ECP5 paths. Nothing counts in
        # the cycle after a start (the controller has not issued a DMA command or a tile
        # yet), so every count is the same; the cycle count's window moves by one cycle.
        start = regs.ctrl[0] & ~ctl.busy
        start_q = {k: Signal(name=f"start_{k}", attrs=LOCAL_COPY)
                   for k in ("rdma", "wdma", "cycles", "engine")}
        busy_q = Signal()
        m.d.sync += [*(s.eq(start) for s in start_q.values()), busy_q.eq(ctl.busy)]
        m.d.comb += [rdma.counter_clear.eq(start_q["rdma"]),
                     wdma.counter_clear.eq(start_q["wdma"])]
        cw = cfg.counter_width
        cycles = Signal(cw)
        with m.If(start_q["cycles"]):
            m.d.sync += cycles.eq(0)
        with m.Elif(busy_q):
            m.d.sync += cycles.eq(cycles + 1)
        values = {"CYCLES": cycles, "STALL_DRAM": rdma.stall_cycles,
                  "DRAM_RD_BYTES": rdma.bytes_read, "DRAM_WR_BYTES": wdma.bytes_written}
        for name, port in (("BUSY", engine.cnt_busy), ("MACS_ISSUED", engine.cnt_macs),
                           ("MACS_SKIPPED", engine.cnt_skipped), ("GATE_OPEN", engine.cnt_open)):
            # A difference modulo ``2**cw`` needs only the low ``cw`` bits of the snapshot.
            snap = Signal(min(cw, len(port)), name=f"{name.lower()}_at_start")
            with m.If(start_q["engine"]):
                m.d.sync += snap.eq(port)
            # The difference is a register (a cycle behind the engine's count): its carry
            # chain ran on into the register file's read multiplexers and _HI latches.
            values[name] = Signal(cw, name=f"{name.lower()}_count")
            m.d.sync += values[name].eq(port[:len(snap)] - snap)
        for name in counter_names():
            m.d.comb += [getattr(regs, f"{name.lower()}_lo").eq(values[name][:32]),
                         getattr(regs, f"{name.lower()}_hi").eq(values[name][32:])]
        return m


def build_top(config):
    """The top for ``config.host``: :class:`Top` (``"dma"``) or
    :class:`~cgaccel.direct.DirectTop` (``"mmio"``)."""
    if not isinstance(config, AccelConfig):
        raise TypeError(f"Config must be an AccelConfig, not {config!r}")
    if config.host == "mmio":
        from .direct import DirectTop
        return DirectTop(config)
    return Top(config)
