"""Behavioural model of a 16-bit SDR SDRAM chip, the judge of an SDRAM controller in simulation.

:class:`SdramModel` stands for a single-data-rate SDRAM like the ISSI IS42S16160 or the Micron
MT48LC16M16A2 (16-bit data, 2 or 4 banks) in an Amaranth simulation. It stores and returns data
like the chip and raises :class:`SdramProtocolError` (an :class:`AssertionError`) on the first
protocol or timing violation, with a message that names the rule, the cycle and the values, e.g.
``tRCD violated: READ to bank 1 at cycle 812, 1 cycle(s) after its ACTIVE at 811, needs 2``.

Cycles
------
The controller's pins are registered outputs in the ``sync`` domain. *Cycle k* is the clock period
right after the k-th rising edge of the clock since the simulation started (the first edge starts
cycle 1); the values the pins hold in it are the command of cycle k (the real chip, clocked by the
inverted FPGA clock, samples them in the middle of the cycle). :meth:`SdramModel.run` is an
Amaranth testbench: after each ``await ctx.tick()`` it reads the pins, checks and executes the
command, and sets ``dq_i`` for the cycle. All timing parameters are in cycles and a rule
"X -> Y needs t" means ``cycle(Y) - cycle(X) >= t``.

Commands (``cs_n`` low; ``ras_n cas_n we_n``): NOP 111, ACTIVE 011, READ 101, WRITE 100,
BURST TERMINATE 110, PRECHARGE 010 (A10 = all banks), AUTO REFRESH 001, LOAD MODE REGISTER 000.
``cs_n`` high is a deselect (a NOP).

Data
----
- WRITE in cycle k: word j of the burst is taken from ``dq_o`` in cycle k + j; ``dqm`` of the same
  cycle masks its bytes (bit 0 the low byte, bit 1 the high byte; write DQM latency 0). A word with
  a byte to write needs ``dq_oe`` high.
- READ in cycle k with CAS latency CL: word j is on ``dq_i`` in cycle k + CL + j, so the
  controller's register that samples ``dq_i`` holds it in cycle k + CL + j + 1. A byte whose
  ``dqm`` bit was high in cycle k + CL + j - 2 is not driven (read DQM latency 2).
- Whenever the chip does not drive a byte, ``dq_i`` carries seeded pseudo-random garbage, chosen
  to differ from the read data of the neighbouring cycles, so that a controller sampling one cycle
  early or late gets wrong data rather than a stale right value. Words never written read as
  seeded garbage too (fixed per address), not as zeros.
- Bursts of 1, 2, 4 or 8 words, sequential or interleaved, within the burst-aligned block of
  columns; write burst mode "single location" (mode bit 9). A READ, WRITE, BURST TERMINATE or a
  PRECHARGE of the burst's bank interrupts a burst as on the chip: read data stops CL cycles after
  a READ, BURST TERMINATE or PRECHARGE (so a PRECHARGE right after a 1-word READ keeps its data);
  write data stops at the interrupting command; a WRITE stops read data after its own cycle.
- Byte addresses (:func:`split_address`): the 16-bit word at byte address ``a`` is word ``a >> 1``
  of the chip, whose low ``col_bits`` bits are the column, the next ``bank_bits`` the bank and the
  rest the row, so consecutive rows rotate through the banks. Byte ``a`` with ``a`` even is the low
  byte (``dq[7:0]``).

Checks
------
- Initialisation: only NOP/deselect in cycles 1 to ``init_cycles``, with CKE high from cycle
  ``init_cycles`` on (the chip registers CKE a cycle ahead of a command); then a PRECHARGE ALL,
  then at least two AUTO REFRESH and a LOAD MODE REGISTER in either order before any ACTIVE, READ,
  WRITE or BURST TERMINATE. CKE low afterwards raises (power-down and self refresh are not
  modelled).
- Per bank: tRCD (ACTIVE -> READ/WRITE), tRAS (ACTIVE -> PRECHARGE), tRC (ACTIVE -> ACTIVE), tRP
  (PRECHARGE or start of auto precharge -> ACTIVE), tWR (last written data -> PRECHARGE); tRRD
  (ACTIVE -> ACTIVE of another bank, 1 unless given); ACTIVE to an open bank, READ/WRITE to a bank
  without an open row, any command to a bank whose auto precharge has not started yet.
- Auto precharge: the bank starts precharging as if an explicit PRECHARGE came at the earliest
  legal cycle, as the data sheets say: BL cycles after a READ (when the burst is interrupted by a
  READ/WRITE to another bank: at that command), tWR after the last data of a WRITE (interrupted:
  tWR after the interrupting command), and never before tRAS since the ACTIVE. BURST TERMINATE of
  an auto-precharge burst raises.
- All banks: AUTO REFRESH and LOAD MODE REGISTER need every bank idle (no open row, tRP elapsed);
  tRFC (AUTO REFRESH -> any command) and tMRD (LOAD MODE REGISTER -> any command). The mode
  register must hold a supported mode (CAS latency 2 or 3, burst length 1/2/4/8, standard
  operation, reserved bits and BA zero) and may not change while read data is still due.
- Refresh: no more than ``refresh_cycles`` cycles from the end of the power-up wait (cycle
  ``init_cycles``) to the first AUTO REFRESH or between two of them; checked every cycle, so it
  raises in the first cycle past the limit (and by :meth:`SdramModel.check_refresh` /
  :meth:`SdramModel.finish` after the simulation).
- Data bus: ``dq_oe`` high in a cycle in which the chip drives a byte (bus contention, which also
  catches read-to-write and write-to-read turnaround errors); a WRITE that cuts off read data due
  after its own cycle needs DQM high (``0b11``) in the cycle before it (data sheet rule); written
  bytes need ``dq_oe`` high.

Stricter than the chip: a PRECHARGE to an idle or precharging bank restarts its tRP (the chip
ignores it, but a controller that sends it believes the bank needs it, so it must wait). Not
checked: analogue timing (setup/hold, tAC, tOH, tHZ/tLZ and whether the inverted clock meets
them), tRAS max (implied by the refresh rule), tXSR, tCCD (1 cycle), the 8192-refreshes-in-64-ms
budget (a fixed maximum gap is required instead), data decay (a missed refresh raises instead),
full-page bursts, CAS latency 1, extended mode registers, power-down, self refresh, clock
suspend, x4/x8/x32 parts.
"""

