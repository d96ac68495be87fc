"""Board designs: the accelerator top made loadable on a real board.

The top's AXI ports cannot go to pins. On the board the host reaches the accelerator through the
board's USB UART (:class:`~cgaccel.synth.bridge.UartAxiLiteBridge`), and the accelerator's AXI4
master is served by an on-chip RAM standing in for DRAM (:class:`~cgaccel.synth.dram.AxiRam`),
which the host also reads and writes through the bridge::

    USB UART --> UARTRx --> bridge --regs--> Top.s_axil        Top.m_axi --> AxiRam.axi
    USB UART <-- UARTTx <--        --mem---------------------------------> AxiRam.lite
                                                                Top.irq --> LED 0

On a board with SDRAM (the ULX3S) ``dram="sdram"`` serves the AXI4 master and the host from the
chip instead (:class:`~cgaccel.synth.sdram.AxiSdram`, 32 MiB), which costs no block RAM.

Host address map (see :mod:`cgaccel.synth.bridge`): ``0x0000_0000`` accelerator registers,
``0x8000_0000 + a`` RAM byte ``a``, which the accelerator sees at AXI address ``a``.

With ``host="mmio"`` (the ``tiny`` preset for the iCEBreaker) the top is
:class:`~cgaccel.direct.DirectTop`: no DRAM at all, the bridge's ``regs`` port reaches the
direct register map and its memory window answers DECERR::

    USB UART --> UARTRx --> bridge --regs--> DirectTop.s_axil      DirectTop.busy --> LED 0
"""

from dataclasses import dataclass
from importlib import resources

from amaranth.hdl import ClockDomain, ClockSignal, Const, Instance, Module, ResetSignal, Signal
from amaranth.lib import io, wiring
from amaranth.lib.cdc import ResetSynchronizer
from amaranth.lib.wiring import In, Out

from ..axi import RESP_DECERR
from ..config import AccelConfig
from ..regfile import ADDR_WIDTH
from ..top import build_top
from .bridge import UartAxiLiteBridge
from .dram import AxiRam, check_ram_args
from .pll import ecp5_pll, ecp5_pll_params
from .reset import drive_global_reset
from .sdram import IS42S16160, AxiSdram, SdramChip
from .uart import UARTRx, UARTTx

__all__ = ["Board", "BOARDS", "BoardTop", "SDRAM_MAX_MHZ"]

# The SDRAM's clock is the inverted system clock, so a READ's word must reach the FPGA's input
# flip-flop within half a cycle of the chip's edge: the clock pin's output delay, the chip's
# access time (5.4-6 ns), the data pin's input delay and up to 2.6 ns of routing to the
# flip-flop (nextpnr, `default`'s board top). About 11-13 ns by the estimate in docs/synth.md:
# 20 ns at 25 MHz, 10 ns at 50 MHz. Until a board measures it, the oscillator's 25 MHz.
SDRAM_MAX_MHZ = 25.0


