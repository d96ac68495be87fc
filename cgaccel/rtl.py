"""Verilog emission of Amaranth components."""

from pathlib import Path

from amaranth.back import verilog

__all__ = ["to_verilog", "write_verilog"]


def to_verilog(component, name):
    """Return the Verilog text of ``component`` as a module called ``name``.

    ``timescale`` is prepended because Amaranth emits none and Icarus then cannot represent a
    nanosecond clock period.
    """
    text = verilog.convert(component, name=name, emit_src=False)
    return "`timescale 1ns/1ps\n" + text


def write_verilog(component, name, path):
    """Write ``component`` as Verilog module ``name`` to ``path``; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_verilog(component, name))
    return path