import random
from collections import Counter
from dataclasses import dataclass

__all__ = ["SdramMode", "SdramModel", "SdramProtocolError", "join_address", "split_address"]

WORD_BITS = 16
_WORD_MASK = (1 << WORD_BITS) - 1

# ras_n, cas_n, we_n (with cs_n low) -> command name; also the keys of ``SdramModel.counts``.
_COMMANDS = {
    0b111: "NOP", 0b011: "ACTIVE", 0b101: "READ", 0b100: "WRITE", 0b110: "BURST TERMINATE",
    0b010: "PRECHARGE", 0b001: "AUTO REFRESH", 0b000: "LOAD MODE REGISTER",
}
_BURST_CODES = {0: 1, 1: 2, 2: 4, 3: 8}


class SdramProtocolError(AssertionError):
    """A controller broke an SDRAM protocol or timing rule; the message names rule and cycle."""


def _check_int(name, value, lo, hi=None):
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if value < lo:
        raise ValueError(f"{name} must be at least {lo}, not {value}")
    if hi is not None and value > hi:
        raise ValueError(f"{name} must be at most {hi}, not {value}")


def _check_geometry(row_bits, col_bits, bank_bits):
    _check_int("row_bits", row_bits, 11)   # A10 must exist: auto precharge / all banks
    _check_int("col_bits", col_bits, 1, 10)  # columns live below A10
    _check_int("bank_bits", bank_bits, 1, 2)  # SDR parts have 2 or 4 banks


def split_address(byte_addr, *, row_bits=13, col_bits=9, bank_bits=2):
    """Bank, row and column of the 16-bit word at a byte address (the controller's address map).

    ``byte_addr = ((row << (bank_bits + col_bits)) | (bank << col_bits) | col) << 1``: the low
    ``col_bits`` bits of the word address are the column, the next ``bank_bits`` the bank and the
    rest the row, so consecutive rows of a long transfer rotate through the banks.

    Parameters
    ----------
    byte_addr : int
        Even byte address below ``2 << (row_bits + bank_bits + col_bits)`` (the chip's size).
    row_bits, col_bits, bank_bits : int
        Chip geometry (defaults: IS42S16160 / MT48LC16M16, 32 MiB).

    Returns
    -------
    tuple of int
        ``(bank, row, col)``.

    Raises
    ------
    TypeError, ValueError
        If the address is not an integer, is odd or is outside the chip.
    """
    _check_geometry(row_bits, col_bits, bank_bits)
    size = 2 << (row_bits + bank_bits + col_bits)
    _check_int("SDRAM byte address", byte_addr, 0, size - 1)
    if byte_addr & 1:
        raise ValueError(f"SDRAM byte address must be even (word aligned), not {byte_addr:#x}")
    word = byte_addr >> 1
    col = word & ((1 << col_bits) - 1)
    bank = (word >> col_bits) & ((1 << bank_bits) - 1)
    row = word >> (col_bits + bank_bits)
    return bank, row, col


