"""The register map: the single source for the RTL register file, the C/JSON header and the docs.

Every register is 32 bits wide and word aligned. 64-bit quantities (addresses, counters) are split
into ``_LO``/``_HI`` pairs. Reading a counter's ``_LO`` latches its ``_HI``, so reading ``_LO`` then
``_HI`` gives one coherent 64-bit value. Counters are ``counter_width`` bits wide (``HWCFG1``): the
bits above read 0 and the counter wraps at ``2**counter_width``.
"""

from dataclasses import dataclass

__all__ = ["Reg", "Field", "register_map", "ERRORS", "MAGIC", "VERSION", "hwcfg_values",
           "MAGIC_DIRECT", "direct_register_map", "direct_words", "DIRECT_COUNTERS"]

MAGIC = 0x43474143   # "CGAC"
# The ``host="mmio"`` top (cgaccel.direct) answers with its own magic: its map is another one.
MAGIC_DIRECT = 0x43474144   # "CGAD"
# major.minor in the upper/lower half-words. Minor 1: LOAD ``deal`` (cgaccel.commands); minor
# 2: tile command ``wide`` (older hardware ignores the bit and would read a wide band from one
# half); minor 3: STORE ``deal``, LOAD ``deal`` restarting every iteration, and the tile flag
# ``pdeal`` (cgaccel.commands, docs/engine.md); minor 4: ``deal`` rotates a column per
# iteration (item ``m`` of iteration ``n`` in column ``(m - n) % cols``) and so does the
# engine's ``pdeal`` walk (older hardware writes and reads a dealt tile's outputs elsewhere).
# A driver that emits them needs hardware of at least this minor version.
VERSION = 0x00010004

# Error codes reported in ERROR.code. Zero is no error.
ERRORS = {
    "none": 0,
    "dram_read": 1,        # SLVERR/DECERR on a read response
    "dram_write": 2,       # SLVERR/DECERR on a write response
    "misaligned": 3,       # CMD_ADDR or CMD_LEN is not a multiple of 32
    "out_of_range": 4,     # a transfer leaves the address space or a store the output window
    "shape": 5,            # the engine refused a tile (shape does not fit this configuration)
    "command": 6,          # unknown opcode, malformed command, or a list without END
}


@dataclass(frozen=True)
class Field:
    name: str
    lsb: int
    width: int
    doc: str


@dataclass(frozen=True)
class Reg:
    """One 32-bit register.

    ``access`` is ``"ro"`` (hardware drives it), ``"rw"`` (host writes, hardware reads), ``"w1p"``
    (writing 1 to a bit gives a one-cycle pulse; reads 0), ``"w1c"`` (hardware sets a bit, the
    host clears it by writing 1) or ``"w"`` (write-only, a read answers SLVERR: the direct
    map's ``WR``, ``RD`` and ``RUN``, whose writes are actions, and ``WR_DATA``, ``TILE``,
    which hold their data).
    """
    name: str
    offset: int
    access: str
    doc: str
    fields: tuple = ()
    reset: int = 0


def _desc_regs(base):
    """Layer descriptor: where the command list is and where the layer may write.

    The host compiles a layer into a command list (:mod:`cgaccel.commands`); the controller
    refuses any store outside ``[Y_ADDR, Y_ADDR + Y_LEN)``.
    """
    return [
        Reg("CMD_ADDR_LO", base, "rw", "Byte address of the command list, bits 31:0 "
            "(32-byte aligned)."),
        Reg("CMD_ADDR_HI", base + 4, "rw", "Byte address of the command list, bits 63:32."),
        Reg("CMD_LEN", base + 8, "rw", "Length of the command list in bytes (a multiple of 32)."),
        Reg("Y_ADDR_LO", base + 12, "rw", "Output window start (byte address), bits 31:0."),
        Reg("Y_ADDR_HI", base + 16, "rw", "Output window start (byte address), bits 63:32."),
        Reg("Y_LEN", base + 20, "rw", "Output window length in bytes: stores outside the window "
            "stop the layer with error out_of_range."),
    ]


