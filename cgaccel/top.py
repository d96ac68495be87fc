"""The top level ``cgaccel``: AXI4-Lite control, AXI4 master to DRAM, interrupt."""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .axi import BURST_INCR, AXI4LiteSignature, AXI4Signature
from .config import AccelConfig
from .regfile import ADDR_WIDTH, RegFile
from .regs import ERRORS, hwcfg_values

__all__ = ["Top"]


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
        if not isinstance(config, AccelConfig):
            raise TypeError(f"Config must be an AccelConfig, not {config!r}")
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
        m.submodules.regs = regs = RegFile(hwcfg_values(cfg))
        wiring.connect(m, wiring.flipped(self.s_axil), regs.bus)

        # The datapath (DMA engines and compute array) is integrated by the end-to-end work;
        # until then a start is refused with a readable error rather than ignored.
        busy = Signal()
        done = Signal()
        error = Signal()
        code = Signal(8)
        with m.If(regs.ctrl[1]):
            m.d.sync += [busy.eq(0), done.eq(0), error.eq(0), code.eq(0)]
        with m.Elif(regs.ctrl[0]):
            m.d.sync += [done.eq(1), error.eq(1), code.eq(ERRORS["shape"])]
            m.d.comb += regs.irq_set.eq(1)
        m.d.comb += [
            regs.status.eq(busy | done << 1 | error << 2),
            regs.error.eq(code),
            self.irq.eq((regs.irq & regs.irq_en)[0]),
        ]

        # Idle AXI4 master: constant attributes a DRAM controller expects.
        for ch in ("aw", "ar"):
            m.d.comb += [
                getattr(self.m_axi, f"{ch}burst").eq(BURST_INCR),
                getattr(self.m_axi, f"{ch}size").eq((cfg.axi_bytes).bit_length() - 1),
                getattr(self.m_axi, f"{ch}cache").eq(0b0011),
            ]
        m.d.comb += [self.m_axi.bready.eq(1), self.m_axi.rready.eq(1)]
        return m