def join_address(bank, row, col, *, row_bits=13, col_bits=9, bank_bits=2):
    """Byte address of the word at ``(bank, row, col)``: the inverse of :func:`split_address`."""
    _check_geometry(row_bits, col_bits, bank_bits)
    _check_int("bank", bank, 0, (1 << bank_bits) - 1)
    _check_int("row", row, 0, (1 << row_bits) - 1)
    _check_int("col", col, 0, (1 << col_bits) - 1)
    return ((row << (bank_bits + col_bits)) | (bank << col_bits) | col) << 1


@dataclass(frozen=True)
class SdramMode:
    """Decoded mode register.

    Attributes
    ----------
    cas_latency : int
        Cycles from a READ to its first data word on the pins (2 or 3).
    burst_length : int
        Words per READ, and per WRITE unless ``single_write`` (1, 2, 4 or 8).
    interleaved : bool
        Interleaved rather than sequential burst order (mode bit 3).
    single_write : bool
        Write burst mode "single location" (mode bit 9): every WRITE moves one word.
    """

    cas_latency: int
    burst_length: int = 1
    interleaved: bool = False
    single_write: bool = False

    @property
    def write_burst_length(self):
        """Words per WRITE."""
        return 1 if self.single_write else self.burst_length

    def encode(self):
        """The address-bus value of a LOAD MODE REGISTER that sets this mode (BA = 0)."""
        codes = {v: k for k, v in _BURST_CODES.items()}
        if self.burst_length not in codes:
            raise ValueError(f"burst length must be 1, 2, 4 or 8, not {self.burst_length!r}")
        _check_int("CAS latency", self.cas_latency, 0, 7)
        return (codes[self.burst_length] | int(self.interleaved) << 3 | self.cas_latency << 4
                | int(self.single_write) << 9)

    @classmethod
    def decode(cls, word):
        """The mode set by address-bus value ``word``; ValueError if the model cannot do it."""
        bl_code, cl = word & 7, (word >> 4) & 7
        if bl_code == 7:
            raise ValueError("full-page bursts are not supported")
        if bl_code not in _BURST_CODES:
            raise ValueError(f"burst length code {bl_code} is reserved")
        if cl not in (2, 3):
            raise ValueError(f"CAS latency must be 2 or 3, not {cl}")
        if (word >> 7) & 3:
            raise ValueError(f"operating mode (A8:A7) must be 0 (standard), not {(word >> 7) & 3}")
        if word >> 10:
            raise ValueError(f"reserved bits A10 and up must be 0, not {word >> 10:#x}")
        return cls(cas_latency=cl, burst_length=_BURST_CODES[bl_code],
                   interleaved=bool(word >> 3 & 1), single_write=bool(word >> 9 & 1))


class _Bank:
    """Timing state of one bank (cycles; None: never happened)."""

    __slots__ = ("row", "act", "pre", "pre_src", "ap", "ap_cmd", "last_wr")

    def __init__(self):
        self.row = None       # open row
        self.act = None       # cycle of the last ACTIVE
        self.pre = None       # cycle the last precharge began (explicit or auto)
        self.pre_src = None   # what began it, for messages
        self.ap = None        # cycle a pending auto precharge will begin
        self.ap_cmd = None    # (command, cycle) that asked for it
        self.last_wr = None   # last cycle data was written into the open row


class _Burst:
    """One READ or WRITE whose words are still due."""

    __slots__ = ("kind", "bank", "row", "cycle", "ap")

    def __init__(self, kind, bank, row, cycle, ap):
        self.kind, self.bank, self.row, self.cycle, self.ap = kind, bank, row, cycle, ap