_COUNTERS = (
    ("CYCLES", "cycles from start to done"),
    ("BUSY", "cycles the compute array had work"),
    ("STALL_DRAM", "cycles compute waited for DRAM data"),
    ("MACS_ISSUED", "multiply-accumulates issued to the array"),
    ("MACS_SKIPPED", "multiply-accumulates skipped by gating and masks"),
    ("GATE_OPEN", "output activations whose gate opened"),
    ("DRAM_RD_BYTES", "bytes read from DRAM"),
    ("DRAM_WR_BYTES", "bytes written to DRAM"),
)


def register_map():
    """Return the registers in address order."""
    regs = [
        Reg("ID", 0x000, "ro", "Magic number 0x43474143 (\"CGAC\").", reset=MAGIC),
        Reg("VERSION", 0x004, "ro", "Register map version: major in bits 31:16, minor in 15:0.",
            reset=VERSION),
        Reg("HWCFG0", 0x008, "ro", "Array geometry and widths of this instance.",
            (Field("rows", 0, 8, "PE rows"), Field("cols", 8, 8, "columns"),
             Field("act_width", 16, 5, "activation bits"),
             Field("weight_width", 21, 5, "weight bits"))),
        Reg("HWCFG1", 0x00C, "ro", "Features and bus widths of this instance.",
            (Field("cgnet", 0, 1, "CGNet gating built"), Field("fbs", 1, 1, "FBS masks built"),
             Field("max_groups", 2, 7, "largest G"),
             Field("axi_bytes", 9, 8, "AXI4 data bytes per beat"),
             Field("max_burst", 17, 9, "longest burst (beats)"),
             # 64 minus the width, so that hardware from before the field (64-bit
             # counters, bits 31:26 zero) reads right.
             Field("counter_short", 26, 6, "64 minus the performance counters' width"))),
        Reg("CTRL", 0x010, "w1p", "Control pulses.",
            (Field("start", 0, 1, "start the programmed layer"),
             Field("soft_reset", 1, 1, "abort and return to idle, clearing status"))),
        Reg("STATUS", 0x014, "ro", "State.",
            (Field("busy", 0, 1, "a layer is running"), Field("done", 1, 1, "last layer done"),
             Field("error", 2, 1, "last layer stopped on an error (see ERROR)"))),
        Reg("ERROR", 0x018, "ro", "Error code of the last layer (0 = none).",
            (Field("code", 0, 8, "error code, see the error table"),)),
        Reg("IRQ", 0x01C, "w1c", "Interrupt status; write 1 to clear.",
            (Field("done", 0, 1, "layer finished (with or without error)"),)),
        Reg("IRQ_EN", 0x020, "rw", "Interrupt enable.",
            (Field("done", 0, 1, "raise irq when IRQ.done is set"),)),
    ]
    regs += _desc_regs(0x040)
    off = 0x100
    for name, doc in _COUNTERS:
        regs.append(Reg(f"{name}_LO", off, "ro", f"Counter: {doc}, bits 31:0."))
        regs.append(Reg(f"{name}_HI", off + 4, "ro", f"Counter: {doc}, bits 63:32 (0 above "
                        "the counter width)."))
        off += 8
    return regs


def counter_names():
    """Names of the 64-bit performance counters, in register order."""
    return [name for name, _ in _COUNTERS]


def hwcfg_values(config):
    """Reset values of HWCFG0/HWCFG1 for ``config``."""
    hw0 = (config.rows | config.cols << 8 | config.act_width << 16 | config.weight_width << 21)
    hw1 = (int(config.cgnet) | int(config.fbs) << 1 | config.max_groups << 2
           | config.axi_bytes << 9 | config.max_burst << 17
           | (64 - config.counter_width) << 26)
    return {"HWCFG0": hw0, "HWCFG1": hw1}


# The ``host="mmio"`` register map (cgaccel.direct) -------------------------------------------

