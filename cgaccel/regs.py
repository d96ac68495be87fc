"""The register map: the single source for the RTL register file, the C/JSON header and the docs.

Every register is 32 bits wide and word aligned. 64-bit quantities (addresses, counters) are split
into ``_LO``/``_HI`` pairs. Reading a counter's ``_LO`` latches its ``_HI``, so reading ``_LO`` then
``_HI`` gives one coherent 64-bit value. Counters are ``counter_width`` bits wide (``HWCFG1``): the
bits above read 0 and the counter wraps at ``2**counter_width``.
"""

from dataclasses import dataclass

__all__ = ["Reg", "Field", "register_map", "ERRORS", "MAGIC", "VERSION", "hwcfg_values"]

MAGIC = 0x43474143   # "CGAC"
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
    (writing 1 to a bit gives a one-cycle pulse; reads 0) or ``"w1c"`` (hardware sets a bit, the
    host clears it by writing 1).
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
