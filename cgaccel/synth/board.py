"""Board designs: the accelerator top made loadable on a real board.

The top's AXI ports cannot go to pins. On the board the host reaches the accelerator through the
board's USB UART (:class:`~cgaccel.synth.bridge.UartAxiLiteBridge`), and the accelerator's AXI4
master is served by an on-chip RAM standing in for DRAM (:class:`~cgaccel.synth.dram.AxiRam`),
which the host also reads and writes through the bridge::

    USB UART --> UARTRx --> bridge --regs--> Top.s_axil        Top.m_axi --> AxiRam.axi
    USB UART <-- UARTTx <--        --mem---------------------------------> AxiRam.lite
                                                                Top.irq --> LED 0

Host address map (see :mod:`cgaccel.synth.bridge`): ``0x0000_0000`` accelerator registers,
``0x8000_0000 + a`` RAM byte ``a``, which the accelerator sees at AXI address ``a``.
"""

from dataclasses import dataclass
from importlib import resources

from amaranth.hdl import ClockDomain, ClockSignal, Const, Module, ResetSignal, Signal
from amaranth.lib import wiring
from amaranth.lib.cdc import ResetSynchronizer
from amaranth.lib.wiring import In, Out

from ..config import AccelConfig
from ..regfile import ADDR_WIDTH
from ..top import Top
from .bridge import UartAxiLiteBridge
from .dram import AxiRam, check_ram_args
from .reset import drive_global_reset
from .uart import UARTRx, UARTTx

__all__ = ["Board", "BOARDS", "BoardTop"]