DIRECT_COUNTERS = (
    ("CYCLES", "clock cycles"),
    ("BUSY", "cycles the compute array had work"),
    ("MACS_ISSUED", "multiply-accumulates issued to the array"),
    ("MACS_SKIPPED", "multiply-accumulates skipped by gating and masks"),
    ("GATE_OPEN", "output activations whose gate opened"),
)


def direct_words(config):
    """``(data, tile)``: 32-bit ``WR_DATA`` and ``TILE`` registers of ``config``'s direct map."""
    from .engine.geometry import Geometry
    geo = Geometry(config)
    return -(-geo.wr_data_width // 32), -(-geo.tile_layout().size // 32)


def direct_register_map(config):
    """The registers of the ``host="mmio"`` top (:class:`cgaccel.direct.DirectTop`), in address
    order.

    Writes to ``WR``, ``RD`` and ``RUN`` hand the engine one transaction each (a buffer write
    of ``WR_DATA``, a write-back read request, the tile command in ``TILE``); their write
    response waits until the engine takes it (the engine holds off writes to the buffer half
    in use, and reads, while a tile runs). Every write must have all four byte strobes;
    unmapped addresses, writes to read-only registers, reads of write-only ones and partial
    writes answer SLVERR and change nothing. Counters run free from reset and wrap at
    ``2**32``: the host takes differences.
    """
    n_data, n_tile = direct_words(config)
    regs = [
        Reg("ID", 0x000, "ro", "Magic number 0x43474144 (\"CGAD\"): the direct-host map.",
            reset=MAGIC_DIRECT),
        Reg("VERSION", 0x004, "ro", "Register map version: major in bits 31:16, minor in 15:0.",
            reset=VERSION),
        Reg("HWCFG0", 0x008, "ro", "As in the DMA map."),
        Reg("HWCFG1", 0x00C, "ro", "As in the DMA map."),
        Reg("CTRL", 0x010, "w1p", "Control pulses.",
            (Field("clear", 0, 1, "zero STATUS.done and STATUS.error"),)),
        Reg("STATUS", 0x014, "ro", "State.",
            (Field("busy", 0, 1, "the engine holds or runs a tile"),
             Field("error", 1, 1, "the engine refused a tile since CTRL.clear (sticky)"),
             Field("rd_pending", 2, 1, "a write-back read was requested and not yet taken"),
             Field("done", 16, 16, "tiles finished since CTRL.clear (wraps)"))),
        Reg("RD_DATA", 0x018, "ro", "The oldest requested write-back read's data (byte of "
            "the lowest address in bits 7:0); reading takes it, waiting for the engine. "
            "SLVERR when no read is pending."),
        Reg("WR", 0x020, "w", "Hand the engine a buffer write of WR_DATA.",
            (Field("addr", 0, 20, "buffer address"), Field("target", 20, 3, "Target code"),
             Field("bank", 23, 1, "buffer half"), Field("bcast", 24, 1, "every column"),
             Field("col", 25, 6, "column"))),
        Reg("RD", 0x024, "w", "Request a write-back read (its data: RD_DATA).",
            (Field("addr", 0, 20, "output-bank address"), Field("col", 20, 6, "column"),
             Field("row", 26, 1, "every column's byte at addr"),
             Field("word", 27, 1, "the out_word bytes of the word holding addr"))),
        Reg("RUN", 0x028, "w", "Hand the engine the tile command in TILE (any value)."),
    ]
    regs += [Reg(f"WR_DATA{i}", 0x040 + 4 * i, "w", f"Buffer write data, bits "
                 f"{32 * i + 31}:{32 * i}.") for i in range(n_data)]
    regs += [Reg(f"TILE{i}", 0x080 + 4 * i, "w", f"Tile command (Geometry.tile_layout, "
                 f"pack_tile), bits {32 * i + 31}:{32 * i}.") for i in range(n_tile)]
    regs += [Reg(name, 0x100 + 4 * i, "ro", f"Counter: {doc}, free-running, bits 31:0.")
             for i, (name, doc) in enumerate(DIRECT_COUNTERS)]
    return regs