@dataclass(frozen=True)
class Board:
    """Pins and clock of one board (names match its constraint file).

    Parameters
    ----------
    name : str
    clock_mhz : float
        Oscillator frequency; the design runs on it, or on a PLL's output made from it
        (``BoardTop(clock_mhz=...)``, boards with ``pll``).
    constraints : str
        Constraint file name in ``cgaccel/synth/boards/``.
    clk, rst, uart_rx, uart_tx : str
        Pin names: oscillator, reset button, UART line into the FPGA, UART line out of it.
    rst_active_low : bool
    leds : tuple of str
        LED pin names (LED 0: interrupt, LED 1: heartbeat, LED 2: bridge busy).
    leds_active_low : bool
    tie_high : tuple of str
        Outputs held high (ULX3S ``wifi_gpio0``: keeps the ESP32 from resetting the FPGA).
    default_dram_bytes : int
        On-chip RAM size when the DRAM is block RAM or SPRAM.
    sdram : SdramChip, optional
        The board's SDRAM chip (pins ``sdram_*`` in the constraint file), if it has one.
    pll : str, optional
        ``"ecp5"``: the system clock may come from an ``EHXPLLL`` (:mod:`cgaccel.synth.pll`);
        None: the oscillator only.
    """

    name: str
    clock_mhz: float
    constraints: str
    clk: str
    rst: str
    rst_active_low: bool
    uart_rx: str
    uart_tx: str
    leds: tuple
    leds_active_low: bool
    tie_high: tuple
    default_dram_bytes: int
    sdram: SdramChip | None = None
    pll: str | None = None

    def pins(self):
        """Names of the one-bit top-level ports of every board design (all in the constraint
        file)."""
        return (self.clk, self.rst, self.uart_rx, self.uart_tx) + self.leds + self.tie_high

    def sdram_ports(self):
        """``{name: width}`` of the SDRAM ports of a design with ``dram="sdram"`` (``sdram_d``
        is the bidirectional data bus, the others outputs); empty without an SDRAM."""
        if self.sdram is None:
            return {}
        c = self.sdram
        return {"sdram_clk": 1, "sdram_cke": 1, "sdram_csn": 1, "sdram_rasn": 1,
                "sdram_casn": 1, "sdram_wen": 1, "sdram_a": c.row_bits, "sdram_ba": c.bank_bits,
                "sdram_dqm": 2, "sdram_d": 16}

    def sdram_pins(self):
        """Constraint-file names of the SDRAM pins, one per bit (``sdram_a[0]``, ...)."""
        return tuple(n if w == 1 else f"{n}[{i}]" for n, w in self.sdram_ports().items()
                     for i in range(w))

    def constraints_path(self):
        return resources.files("cgaccel.synth.boards").joinpath(self.constraints)


_ULX3S = dict(clock_mhz=25.0, constraints="ulx3s.lpf", clk="clk_25mhz", rst="btn_fire1",
              rst_active_low=False, uart_rx="ftdi_txd", uart_tx="ftdi_rxd",
              leds=tuple(f"led{i}" for i in range(8)), leds_active_low=False,
              tie_high=("wifi_gpio0",), pll="ecp5")

BOARDS = {
    # ULX3S: LFE5U-85F or -25F, CABGA381; FT231X USB UART; 25 MHz oscillator.
    "ulx3s-85f": Board("ulx3s-85f", default_dram_bytes=64 * 1024, sdram=IS42S16160, **_ULX3S),
    "ulx3s-25f": Board("ulx3s-25f", default_dram_bytes=32 * 1024, sdram=IS42S16160, **_ULX3S),
    # iCEBreaker: iCE40UP5K-SG48; FT2232H channel B UART; 12 MHz oscillator. The RAM is the
    # four SPRAMs (128 KiB), which nothing else uses.
    "icebreaker": Board("icebreaker", clock_mhz=12.0, constraints="icebreaker.pcf", clk="CLK",
                        rst="BTN_N", rst_active_low=True, uart_rx="RX", uart_tx="TX",
                        leds=("LEDR_N", "LEDG_N"), leds_active_low=True, tie_high=(),
                        default_dram_bytes=128 * 1024),
}


