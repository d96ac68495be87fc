"""Move the flip-flops right after an ECP5 block RAM into the block RAM's output register.

Yosys maps every memory to a DP16KD without its output register (``REGMODE_x = "NOREG"``).
nextpnr then times a read at 5.8 ns from the clock to the data out (speed grade 6): a block
RAM read straight into a flip-flop, nothing else, closes at 139-141 MHz (``cgaccel synth
--design bram-read``), so no design that reads block RAM reaches 150 MHz that way. With the
output register (``"OUTREG"``) the data leaves the block 0.9 ns after the clock. Where the RTL
already registers a read port's data with nothing in between (a column's activation, weight
and work-list reads), the register can move into the block RAM: same cycles, same data.

:func:`absorb_output_registers` does that on yosys's JSON netlist, for a read port of a
DP16KD in a true dual-port mode (data width 18 or less; the 36-bit mode's output is split over
both ports and is left alone) whose used outputs all drive only flip-flops that

* are clocked by the port's clock, not inverted;
* load every cycle (clock enable tied high), or all load under one and the same clock-enable
  net (a register of a pipeline stage that moves on an ``adv`` flag), and have no set/reset
  (``reset_less`` registers in the RTL), so the port's output register with ``OCE`` high
  (or driven by that net) and ``RST`` low is the same register;
* start at 0 (``REGSET = "RESET"``): the output register's value after configuration.

Each such flip-flop's output net is then driven by the block RAM's output and the flip-flop is
removed. ``cgaccel synth --bram-outreg`` runs it between yosys and nextpnr (ECP5 only).
"""

import json
from pathlib import Path

__all__ = ["absorb_output_registers", "absorb_file"]

# (data out prefix, clock, output clock enable, reset, REGMODE parameter, data width parameter)
_PORTS = (("DOA", "CLKA", "OCEA", "RSTA", "REGMODE_A", "DATA_WIDTH_A"),
          ("DOB", "CLKB", "OCEB", "RSTB", "REGMODE_B", "DATA_WIDTH_B"))


def _param(cell, name, default):
    v = cell["parameters"].get(name, default)
    if isinstance(v, str) and v and set(v) <= {"0", "1"} and len(v) > 1:
        return int(v, 2)                        # yosys writes integers as bit strings
    return v.strip() if isinstance(v, str) else v


def _is_high(bits):
    return bits in (["1"], None)


def _is_low(bits):
    return bits in (["0"], None)


def _plain_register(ff, clock):
    """The clock enable of a TRELLIS_FF that is a plain register on ``clock`` (no set or
    reset, initial value 0): ``"1"`` if it loads every cycle, else its enable net (an int,
    active high); None if it is not such a register."""
    c = ff["connections"]
    ce, lsr = c.get("CE"), c.get("LSR")
    # The multiplexers in front of the slice's enable and set/reset inputs.
    cemux = _param(ff, "CEMUX", "1")
    always = {"1": True, "CE": ce == ["1"], "INV": ce == ["0"]}
    never = {"0": True, "LSR": _is_low(lsr), "INV": lsr == ["1"]}
    if not (c.get("CLK") == clock and _param(ff, "CLKMUX", "CLK") == "CLK"
            and never.get(_param(ff, "LSRMUX", "LSR"), False)
            and _param(ff, "REGSET", "RESET") == "RESET"):
        return None
    if always.get(cemux, False):
        return "1"
    if cemux == "CE" and ce and isinstance(ce[0], int):
        return ce[0]
    return None


def absorb_output_registers(netlist, module=None):
    """Rewrite ``netlist`` (yosys JSON, as a dict) in place.

    Returns ``{"brams": ports changed, "ffs": flip-flops removed}``.
    """
    mods = netlist["modules"]
    if module is None:
        module = next(n for n, m in mods.items() if m.get("attributes", {}).get("top"))
    mod = mods[module]
    cells = mod["cells"]
    sinks = {}
    for name, cell in cells.items():
        dirs = cell.get("port_directions", {})
        for port, bits in cell["connections"].items():
            if dirs.get(port) == "input":
                for b in bits:
                    if isinstance(b, int):
                        sinks.setdefault(b, []).append((name, port))
    ports_out = {b for p in mod.get("ports", {}).values() for b in p["bits"]
                 if isinstance(b, int)}
    rename = {}                                 # flip-flop Q bit -> block RAM output bit
    removed = set()
    changed = 0
    for cell in cells.values():
        if cell["type"] != "DP16KD":
            continue
        for do, clk, oce, rst, regmode, width in _PORTS:
            if _param(cell, regmode, "NOREG") != "NOREG" or _param(cell, width, 18) > 18:
                continue
            conn = cell["connections"]
            if not (_is_high(conn.get(oce)) and _is_low(conn.get(rst))):
                continue
            clock = conn.get(clk)
            outs = [bits[0] for p, bits in conn.items() if p.startswith(do)
                    and isinstance(bits[0], int) and sinks.get(bits[0])]
            if not outs:
                continue
            plan = {}
            enables = set()
            for b in outs:
                if b in ports_out:
                    break
                regs = sinks[b]
                if not all(cells[n]["type"] == "TRELLIS_FF" and p == "DI" for n, p in regs):
                    break
                enables |= {_plain_register(cells[n], clock) for n, _ in regs}
                if None in enables or len(enables) > 1:
                    break
                plan[b] = [n for n, _ in regs]
            else:
                # One enable for every register: the output register's own (``OCE``).
                enable = enables.pop()
                if enable != "1":
                    conn[oce] = [enable]
                for b, regs in plan.items():
                    for n in regs:
                        rename[cells[n]["connections"]["Q"][0]] = b
                        removed.add(n)
                cell["parameters"][regmode] = "OUTREG"
                changed += 1
    for n in removed:
        del cells[n]
    if rename:
        for cell in cells.values():
            for port, bits in cell["connections"].items():
                cell["connections"][port] = [rename.get(b, b) for b in bits]
        for p in mod.get("ports", {}).values():
            p["bits"] = [rename.get(b, b) for b in p["bits"]]
        for net in mod.get("netnames", {}).values():
            net["bits"] = [rename.get(b, b) for b in net["bits"]]
    return {"brams": changed, "ffs": len(removed)}


def absorb_file(path, module=None):
    """:func:`absorb_output_registers` on a JSON netlist file, rewritten in place."""
    path = Path(path)
    netlist = json.loads(path.read_text())
    counts = absorb_output_registers(netlist, module)
    path.write_text(json.dumps(netlist))
    return counts