@dataclass(frozen=True)
class Board:
    """Pins and clock of one board (names match its constraint file).

    Parameters
    ----------
    name : str
    clock_mhz : float
        Oscillator frequency; the design runs on it directly (no PLL).
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

    def pins(self):
        """Names of the top-level ports of the board design (all in the constraint file)."""
        return (self.clk, self.rst, self.uart_rx, self.uart_tx) + self.leds + self.tie_high

    def constraints_path(self):
        return resources.files("cgaccel.synth.boards").joinpath(self.constraints)


_ULX3S = dict(clock_mhz=25.0, constraints="ulx3s.lpf", clk="clk_25mhz", rst="btn_fire1",
              rst_active_low=False, uart_rx="ftdi_txd", uart_tx="ftdi_rxd",
              leds=tuple(f"led{i}" for i in range(8)), leds_active_low=False,
              tie_high=("wifi_gpio0",))

BOARDS = {
    # ULX3S: LFE5U-85F or -25F, CABGA381; FT231X USB UART; 25 MHz oscillator.
    "ulx3s-85f": Board("ulx3s-85f", default_dram_bytes=64 * 1024, **_ULX3S),
    "ulx3s-25f": Board("ulx3s-25f", default_dram_bytes=32 * 1024, **_ULX3S),
    # iCEBreaker: iCE40UP5K-SG48; FT2232H channel B UART; 12 MHz oscillator. The RAM is the
    # four SPRAMs (128 KiB), which nothing else uses.
    "icebreaker": Board("icebreaker", clock_mhz=12.0, constraints="icebreaker.pcf", clk="CLK",
                        rst="BTN_N", rst_active_low=True, uart_rx="RX", uart_tx="TX",
                        leds=("LEDR_N", "LEDG_N"), leds_active_low=True, tie_high=(),
                        default_dram_bytes=128 * 1024),
}


class BoardTop(wiring.Component):
    """Loadable board design around :class:`cgaccel.top.Top`.

    Members
    -------
    One ``In(1)``/``Out(1)`` member per board pin used, named as in the constraint file.

    Parameters
    ----------
    config : AccelConfig
    board : Board
    baud : int
        UART baud rate; the clock must give at least 4 cycles per bit.
    dram_bytes : int, optional
        On-chip RAM size (default: the board's).
    global_reset : bool
        Put the synchronised reset on an ECP5 global buffer (``DCCA``, see
        :mod:`cgaccel.synth.reset`); the flow sets it for ECP5 boards. An ``Instance``: the
        design with it can be synthesized, not simulated by Amaranth.
    reset_dcc : str, optional
        With ``global_reset``: the nextpnr bel of its ``DCCA`` (the target's ``reset_dcc``).
    """

    def __init__(self, config, board, *, baud=115200, dram_bytes=None, global_reset=False,
                 reset_dcc=None):
        # A component refused by its constructor is not "created but never used".
        self._MustUse__silence = True
        if not isinstance(config, AccelConfig):
            raise TypeError(f"Config must be an AccelConfig, not {config!r}")
        if not isinstance(board, Board):
            raise TypeError(f"Board must be a Board, not {board!r}")
        if not isinstance(baud, int) or isinstance(baud, bool) or baud <= 0:
            raise ValueError(f"Baud rate must be a positive integer, not {baud!r}")
        self._divisor = round(board.clock_mhz * 1e6 / baud)
        if self._divisor < 4:
            raise ValueError(f"Baud rate must be at most {int(board.clock_mhz * 1e6 / 4)} for "
                             f"the {board.clock_mhz:g} MHz clock of {board.name}, not {baud}")
        if not isinstance(global_reset, bool):
            raise TypeError(f"Global reset must be a bool, not {global_reset!r}")
        if reset_dcc is not None and not (isinstance(reset_dcc, str) and reset_dcc):
            raise TypeError(f"Reset DCC bel must be a bel name or None, not {reset_dcc!r}")
        self._global_reset = global_reset
        self._reset_dcc = reset_dcc
        self._config = config
        self._board = board
        self._baud = baud
        self._dram_bytes = board.default_dram_bytes if dram_bytes is None else dram_bytes
        check_ram_args(self._dram_bytes, config.axi_data_width, config.axi_addr_width)
        self._MustUse__silence = False
        members = {board.clk: In(1), board.rst: In(1), board.uart_rx: In(1, init=1),
                   board.uart_tx: Out(1, init=1)}
        members.update({name: Out(1) for name in board.leds + board.tie_high})
        super().__init__(members)
        self._ram_args = dict(size_bytes=self._dram_bytes, data_width=config.axi_data_width,
                              addr_width=config.axi_addr_width, id_width=config.axi_id_width)

    @property
    def baud(self):
        return self._baud

    @property
    def divisor(self):
        """Clock cycles per UART bit."""
        return self._divisor

    @property
    def dram_bytes(self):
        return self._dram_bytes

    def elaborate(self, platform):
        m = Module()
        b = self._board

        def pin(name):
            return getattr(self, name)

        m.domains.sync = ClockDomain("sync")
        m.d.comb += ClockSignal("sync").eq(pin(b.clk))
        pressed = Signal()
        m.d.comb += pressed.eq(~pin(b.rst) if b.rst_active_low else pin(b.rst))
        if self._global_reset:
            # The synchroniser's output, in a domain of its own on the same clock, is the
            # global buffer's input.
            m.domains.button = ClockDomain("button")
            m.d.comb += ClockSignal("button").eq(pin(b.clk))
            m.submodules.reset_sync = ResetSynchronizer(pressed, domain="button")
            drive_global_reset(m, ResetSignal("button"), bel=self._reset_dcc)
        else:
            m.submodules.reset_sync = ResetSynchronizer(pressed, domain="sync")

        m.submodules.rx = rx = UARTRx(self._divisor)
        m.submodules.tx = tx = UARTTx(self._divisor)
        mem_w = (self._dram_bytes - 1).bit_length()
        m.submodules.bridge = bridge = UartAxiLiteBridge(
            regs_addr_width=ADDR_WIDTH, mem_addr_width=mem_w,
            timeout=16 * 10 * self._divisor)
        m.submodules.top = top = Top(self._config)
        m.submodules.ram = ram = AxiRam(**self._ram_args)

        m.d.comb += [rx.rx.eq(pin(b.uart_rx)), pin(b.uart_tx).eq(tx.tx)]
        wiring.connect(m, rx.o, bridge.rx)
        wiring.connect(m, bridge.tx, tx.i)
        wiring.connect(m, bridge.regs, top.s_axil)
        wiring.connect(m, bridge.mem, ram.lite)
        wiring.connect(m, top.m_axi, ram.axi)

        # Heartbeat: about 1.5 Hz, so a loaded bitstream is visibly alive.
        beat = Signal(int(b.clock_mhz * 1e6).bit_length() - 1)
        m.d.sync += beat.eq(beat + 1)
        states = ([top.irq, beat[-1], bridge.busy] + [Const(0, 1)] * len(b.leds))[:len(b.leds)]
        for name, value in zip(b.leds, states, strict=True):
            m.d.comb += pin(name).eq(~value if b.leds_active_low else value)
        for name in b.tie_high:
            m.d.comb += pin(name).eq(1)
        return m