class BoardTop(wiring.Component):
    """Loadable board design around the accelerator top (:func:`cgaccel.top.build_top`).

    Members
    -------
    One ``In(1)``/``Out(1)`` member per board pin used, named as in the constraint file.

    Parameters
    ----------
    config : AccelConfig
    board : Board
    baud : int
        UART baud rate; the clock must give at least 4 cycles per bit.
    clock_mhz : float, optional
        The system clock, which everything runs on (the UART's bit time, the SDRAM's timing
        and refresh are counted in it). Default: the board's oscillator. Any other frequency
        comes from the board's PLL (ECP5: :func:`cgaccel.synth.pll.ecp5_pll_params`, the
        nearest setting within 1%, which :attr:`clock_mhz` then gives); the reset is held
        until the PLL locks. With the PLL the design is an ``Instance``: synthesis only.
    dram : str, optional
        None with ``host="mmio"`` (no DRAM). ``"ram"``: an on-chip RAM
        (:class:`~cgaccel.synth.dram.AxiRam`); ``"sdram"``: the board's SDRAM chip
        (:class:`~cgaccel.synth.sdram.AxiSdram`). Default: the SDRAM if the board has one and
        ``dram_bytes`` is not given, else the on-chip RAM.
    dram_bytes : int, optional
        On-chip RAM size (default: the board's); only with ``dram="ram"``.
    sdram_port : amaranth.lib.io.PortLike, optional
        With ``dram="sdram"``: the 16-bit data bus. Default: a top-level ``inout sdram_d``;
        a simulation gives an ``io.SimulationPort("io", 16)`` and drives its ``i``.
    global_reset : bool
        Put the synchronised reset on an ECP5 global buffer (``DCCA``, see
        :mod:`cgaccel.synth.reset`); the flow sets it for ECP5 boards. An ``Instance``: the
        design with it can be synthesized, not simulated by Amaranth.
    reset_dcc : str, optional
        With ``global_reset``: the nextpnr bel of its ``DCCA`` (the target's ``reset_dcc``).
    oddr_clock : bool
        With ``dram="sdram"``: drive the SDRAM clock pin from an ECP5 ``ODDRX1F`` in the pin's
        I/O cell, so it leaves with the skew of an I/O register rather than through a LUT and
        the fabric; the flow sets it for ECP5. An ``Instance``: synthesis only.
    """

    def __init__(self, config, board, *, baud=115200, clock_mhz=None, dram=None,
                 dram_bytes=None, sdram_port=None, global_reset=False, reset_dcc=None,
                 oddr_clock=False):
        # A component refused by its constructor is not "created but never used".
        self._MustUse__silence = True
        if not isinstance(config, AccelConfig):
            raise TypeError(f"Config must be an AccelConfig, not {config!r}")
        if not isinstance(board, Board):
            raise TypeError(f"Board must be a Board, not {board!r}")
        if not isinstance(baud, int) or isinstance(baud, bool) or baud <= 0:
            raise ValueError(f"Baud rate must be a positive integer, not {baud!r}")
        self._pll = None
        if clock_mhz is not None and clock_mhz != board.clock_mhz:
            if board.pll is None:
                raise ValueError(f"Clock must be the {board.clock_mhz:g} MHz oscillator of "
                                 f"{board.name}, which has no PLL here, not {clock_mhz!r}")
            self._pll = ecp5_pll_params(board.clock_mhz, clock_mhz)
        self._clock_mhz = board.clock_mhz if self._pll is None else self._pll.out_mhz
        self._divisor = round(self._clock_mhz * 1e6 / baud)
        if self._divisor < 4:
            raise ValueError(f"Baud rate must be at most {int(self._clock_mhz * 1e6 / 4)} for "
                             f"the {self._clock_mhz:g} MHz clock of {board.name}, not {baud}")
        if not isinstance(global_reset, bool):
            raise TypeError(f"Global reset must be a bool, not {global_reset!r}")
        if reset_dcc is not None and not (isinstance(reset_dcc, str) and reset_dcc):
            raise TypeError(f"Reset DCC bel must be a bel name or None, not {reset_dcc!r}")
        if not isinstance(oddr_clock, bool):
            raise TypeError(f"ODDR clock must be a bool, not {oddr_clock!r}")
        self._oddr_clock = oddr_clock
        self._global_reset = global_reset
        self._reset_dcc = reset_dcc
        self._config = config
        self._board = board
        self._baud = baud
        self._direct = config.host == "mmio"
        if self._direct:
            for name, value in (("DRAM", dram), ("DRAM size", dram_bytes),
                                ("SDRAM port", sdram_port)):
                if value is not None:
                    raise ValueError(f"{name} must be None with host='mmio' (the top reads no "
                                     f"DRAM), not {value!r}")
        elif dram is None:
            dram = "sdram" if board.sdram is not None and dram_bytes is None else "ram"
        if not self._direct and dram not in ("ram", "sdram"):
            raise ValueError(f"DRAM must be 'ram' or 'sdram', not {dram!r}")
        if self._direct:
            self._sdram = None
            self._dram_bytes = 0
        elif dram == "sdram":
            if self._clock_mhz > SDRAM_MAX_MHZ:
                raise ValueError(f"Clock must be at most {SDRAM_MAX_MHZ:g} MHz with "
                                 f"dram='sdram' (the read capture's half-cycle budget, "
                                 f"docs/synth.md), not {clock_mhz!r}")
            if board.sdram is None:
                raise ValueError(f"DRAM must be 'ram' on {board.name}, which has no SDRAM, "
                                 f"not 'sdram'")
            if dram_bytes is not None:
                raise ValueError(f"DRAM size must be the SDRAM chip's with dram='sdram', not "
                                 f"{dram_bytes!r}")
            self._sdram = AxiSdram(chip=board.sdram, data_width=config.axi_data_width,
                                   addr_width=config.axi_addr_width,
                                   id_width=config.axi_id_width, clock_mhz=self._clock_mhz)
            self._dram_bytes = board.sdram.size_bytes
            self._sdram_port = (io.SingleEndedPort(io.IOPort(16, name="sdram_d"))
                                if sdram_port is None else sdram_port)
        else:
            if sdram_port is not None:
                raise ValueError(f"SDRAM port must be None with dram='ram', not {sdram_port!r}")
            self._sdram = None
            self._dram_bytes = board.default_dram_bytes if dram_bytes is None else dram_bytes
            check_ram_args(self._dram_bytes, config.axi_data_width, config.axi_addr_width)
        self._dram = dram
        self._MustUse__silence = False
        # An active-low button idles high: a simulation starts with it released.
        members = {board.clk: In(1), board.rst: In(1, init=int(board.rst_active_low)),
                   board.uart_rx: In(1, init=1),
                   board.uart_tx: Out(1, init=1)}
        members.update({name: Out(1) for name in board.leds + board.tie_high})
        if dram == "sdram":
            members.update({name: Out(w) for name, w in board.sdram_ports().items()
                            if name != "sdram_d"})
        super().__init__(members)
        self._ram_args = dict(size_bytes=self._dram_bytes, data_width=config.axi_data_width,
                              addr_width=config.axi_addr_width, id_width=config.axi_id_width)

    @property
    def baud(self):
        return self._baud

    @property
    def clock_mhz(self):
        """The system clock (MHz): the oscillator's, or the PLL's output."""
        return self._clock_mhz

    @property
    def pll(self):
        """The PLL's :class:`~cgaccel.synth.pll.PllParams`, or None on the oscillator."""
        return self._pll

    @property
    def divisor(self):
        """Clock cycles per UART bit."""
        return self._divisor

    @property
    def dram(self):
        """``"ram"``, ``"sdram"``, or None (``host="mmio"``)."""
        return self._dram

    @property
    def dram_bytes(self):
        return self._dram_bytes

    @property
    def sdram_port(self):
        """The SDRAM data bus port (``dram="sdram"``), else None."""
        return self._sdram_port if self._sdram is not None else None

    def elaborate(self, platform):
        m = Module()
        b = self._board

        def pin(name):
            return getattr(self, name)

        m.domains.sync = ClockDomain("sync")
        pressed = Signal()
        m.d.comb += pressed.eq(~pin(b.rst) if b.rst_active_low else pin(b.rst))
        if self._pll is None:
            clk = pin(b.clk)
        else:
            clk, locked = Signal(), Signal()
            m.submodules.pll = ecp5_pll(self._pll, pin(b.clk), clk, locked)
            # Nothing leaves reset before the clock is stable.
            pressed_or_unlocked = Signal()
            m.d.comb += pressed_or_unlocked.eq(pressed | ~locked)
            pressed = pressed_or_unlocked
        m.d.comb += ClockSignal("sync").eq(clk)
        if self._global_reset:
            # The synchroniser's output, in a domain of its own on the same clock, is the
            # global buffer's input.
            m.domains.button = ClockDomain("button")
            m.d.comb += ClockSignal("button").eq(clk)
            m.submodules.reset_sync = ResetSynchronizer(pressed, domain="button")
            drive_global_reset(m, ResetSignal("button"), bel=self._reset_dcc)
        else:
            m.submodules.reset_sync = ResetSynchronizer(pressed, domain="sync")

        m.submodules.rx = rx = UARTRx(self._divisor)
        m.submodules.tx = tx = UARTTx(self._divisor)
        mem_w = max(2, (self._dram_bytes - 1).bit_length())
        m.submodules.bridge = bridge = UartAxiLiteBridge(
            regs_addr_width=ADDR_WIDTH, mem_addr_width=mem_w,
            timeout=16 * 10 * self._divisor)
        m.submodules.top = top = build_top(self._config)
        m.d.comb += [rx.rx.eq(pin(b.uart_rx)), pin(b.uart_tx).eq(tx.tx)]
        wiring.connect(m, rx.o, bridge.rx)
        wiring.connect(m, bridge.tx, tx.i)
        wiring.connect(m, bridge.regs, top.s_axil)
        if self._direct:
            _decode_error(m, bridge.mem)
            states = [top.busy]
        else:
            states = [top.irq]
            self._dram_side(m, pin, bridge, top)
        # Heartbeat: about 1.5 Hz, so a loaded bitstream is visibly alive.
        beat = Signal(int(self._clock_mhz * 1e6).bit_length() - 1)
        m.d.sync += beat.eq(beat + 1)
        # LED 3 with the SDRAM: the chip is initialised.
        ready = [self._ram.ready] if self._sdram is not None else []
        states = (states + [beat[-1], bridge.busy] + ready +
                  [Const(0, 1)] * len(b.leds))[:len(b.leds)]
        for name, value in zip(b.leds, states, strict=True):
            m.d.comb += pin(name).eq(~value if b.leds_active_low else value)
        for name in b.tie_high:
            m.d.comb += pin(name).eq(1)
        return m

    def _dram_side(self, m, pin, bridge, top):
        if self._sdram is None:
            m.submodules.ram = ram = AxiRam(**self._ram_args)
        else:
            m.submodules.ram = ram = self._sdram
            sd = ram.sdram
            m.submodules.sdram_d = dq = io.Buffer("io", self._sdram_port)
            # The chip samples in the middle of each FPGA cycle (see cgaccel.synth.sdram): its
            # clock is the inverted FPGA clock (low in the first half of a cycle).
            if self._oddr_clock:
                m.submodules.sdram_clk_oddr = Instance(
                    "ODDRX1F", i_D0=Const(0, 1), i_D1=Const(1, 1), i_SCLK=ClockSignal(),
                    i_RST=Const(0, 1), o_Q=pin("sdram_clk"))
            else:
                m.d.comb += pin("sdram_clk").eq(~ClockSignal())
            m.d.comb += [pin("sdram_cke").eq(sd.cke),
                         pin("sdram_csn").eq(sd.cs_n), pin("sdram_rasn").eq(sd.ras_n),
                         pin("sdram_casn").eq(sd.cas_n), pin("sdram_wen").eq(sd.we_n),
                         pin("sdram_a").eq(sd.a), pin("sdram_ba").eq(sd.ba),
                         pin("sdram_dqm").eq(sd.dqm), dq.o.eq(sd.dq_o), dq.oe.eq(sd.dq_oe),
                         sd.dq_i.eq(dq.i)]
        self._ram = ram
        wiring.connect(m, bridge.mem, ram.lite)
        wiring.connect(m, top.m_axi, ram.axi)


def _decode_error(m, bus):
    """Answer every access on the AXI4-Lite ``bus`` (a manager port) with DECERR."""
    wrote, read = Signal(), Signal()
    m.d.comb += [bus.awready.eq(~wrote & bus.wvalid), bus.wready.eq(~wrote & bus.awvalid),
                 bus.bvalid.eq(wrote), bus.bresp.eq(RESP_DECERR),
                 bus.arready.eq(~read), bus.rvalid.eq(read), bus.rresp.eq(RESP_DECERR)]
    with m.If(bus.awvalid & bus.wvalid & ~wrote):
        m.d.sync += wrote.eq(1)
    with m.Elif(bus.bready):
        m.d.sync += wrote.eq(0)
    with m.If(bus.arvalid & ~read):
        m.d.sync += read.eq(1)
    with m.Elif(bus.rready):
        m.d.sync += read.eq(0)
