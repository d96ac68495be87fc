"""Copy the flip-flops in front of an ECP5 multiplier into the MULT18X18D's input registers.

A product that :func:`cgaccel.engine.multiply.registered_product` puts in a MULT18X18D's output
register is timed from its operands' flip-flops: the wire to the DSP, then 3.5 ns of
multiplier before the output register (speed grade 6). On ``default``'s routed block top these
were about 370 of the endpoints failing at 150 MHz (the MAC products, the output unit's
partial products). The DSP's own input registers take the operands at its pins instead: the
wire into the DSP is then the whole fabric path, and the multiplier runs between the DSP's
two registers, inside the block.

:func:`absorb_input_registers` does that on yosys's JSON netlist, for each operand (``A``,
``B``) of a MULT18X18D with its input register unused, when every pin of the operand is
driven by a flip-flop (or tied to 0) that

* is clocked by the DSP's ``CLK0``, not inverted, with no set/reset (``reset_less`` in the
  RTL) and initial value 0 (the DSP's registers start at 0);
* loads every cycle, or all the operand's flip-flops load under one and the same
  clock-enable net (which the input register then takes on a free ``CE`` pin).

The operand's pins are then driven by the flip-flops' data inputs and the input register
holds the same values in every cycle. A flip-flop with other loads stays for them (its
value is copied, not moved); one left without loads is removed. ``cgaccel synth
--dsp-inreg`` runs it between yosys and nextpnr (ECP5 only).
"""

import json
from pathlib import Path

from .outreg import _param, _plain_register

__all__ = ["absorb_input_registers", "absorb_file"]

_OPERANDS = ("A", "B")
_PINS = 18


_REGISTERS = ("INPUTA", "INPUTB", "INPUTC", "PIPELINE", "OUTPUT")


def _free_pin(cell, prefix, used, tie):
    """A ``CE``/``RST`` pin of ``cell`` that no register in use selects and that is
    unconnected, tied to ``tie`` (``"0"``: a reset pin another input register also left at 0),
    or not in ``used`` and tied off."""
    conn = cell["connections"]
    taken = {_param(cell, f"REG_{r}_{prefix}", f"{prefix}0") for r in _REGISTERS
             if _param(cell, f"REG_{r}_CLK", "NONE") != "NONE"}
    for k in range(1, 4):
        pin = f"{prefix}{k}"
        if pin in taken or pin in used:
            continue
        if conn.get(pin) in (None, [tie]):
            return pin
    return None


def absorb_input_registers(netlist, module=None):
    """Rewrite ``netlist`` (yosys JSON, as a dict) in place.

    Returns ``{"operands": DSP operands now registered in the DSP, "ffs": flip-flops removed}``.
    """
    mods = netlist["modules"]
    if module is None:
        module = next(n for n, m in mods.items() if m.get("attributes", {}).get("top"))
    mod = mods[module]
    cells = mod["cells"]
    drivers, sinks = {}, {}
    for name, cell in cells.items():
        dirs = cell.get("port_directions", {})
        for port, bits in cell["connections"].items():
            for b in bits:
                if not isinstance(b, int):
                    continue
                if dirs.get(port) == "output":
                    drivers[b] = (name, port)
                elif dirs.get(port) == "input":
                    sinks.setdefault(b, []).append((name, port))
    ports_out = {b for p in mod.get("ports", {}).values() for b in p["bits"]
                 if isinstance(b, int)}
    moved = 0
    touched = set()
    for name, cell in cells.items():
        if cell["type"] != "MULT18X18D":
            continue
        conn = cell["connections"]
        clock = conn.get("CLK0")
        if not clock or not isinstance(clock[0], int):
            continue
        used_ce = set()
        for op in _OPERANDS:
            if _param(cell, f"REG_INPUT{op}_CLK", "NONE") != "NONE":
                continue
            plan = {}
            enables = set()
            for k in range(_PINS):
                bits = conn.get(f"{op}{k}")
                if bits in (None, ["0"]):
                    continue
                b = bits[0]
                drv = drivers.get(b) if isinstance(b, int) else None
                if drv is None or cells[drv[0]]["type"] != "TRELLIS_FF" or drv[1] != "Q":
                    break
                ff = cells[drv[0]]
                enables.add(_plain_register(ff, clock))
                if None in enables or len(enables) > 1:
                    break
                plan[f"{op}{k}"] = (drv[0], ff["connections"]["DI"])
            else:
                if not plan:
                    continue
                enable = enables.pop()
                if enable == "1" and conn.get("CE0") == ["1"]:
                    ce = "CE0"
                else:
                    ce = _free_pin(cell, "CE", used_ce, None)
                rst = _free_pin(cell, "RST", set(), "0")
                if ce is None or rst is None:
                    continue
                if ce != "CE0":
                    conn[ce] = [enable] if enable != "1" else ["1"]
                    used_ce.add(ce)
                conn[rst] = ["0"]
                cell["port_directions"].setdefault(ce, "input")
                cell["port_directions"].setdefault(rst, "input")
                for pin, (ff_name, di) in plan.items():
                    old = conn[pin][0]
                    sinks[old] = [s for s in sinks[old] if s != (name, pin)]
                    conn[pin] = list(di)
                    touched.add(ff_name)
                cell["parameters"][f"REG_INPUT{op}_CLK"] = "CLK0"
                cell["parameters"][f"REG_INPUT{op}_CE"] = ce
                cell["parameters"][f"REG_INPUT{op}_RST"] = rst
                moved += 1
    removed = 0
    for ff_name in touched:
        q = cells[ff_name]["connections"]["Q"][0]
        if not sinks.get(q) and q not in ports_out:
            del cells[ff_name]
            removed += 1
    return {"operands": moved, "ffs": removed}


def absorb_file(path, module=None):
    """:func:`absorb_input_registers` on a JSON netlist file, rewritten in place."""
    path = Path(path)
    netlist = json.loads(path.read_text())
    counts = absorb_input_registers(netlist, module)
    path.write_text(json.dumps(netlist))
    return counts
