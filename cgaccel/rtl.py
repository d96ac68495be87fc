"""Verilog emission of Amaranth components."""

from pathlib import Path

from amaranth.back import rtlil, verilog
from amaranth.hdl import _nir

__all__ = ["LOCAL_COPY", "NO_RW_CHECK", "to_verilog", "write_verilog"]

#: ``attrs`` of a register that is a deliberate local copy of a value other blocks register
#: too (a broadcast bus registered once per column, so that no net fans out over the whole
#: device). Yosys merges registers with identical inputs, which makes the copies one register
#: again; the synthesis flow marks the flip-flops of signals with this attribute ``keep``
#: for ECP5 (on iCE40 it lets them merge: the UP5K is short of logic cells, not of wire).
LOCAL_COPY = {"cgaccel_local_copy": 1}

#: ``attrs`` of a memory whose read data is never used in a cycle that writes the same address
#: (the design keeps the two apart, as the engine does with a buffer half in use). Without it
#: yosys must give a synchronous read port the old data on such a collision, which block RAM
#: does not do across ports: it adds a write-data register, an address compare and a
#: multiplexer on every output bit (on ECP5, 17% of a column's LUTs and a logic level after
#: every block-RAM read). Simulation keeps the old data; ``Column(collision_check=True)``
#: poisons it instead, so that the tests show the data is not used.
NO_RW_CHECK = {"no_rw_check": 1}


def _emit_memory_init(self, cell_idx, cell):
    # Amaranth 0.5.10 builds one Python Net object per bit of a memory's initial contents: the
    # default config's ~2 Mbit of buffers then take over a minute to emit. The same $meminit
    # cell with its data written as one RTLIL constant takes well under a second.
    info = self.memories[cell_idx]
    width, depth = cell.width, cell.depth
    mask = (1 << width) - 1
    value = 0
    for i, row in enumerate(cell.init):
        value |= (row & mask) << (i * width)
    total = width * depth
    self.builder.cell("$meminit_v2", ports={
        "ADDR": self.sigspec(),
        "DATA": f"{total}'{value:0{total}b}",
        "EN": self.sigspec(_nir.Value.ones(width)),
    }, parameters={
        "MEMID": info.memid,
        "ABITS": 0,
        "WIDTH": width,
        "WORDS": depth,
        "PRIORITY": 0,
    }, src_loc=cell.src_loc)


rtlil.ModuleEmitter.emit_memory = _emit_memory_init


def to_verilog(component, name, platform=None):
    """Return the Verilog text of ``component`` as a module called ``name``.

    ``timescale`` is prepended because Amaranth emits none and Icarus then cannot represent a
    nanosecond clock period. ``platform`` is handed to every ``elaborate`` (the synthesis flow
    passes :class:`cgaccel.engine.multiply.Primitives`).
    """
    text = verilog.convert(component, name=name, platform=platform, emit_src=False)
    return "`timescale 1ns/1ps\n" + text


def write_verilog(component, name, path):
    """Write ``component`` as Verilog module ``name`` to ``path``; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_verilog(component, name))
    return path
