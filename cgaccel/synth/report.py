"""Reading the tools' outputs: yosys ``stat -json`` cell counts and nextpnr's ``--report`` JSON."""

import re

__all__ = ["mapped_resources", "check_fit", "nextpnr_resources", "critical_path_summary",
           "fit_error_from_log", "ResourceError"]


class ResourceError(ValueError):
    """The design needs more of a device resource than the target has."""


# nextpnr cell types counted for each reported resource, per family.
_PNR_CELLS = {
    "ecp5": {"luts": ("TRELLIS_COMB",), "ffs": ("TRELLIS_FF",), "dsps": ("MULT18X18D",),
             "brams": ("DP16KD",), "io": ("TRELLIS_IO",)},
    "ice40": {"luts": ("ICESTORM_LC",), "ffs": (), "dsps": ("ICESTORM_DSP",),
              "brams": ("ICESTORM_RAM",), "sprams": ("ICESTORM_SPRAM",), "io": ("SB_IO",)},
}

_NAMES = {"luts": "LUTs", "ffs": "flip-flops", "dsps": "DSP multipliers", "brams": "block RAMs",
          "sprams": "SPRAMs", "io": "I/O pins"}
_ICE40_FF = re.compile(r"^SB_DFF")


def mapped_resources(family, cells):
    """Lower bounds of the resources a mapped netlist needs, from yosys cell counts.

    Parameters
    ----------
    family : str
        ``"ecp5"`` or ``"ice40"``.
    cells : dict
        Cell type to count (the ``num_cells_by_type`` of yosys ``stat -json``).

    Returns
    -------
    dict
        ``luts`` (LUT4s on ECP5, logic cells on iCE40, a lower bound before packing), ``ffs``,
        ``dsps``, ``brams`` and, on iCE40, ``sprams``; ``io`` is left to the placer.
    """
    def n(*types):
        return sum(cells.get(t, 0) for t in types)
    if family == "ecp5":
        ffs = n("TRELLIS_FF")
        # A CCU2C is two LUT4s with carry; a DPR16X4 distributed RAM takes a slice pair's LUTs.
        luts = n("LUT4") + 2 * n("CCU2C") + 4 * n("TRELLIS_DPR16X4")
        return {"luts": luts, "ffs": ffs, "dsps": n("MULT18X18D", "ALU54B"),
                "brams": n("DP16KD", "PDPW16KD")}
    if family == "ice40":
        ffs = sum(c for t, c in cells.items() if _ICE40_FF.match(t))
        # A logic cell holds one LUT4, its carry and one FF: the LC count is at least the larger.
        luts = max(n("SB_LUT4"), ffs, n("SB_CARRY"))
        return {"luts": luts, "ffs": ffs, "dsps": n("SB_MAC16"), "brams": n("SB_RAM40_4K"),
                "sprams": n("SB_SPRAM256KA")}
    raise ValueError(f"Family must be ecp5 or ice40, not {family!r}")


def check_fit(needed, capacity, target_name):
    """Raise :class:`ResourceError` naming every resource in ``needed`` above ``capacity``."""
    over = [f"{needed[k]} {_NAMES[k]} (the device has {capacity[k]})"
            for k in needed if k in capacity and needed[k] > capacity[k]]
    if over:
        raise ResourceError(f"Design does not fit {target_name}: it needs " + "; ".join(over))


def nextpnr_resources(family, report):
    """``(used, available)`` dicts by resource from a nextpnr ``--report`` JSON object."""
    util = report.get("utilization", {})
    used, avail = {}, {}
    for res, types in _PNR_CELLS[family].items():
        if not types:
            continue
        used[res] = sum(util.get(t, {}).get("used", 0) for t in types)
        avail[res] = sum(util.get(t, {}).get("available", 0) for t in types)
    return used, avail


def critical_path_summary(report):
    """Summarise the worst register-to-register critical path of a nextpnr report.

    Paths from or to ``<async>`` (pins) are only used when there is no other.

    Returns
    -------
    dict or None
        ``from`` and ``to`` (cell.port of the start and end points), ``delay_ns`` (total),
        ``logic_ns`` and ``routing_ns``, ``logic_levels`` and ``nets`` (the nets along the path,
        which carry the Amaranth signal names). ``None`` when the report has no path.
    """
    paths = report.get("critical_paths", [])
    paths = [p for p in paths if "<async>" not in (p.get("from"), p.get("to"))] or paths
    best = None
    for p in paths:
        steps = p.get("path", [])
        total = sum(s.get("delay", 0.0) for s in steps)
        if steps and (best is None or total > best[0]):
            best = (total, p)
    if best is None:
        return None
    total, p = best
    steps = p["path"]
    logic = sum(s.get("delay", 0.0) for s in steps if s.get("type") != "routing")
    nets = []
    for s in steps:
        net = s.get("net")
        if s.get("type") == "routing" and net and net not in nets:
            nets.append(net)

    def end(point):
        return f"{point.get('cell', '?')}.{point.get('port', '?')}"
    return {
        "clock_from": p.get("from"), "clock_to": p.get("to"),
        "from": end(steps[0].get("from", {})), "to": end(steps[-1].get("to", {})),
        "delay_ns": round(total, 3), "logic_ns": round(logic, 3),
        "routing_ns": round(total - logic, 3),
        "logic_levels": sum(1 for s in steps if s.get("type") == "logic"),
        "nets": nets,
    }


_UTIL_LINE = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%")
_NO_BELS = re.compile(r"no BELs remaining to implement cell type '([^']+)'")
_CELL_NAMES = {t: _NAMES[res] for fam in _PNR_CELLS.values() for res, ts in fam.items()
               for t in ts}


def fit_error_from_log(text):
    """Return a one-line explanation if a nextpnr log shows the design did not fit, else None.

    Uses the "Device utilisation" table nextpnr prints before placing (any line above 100%)
    and the placer's "no BELs remaining to implement cell type" error.
    """
    over = []
    for line in text.splitlines():
        m = _UTIL_LINE.match(line.strip() if line.startswith("Info:") else line)
        if m and int(m.group(2)) > int(m.group(3)):
            kind = m.group(1)
            over.append(f"{m.group(2)} {_CELL_NAMES.get(kind, kind)} ({kind}) but the device "
                        f"has {m.group(3)}")
    if over:
        return "needs " + "; ".join(over)
    m = _NO_BELS.search(text)
    if m:
        kind = m.group(1)
        return f"the placer ran out of {_CELL_NAMES.get(kind, kind)} ({kind})"
    return None
