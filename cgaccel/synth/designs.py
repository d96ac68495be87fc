"""The accelerator's blocks by name, for measuring one of them out of context.

``cgaccel synth --design NAME`` (and ``python -m cgaccel.synth.breakdown --design NAME``)
synthesizes the block the configuration builds inside the top, with the arguments the top
gives it, behind the same scan wrapper as the whole top: its Fmax and critical path are its
own, so a timing change to one block is measured in minutes instead of a whole-top run.
"""

__all__ = ["DESIGNS", "build_design"]


def _regfile(cfg):
    from ..regfile import RegFile
    from ..regs import hwcfg_values
    return RegFile(hwcfg_values(cfg), counter_width=cfg.counter_width)


def _controller(cfg):
    from ..controller import Controller
    return Controller(cfg)


def _dma_params(cfg):
    from ..controller import LEN_WIDTH
    from ..dma.common import DMAParams
    return DMAParams.from_config(cfg, len_width=LEN_WIDTH)


def _read_dma(cfg):
    from ..dma.reader import ReadDMA
    return ReadDMA(_dma_params(cfg))


def _write_dma(cfg):
    from ..dma.writer import WriteDMA
    return WriteDMA(_dma_params(cfg))


def _engine(cfg):
    from ..engine.engine import Engine
    return Engine(cfg)


def _column(cfg):
    from ..engine.column import Column
    return Column(cfg, 0)


def _mac_column(cfg):
    from ..engine.geometry import Geometry
    from ..engine.pe import MacColumn
    geo = Geometry(cfg)
    # As ``Column`` builds it: its sum width, and its item metadata (first, last, cond,
    # gated, off, slot, channel, output address) carried beside the products.
    sum_width = cfg.act_width + cfg.weight_width + max(1, (cfg.rows - 1).bit_length())
    meta = 5 + max(1, (cfg.psum_slots - 1).bit_length()) + geo.param_bits + geo.out_bits
    return MacColumn(cfg.rows, cfg.act_width, cfg.weight_width, sum_width, meta)


def _output_unit(cfg):
    from ..engine.geometry import Geometry
    from ..engine.output_unit import OutputUnit
    return OutputUnit(cfg.act_width, cfg.acc_width, Geometry(cfg).out_bits,
                      dsp_copy=cfg.hard_block_regs)


def _bram_read(no_rw_check):
    def build(cfg):
        from amaranth import Module, Signal
        from amaranth.lib import wiring
        from amaranth.lib.memory import Memory
        from amaranth.lib.wiring import In, Out

        from ..rtl import NO_RW_CHECK

        class BramRead(wiring.Component):
            """A 1024 x 18 memory (one ECP5 DP16KD, one iCE40 SB_RAM40_4K pair) written
            and read every cycle, the read data straight into a register: the shortest path
            out of a block RAM, the floor under every path that starts at one."""

            def __init__(self):
                super().__init__({"w_en": In(1), "w_addr": In(10), "w_data": In(18),
                                  "r_addr": In(10), "q": Out(18)})

            def elaborate(self, platform):
                m = Module()
                m.submodules.mem = mem = Memory(shape=18, depth=1024, init=[],
                                                attrs=NO_RW_CHECK if no_rw_check else None)
                wp, rp = mem.write_port(), mem.read_port()
                # No reset: ``--bram-outreg`` can then move it into the block RAM.
                q = Signal(18, reset_less=True)
                m.d.comb += [wp.en.eq(self.w_en), wp.addr.eq(self.w_addr),
                             wp.data.eq(self.w_data), rp.addr.eq(self.r_addr),
                             self.q.eq(q)]
                m.d.sync += q.eq(rp.data)
                return m

        return BramRead()
    return build


# name -> (builder, what it is)
DESIGNS = {
    "top": (None, "the accelerator top (the default)"),
    "regfile": (_regfile, "AXI4-Lite register file with the performance counters"),
    "controller": (_controller, "command-list controller"),
    "read-dma": (_read_dma, "AXI4 read DMA"),
    "write-dma": (_write_dma, "AXI4 write DMA"),
    "engine": (_engine, "compute engine: all columns and their shared logic"),
    "column": (_column, "one engine column (column 0)"),
    "mac-column": (_mac_column, "a column's MAC pipeline"),
    "output-unit": (_output_unit, "a column's output unit (bias, requantize, ReLU, residual)"),
    "bram-read": (_bram_read(True), "one block RAM read into a register (no_rw_check)"),
    "bram-read-rw": (_bram_read(False), "the same with yosys's read/write collision logic"),
}


def build_design(name, config):
    """The component ``name`` of ``DESIGNS`` for ``config``; ``None`` for ``"top"``."""
    if not isinstance(name, str) or name not in DESIGNS:
        raise ValueError(f"Design must be one of {', '.join(DESIGNS)}, not {name!r}")
    builder = DESIGNS[name][0]
    return None if builder is None else builder(config)