def _mix64(x):
    # SplitMix64 finaliser: a fixed "power-up content" per address without storing it.
    x = (x + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return x ^ (x >> 31)


class SdramModel:
    """Cycle-level SDR SDRAM chip that checks every command of the controller driving it.

    Add :meth:`run` to a simulator with ``sim.add_testbench(model.run, background=True)`` before
    the simulation starts (the model counts cycles from the first clock edge).

    Parameters
    ----------
    pins : object
        The controller's side of the chip's pins, as attributes (e.g. a wiring interface):
        controller outputs ``cke``, ``cs_n``, ``ras_n``, ``cas_n``, ``we_n`` (1 bit each), ``ba``
        (``bank_bits``), ``a`` (``row_bits``), ``dqm`` (2), ``dq_o`` (16), ``dq_oe`` (1), all
        registered in the ``sync`` domain; and ``dq_i`` (16), which the model drives.
    row_bits, col_bits, bank_bits : int
        Geometry: ``row_bits`` >= 11 (A10 is the auto-precharge bit), ``col_bits`` <= 10,
        ``bank_bits`` 1 or 2. Defaults: IS42S16160 / MT48LC16M16 (8192 rows, 512 columns, 4 banks).
    t_rcd, t_rp, t_ras, t_rc, t_wr, t_rfc, t_mrd : int
        Minimum spacings in cycles (at least 1): ACTIVE -> READ/WRITE, PRECHARGE -> ACTIVE (and
        -> AUTO REFRESH / LOAD MODE REGISTER), ACTIVE -> PRECHARGE, ACTIVE -> ACTIVE of one bank,
        last write data -> PRECHARGE, AUTO REFRESH -> any command, LOAD MODE REGISTER -> any
        command.
    refresh_cycles : int
        Longest allowed gap between AUTO REFRESH commands (e.g. 7.8 us worth of cycles).
    init_cycles : int
        Power-up wait: cycles 1 to ``init_cycles`` must be NOPs or deselects.
    t_rrd : int
        ACTIVE -> ACTIVE of another bank (default 1: not constrained).
    seed : int
        Seed of the garbage on undriven data pins and in never-written words.

    Attributes
    ----------
    cycle : int
        The cycle whose command was checked last (0 before the first edge).
    counts : collections.Counter
        Commands seen, by name: ``"NOP"`` (cs_n low), ``"DESELECT"`` (cs_n high), ``"ACTIVE"``,
        ``"READ"``, ``"WRITE"``, ``"BURST TERMINATE"``, ``"PRECHARGE"`` (single bank and all),
        ``"AUTO REFRESH"``, ``"LOAD MODE REGISTER"``.
    words_read, words_written : int
        Data words the chip drove (not fully masked) and stored (at least one byte).
    last_refresh_gap_max : int or None
        Longest gap seen so far, in cycles, from the end of the power-up wait to the first
        AUTO REFRESH and between consecutive ones (None before the first).
    memory : dict
        ``(bank, row, col) -> 16-bit word`` for every word written (by the controller or through
        :meth:`write_word` / :meth:`load`).
    mode : SdramMode or None
        The mode register (None until loaded).
    initialised : bool
        The init sequence is complete: ACTIVE is allowed.
    """

    _OUTPUTS = {"cke": 1, "cs_n": 1, "ras_n": 1, "cas_n": 1, "we_n": 1, "dqm": 2,
                "dq_o": WORD_BITS, "dq_oe": 1}

    def __init__(self, pins, *, row_bits=13, col_bits=9, bank_bits=2, t_rcd, t_rp, t_ras,
                 t_rc, t_wr, t_rfc, t_mrd, refresh_cycles, init_cycles, t_rrd=1, seed=0):
        _check_geometry(row_bits, col_bits, bank_bits)
        for name, value in (("t_rcd", t_rcd), ("t_rp", t_rp), ("t_ras", t_ras), ("t_rc", t_rc),
                            ("t_wr", t_wr), ("t_rfc", t_rfc), ("t_mrd", t_mrd),
                            ("t_rrd", t_rrd), ("refresh_cycles", refresh_cycles)):
            _check_int(name, value, 1)
        _check_int("init_cycles", init_cycles, 0)
        _check_int("seed", seed, 0)
        widths = dict(self._OUTPUTS, ba=bank_bits, a=row_bits, dq_i=WORD_BITS)
        for name, width in widths.items():
            if not hasattr(pins, name):
                raise TypeError(f"pins must have a {name!r} signal, not be a "
                                f"{type(pins).__name__} without one")
            if len(getattr(pins, name)) != width:
                raise ValueError(f"pins.{name} must be {width} bit(s) wide, not "
                                 f"{len(getattr(pins, name))}")
        self._pins = pins
        self.row_bits, self.col_bits, self.bank_bits = row_bits, col_bits, bank_bits
        self.t_rcd, self.t_rp, self.t_ras, self.t_rc = t_rcd, t_rp, t_ras, t_rc
        self.t_wr, self.t_rfc, self.t_mrd, self.t_rrd = t_wr, t_rfc, t_mrd, t_rrd
        self.refresh_cycles, self.init_cycles, self.seed = refresh_cycles, init_cycles, seed

        self.cycle = 0
        self.counts = Counter({name: 0 for name in (*_COMMANDS.values(), "DESELECT")})
        self.words_read = self.words_written = 0
        self.last_refresh_gap_max = None
        self.memory = {}
        self.mode = None
        self.initialised = False

        self._banks = [_Bank() for _ in range(1 << bank_bits)]
        self._rng = random.Random(seed)
        self._rd = {}         # data cycle -> (_Burst, col) of read words due
        self._wr = {}         # data cycle -> (_Burst, col) of write words due
        self._driven = {}     # cycle -> word the chip drove, for choosing garbage that differs
        self._dqm = [0] * 4   # dqm of the last cycles, by cycle & 3 (read DQM latency is 2)
        self._last_act = None  # (cycle, bank) of the last ACTIVE, for tRRD
        self._last_ref = None  # cycle of the last AUTO REFRESH, for tRFC
        self._last_lmr = None  # cycle of the last LOAD MODE REGISTER, for tMRD
        self._ref_point = init_cycles  # the refresh interval runs from here
        self._init_pall = False  # the PRECHARGE ALL that starts initialisation came
        self._init_refreshes = 0

    # -- address map and backdoor ------------------------------------------------------------

    @property
    def size_bytes(self):
        """The chip's size in bytes."""
        return 2 << (self.row_bits + self.bank_bits + self.col_bits)

    def _geometry(self):
        return dict(row_bits=self.row_bits, col_bits=self.col_bits, bank_bits=self.bank_bits)

    def split_address(self, byte_addr):
        """``(bank, row, col)`` of an even byte address: :func:`split_address` for this chip."""
        return split_address(byte_addr, **self._geometry())

    def join_address(self, bank, row, col):
        """Byte address of ``(bank, row, col)``: :func:`join_address` for this chip."""
        return join_address(bank, row, col, **self._geometry())

    def _peek(self, key):
        word = self.memory.get(key)
        if word is None:
            bank, row, col = key
            index = (row << (self.bank_bits + self.col_bits)) | (bank << self.col_bits) | col
            word = _mix64(self.seed << 32 ^ index) & _WORD_MASK
        return word

    def read_word(self, byte_addr):
        """The 16-bit word at an even byte address (seeded garbage if never written)."""
        return self._peek(self.split_address(byte_addr))

    def write_word(self, byte_addr, value):
        """Store a 16-bit word at an even byte address, bypassing the pins."""
        _check_int("SDRAM word", value, 0, _WORD_MASK)
        self.memory[self.split_address(byte_addr)] = value

    def _check_range(self, byte_addr, n):
        _check_int("SDRAM byte address", byte_addr, 0)
        _check_int("SDRAM byte count", n, 0)
        if byte_addr + n > self.size_bytes:
            raise ValueError(f"SDRAM range must lie within the {self.size_bytes}-byte chip, not "
                             f"{byte_addr:#x}+{n}")

    def load(self, byte_addr, data):
        """Store bytes from ``byte_addr`` on (any alignment; even addresses are low bytes)."""
        data = bytes(data)
        self._check_range(byte_addr, len(data))
        for i, byte in enumerate(data):
            addr = byte_addr + i
            key = self.split_address(addr & ~1)
            shift = 8 * (addr & 1)
            self.memory[key] = self._peek(key) & ~(0xFF << shift) | byte << shift

    def dump(self, byte_addr, n):
        """``n`` bytes from ``byte_addr`` on (garbage where never written)."""
        self._check_range(byte_addr, n)
        out = bytearray(n)
        for i in range(n):
            addr = byte_addr + i
            out[i] = (self._peek(self.split_address(addr & ~1)) >> 8 * (addr & 1)) & 0xFF
        return bytes(out)

    # -- simulation --------------------------------------------------------------------------

    async def run(self, ctx):
        """Testbench: each cycle, read the command, check it, execute it and drive ``dq_i``.

        Runs forever; add it with ``background=True``. It awaits exactly one ``ctx.tick()`` per
        cycle, so ``cycle`` stays the number of clock edges since the simulation started.
        """
        p = self._pins
        outputs = [getattr(p, name) for name in
                   ("cke", "cs_n", "ras_n", "cas_n", "we_n", "ba", "a", "dqm", "dq_o", "dq_oe")]
        while True:
            await ctx.tick()
            ctx.set(p.dq_i, self._step(*(ctx.get(s) for s in outputs)))

    def check_refresh(self, now=None):
        """Raise if more than ``refresh_cycles`` have passed without an AUTO REFRESH.

        Parameters
        ----------
        now : int, optional
            The cycle to check at (default: the last cycle seen, :attr:`cycle`).
        """
        now = self.cycle if now is None else now
        gap = now - self._ref_point
        if gap > self.refresh_cycles:
            since = ("the end of the power-up wait" if self.counts["AUTO REFRESH"] == 0
                     else "the last AUTO REFRESH")
            raise SdramProtocolError(
                f"refresh interval exceeded at cycle {now}: {gap} cycle(s) since {since} at "
                f"{self._ref_point}, needs at most {self.refresh_cycles}")

    def finish(self):
        """Final checks once the simulation is over (the refresh interval so far)."""
        self.check_refresh()

    def _fail(self, message):
        raise SdramProtocolError(message)

    def _need(self, rule, now, since, need, what, ref):
        # The common form of a minimum-spacing rule and its message.
        if since is not None and now - since < need:
            self._fail(f"{rule} violated: {what} at cycle {now}, {now - since} cycle(s) after "
                       f"{ref} at {since}, needs {need}")

    def _step(self, cke, cs_n, ras_n, cas_n, we_n, ba, a, dqm, dq_o, dq_oe):
        self.cycle += 1
        c = self.cycle
        self._dqm[c & 3] = dqm
        for bank in self._banks:
            if bank.ap is not None and bank.ap <= c:
                bank.row, bank.pre, bank.pre_src, bank.ap = None, bank.ap, "auto precharge", None
        name = "DESELECT" if cs_n else _COMMANDS[ras_n << 2 | cas_n << 1 | we_n]
        self.counts[name] += 1
        if not cke and c >= self.init_cycles:
            self._fail(f"CKE low at cycle {c}: CKE must stay high from the end of the power-up "
                       f"wait (cycle {self.init_cycles}) on; power-down, self refresh and clock "
                       f"suspend are not supported")
        self.check_refresh(c)
        if name not in ("NOP", "DESELECT"):
            self._check_sequence(c, name, a)
            self._need("tRFC", c, self._last_ref, self.t_rfc, name, "AUTO REFRESH")
            self._need("tMRD", c, self._last_lmr, self.t_mrd, name, "LOAD MODE REGISTER")
            if name == "ACTIVE":
                self._activate(c, ba, a)
            elif name in ("READ", "WRITE"):
                self._column(c, name, ba, a)
            elif name == "PRECHARGE":
                self._precharge(c, ba, a)
            elif name == "AUTO REFRESH":
                self._refresh(c)
            elif name == "LOAD MODE REGISTER":
                self._load_mode(c, ba, a)
            else:
                self._interrupt(c, name, None)
        self._write_data(c, dqm, dq_o, dq_oe)
        return self._read_data(c, dq_oe)

    def _check_sequence(self, c, name, a):
        if c <= self.init_cycles:
            self._fail(f"initialisation: {name} at cycle {c} during the power-up wait (only "
                       f"NOP/deselect until cycle {self.init_cycles})")
        if not self._init_pall and not (name == "PRECHARGE" and a >> 10 & 1):
            self._fail(f"initialisation: {name} at cycle {c} before the PRECHARGE ALL that "
                       f"starts the init sequence")
        if not self.initialised and name in ("ACTIVE", "READ", "WRITE", "BURST TERMINATE"):
            self._fail(f"initialisation: {name} at cycle {c} before the init sequence is "
                       f"complete (needs PRECHARGE ALL, 2 AUTO REFRESH and LOAD MODE REGISTER; "
                       f"has {self._init_refreshes} AUTO REFRESH, mode register "
                       f"{'loaded' if self.mode else 'not loaded'})")

    def _update_init(self):
        self.initialised = (self._init_pall and self._init_refreshes >= 2
                            and self.mode is not None)

    def _activate(self, c, ba, row):
        bank = self._banks[ba]
        if bank.ap is not None:
            self._fail(f"ACTIVE to bank {ba} at cycle {c} before the auto precharge of its "
                       f"{bank.ap_cmd[0]} at {bank.ap_cmd[1]} starts (at {bank.ap})")
        if bank.row is not None:
            self._fail(f"ACTIVE to bank {ba} at cycle {c} while row {bank.row} is open "
                       f"(ACTIVE at {bank.act}): precharge it first")
        self._need("tRP", c, bank.pre, self.t_rp, f"ACTIVE to bank {ba}", f"its {bank.pre_src}")
        self._need("tRC", c, bank.act, self.t_rc, f"ACTIVE to bank {ba}", "its previous ACTIVE")
        if self._last_act is not None and self._last_act[1] != ba:
            self._need("tRRD", c, self._last_act[0], self.t_rrd, f"ACTIVE to bank {ba}",
                       f"the ACTIVE to bank {self._last_act[1]}")
        bank.row, bank.act, bank.last_wr = row, c, None
        self._last_act = (c, ba)

    def _burst_cols(self, col, length):
        # Burst order within the burst-aligned block of columns.
        base, off = col & ~(length - 1), col & (length - 1)
        if self.mode.interleaved:
            return [base | (off ^ j) for j in range(length)]
        return [base | ((off + j) & (length - 1)) for j in range(length)]

    def _column(self, c, name, ba, a):
        bank = self._banks[ba]
        if bank.ap is not None:
            self._fail(f"{name} to bank {ba} at cycle {c} while the auto precharge of its "
                       f"{bank.ap_cmd[0]} at {bank.ap_cmd[1]} is pending")
        if bank.row is None:
            self._fail(f"{name} to bank {ba} at cycle {c} with no open row (last "
                       f"{bank.pre_src or 'PRECHARGE'} at {bank.pre}): ACTIVE it first")
        self._need("tRCD", c, bank.act, self.t_rcd, f"{name} to bank {ba}", "its ACTIVE")
        self._interrupt(c, name, None)
        ap = bool(a >> 10 & 1)
        burst = _Burst(name, ba, bank.row, c, ap)
        col = a & ((1 << self.col_bits) - 1)
        if name == "READ":
            length = self.mode.burst_length
            for j, cj in enumerate(self._burst_cols(col, length)):
                self._rd[c + self.mode.cas_latency + j] = (burst, cj)
            start = c + length
        else:
            length = self.mode.write_burst_length
            for j, cj in enumerate(self._burst_cols(col, length)):
                self._wr[c + j] = (burst, cj)
            start = c + length - 1 + self.t_wr
        if ap:
            # The chip delays an auto precharge until tRAS is met (data sheets: "as if an
            # explicit PRECHARGE was issued at the earliest possible time without violating
            # tRAS"), so a short tRAS here is not an error.
            bank.ap, bank.ap_cmd = max(start, bank.act + self.t_ras), (name, c)

    def _interrupt(self, c, name, banks):
        """Cut the bursts that command ``name`` at cycle ``c`` interrupts.

        ``banks``: for a PRECHARGE, the banks it closes (only their bursts stop); None for
        READ, WRITE and BURST TERMINATE, which stop any burst.
        """
        cut = set()
        cl = self.mode.cas_latency if self.mode else 0
        # Read data stops CL cycles after the command (the pipeline keeps what it has), or
        # right after a WRITE, whose data then owns the bus.
        first = c + 1 if name == "WRITE" else c + cl
        for d in [d for d, (b, _) in self._rd.items()
                  if d >= first and (banks is None or b.bank in banks)]:
            burst, _ = self._rd.pop(d)
            cut.add(burst)
            if name == "WRITE" and self._dqm[(c - 1) & 3] != 0b11:
                self._fail(f"read-to-write: WRITE at cycle {c} cuts off data of the READ at "
                           f"cycle {burst.cycle} due at cycle {d}; DQM must be 0b11 in cycle "
                           f"{c - 1}, was {self._dqm[(c - 1) & 3]:#04b} (data sheet: the chip "
                           f"only releases the bus then)")
        for d in [d for d, (b, _) in self._wr.items()
                  if d >= c and (banks is None or b.bank in banks)]:
            burst, _ = self._wr.pop(d)
            cut.add(burst)
        for burst in sorted(cut, key=lambda b: b.cycle):
            if not burst.ap:
                continue
            if name not in ("READ", "WRITE"):
                self._fail(f"{name} at cycle {c} interrupts the {burst.kind} with auto "
                           f"precharge to bank {burst.bank} at cycle {burst.cycle}")
            # Concurrent auto precharge: the cut bank starts precharging at the interrupting
            # command (a write: tWR after it), still not before tRAS.
            bank = self._banks[burst.bank]
            start = c if burst.kind == "READ" else c + self.t_wr
            bank.ap = max(min(bank.ap, start), bank.act + self.t_ras)

    def _precharge(self, c, ba, a):
        every = bool(a >> 10 & 1)
        name = "PRECHARGE ALL" if every else "PRECHARGE"
        targets = range(len(self._banks)) if every else [ba]
        for i in targets:
            bank = self._banks[i]
            if bank.ap is not None:
                self._fail(f"{name} at cycle {c} to bank {i} before the auto precharge of its "
                           f"{bank.ap_cmd[0]} at {bank.ap_cmd[1]} starts (at {bank.ap})")
            if bank.row is not None:
                what = f"{name} of bank {i}"
                self._need("tRAS", c, bank.act, self.t_ras, what, "its ACTIVE")
                self._need("tWR", c, bank.last_wr, self.t_wr, what, "its last write data")
        self._interrupt(c, "PRECHARGE", set(targets))
        for i in targets:
            bank = self._banks[i]
            bank.row, bank.pre, bank.pre_src, bank.last_wr = None, c, name, None
        if every:
            self._init_pall = True

    def _check_idle(self, c, name):
        for i, bank in enumerate(self._banks):
            if bank.row is not None:
                self._fail(f"{name} at cycle {c} with bank {i} not idle: row {bank.row} open "
                           f"(ACTIVE at {bank.act})")
            self._need("tRP", c, bank.pre, self.t_rp, name, f"bank {i}'s {bank.pre_src}")

    def _refresh(self, c):
        self._check_idle(c, "AUTO REFRESH")
        gap = c - self._ref_point
        self.last_refresh_gap_max = max(gap, self.last_refresh_gap_max or 0)
        self._ref_point = self._last_ref = c
        if not self.initialised:
            self._init_refreshes += 1
            self._update_init()

    def _load_mode(self, c, ba, a):
        self._check_idle(c, "LOAD MODE REGISTER")
        due = [d for d in self._rd if d >= c]
        if due:
            self._fail(f"LOAD MODE REGISTER at cycle {c} while read data is still due (cycle "
                       f"{min(due)})")
        if ba:
            self._fail(f"mode register: LOAD MODE REGISTER at cycle {c} with BA={ba}: BA must be "
                       f"0 (extended mode registers are not supported)")
        try:
            self.mode = SdramMode.decode(a)
        except ValueError as e:
            raise SdramProtocolError(f"mode register: LOAD MODE REGISTER at cycle {c} with "
                                     f"A={a:#x}: {e}") from None
        self._last_lmr = c
        if not self.initialised:
            self._update_init()

    def _write_data(self, c, dqm, dq_o, dq_oe):
        due = self._wr.pop(c, None)
        if due is None:
            return
        burst, col = due
        enable = ~dqm & 3
        if not enable:
            return
        if not dq_oe:
            self._fail(f"WRITE data: dq_oe is 0 in cycle {c}, which carries data of the WRITE at "
                       f"cycle {burst.cycle} (bank {burst.bank}, column {col}) with dqm="
                       f"{dqm:#04b}: the chip would store a floating bus")
        key = (burst.bank, burst.row, col)
        keep = (0xFF if dqm & 1 else 0) | (0xFF00 if dqm & 2 else 0)
        self.memory[key] = self._peek(key) & keep | dq_o & ~keep & _WORD_MASK
        self._banks[burst.bank].last_wr = c
        self.words_written += 1

    def _garbage(self, avoid):
        while True:
            value = self._rng.getrandbits(WORD_BITS)
            if value not in avoid:
                return value

    def _read_data(self, c, dq_oe):
        self._driven.pop(c - 2, None)
        # Garbage differs from the data of the cycles around, so that sampling a cycle early or
        # late is caught. (The next cycle's READ word, if any, is already known here.)
        avoid = {self._driven.get(c - 1)}
        nxt = self._rd.get(c + 1)
        if nxt is not None:
            avoid.add(self._peek((nxt[0].bank, nxt[0].row, nxt[1])))
        due = self._rd.pop(c, None)
        if due is None:
            return self._garbage(avoid)
        burst, col = due
        word = self._peek((burst.bank, burst.row, col))
        masked = self._dqm[(c - 2) & 3]
        drive = (0 if masked & 1 else 0xFF) | (0 if masked & 2 else 0xFF00)
        if not drive:
            return self._garbage(avoid | {word})
        if dq_oe:
            self._fail(f"bus contention at cycle {c}: dq_oe is 1 while the chip drives data of "
                       f"the READ at cycle {burst.cycle} (bank {burst.bank}, column {col}; DQM "
                       f"{masked:#04b} in cycle {c - 2})")
        # Masked bytes differ from the stored ones, or a test of read DQM would prove nothing.
        value = self._garbage(avoid | {word})
        while (value ^ word) & ~drive & 0xFF == 0 and masked & 1 or (
                (value ^ word) & ~drive & 0xFF00 == 0 and masked & 2):
            value = self._garbage(avoid | {word})
        value = word & drive | value & ~drive & _WORD_MASK
        self._driven[c] = value
        self.words_read += 1
        return value
