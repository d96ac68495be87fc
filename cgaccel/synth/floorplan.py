"""Keep each engine column's block RAMs and DSPs together on an ECP5 die (``--floorplan``).

Left to itself, nextpnr's placer spread every column of ``default`` over the whole width of
the 85F (each column's 25 block RAMs in one block-RAM row from x = 4 to 98, its 20 DSPs over
two DSP rows, the four columns interleaved), so each column's control wired across the die.
This pass fixes the block RAMs and DSPs of column ``k`` to sites in region ``k`` of the die
(nextpnr's ``BEL`` attribute), and nextpnr places the rest of the logic around them:

* the die is cut at its vertical clock spine into a left and a right half and, where the
  columns fit, at the middle between its block-RAM / DSP rows into a lower and an upper half
  (four regions on the 85F, filled lower left, lower right, upper left, upper right; two on
  the 25F, whose DSPs are one row); more columns than regions share them in x;
* in each region a column takes the sites closest to the spine, all the region's rows of a
  site column at a time, so the four columns sit around the middle of the die with the
  shared logic (controller, DMA engines, register file) free to go between them;
* inside a column, lane ``j`` (activation and weight buffer slice ``j`` and the MACs that read
  them) goes farthest from the spine in order of ``j``, the tables, work lists, output bank and
  output unit nearest to it (they talk to the engine's shared logic).

Block RAMs and DSPs outside the columns (the read DMA's beat buffer) are left to nextpnr.
Measured in ``docs/synth.md`` ("A floorplan for the columns").
"""

import json
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Die", "DIES", "sites", "plan", "apply_file"]

_HARD = ("DP16KD", "MULT18X18D")


@dataclass(frozen=True)
class Die:
    """The block-RAM and DSP sites of an ECP5 device, as nextpnr names them.

    Both sit in groups of four site columns every 9 tiles (``groups``: each group's first
    x), in full-width rows (``bram_rows``, ``dsp_rows``: y). In a group the block RAMs are at
    x + 0, 2, 4, 6 (bels ``EBR0-3``), the DSP multipliers at x + 0, 1, 4, 5 (``MULT18_0``,
    ``_1``, ``_4``, ``_5``). ``spine``: an x between the two halves (the clock spine's gap);
    ``band``: a y between the lower and upper rows, None where the DSPs are one row.
    ``tests/test_synth_floorplan.py`` checks them against nextpnr's own placement of a design
    that fills every site.
    """

    groups: tuple
    bram_rows: tuple
    dsp_rows: tuple
    spine: float
    band: float = None

    def sites(self, kind):
        """Every site of ``kind`` (``"DP16KD"`` or ``"MULT18X18D"``) as ``(x, y, bel)``."""
        if kind == "DP16KD":
            offs, rows = ((0, "EBR0"), (2, "EBR1"), (4, "EBR2"), (6, "EBR3")), self.bram_rows
        elif kind == "MULT18X18D":
            offs = ((0, "MULT18_0"), (1, "MULT18_1"), (4, "MULT18_4"), (5, "MULT18_5"))
            rows = self.dsp_rows
        else:
            raise ValueError(f"Site kind must be DP16KD or MULT18X18D, not {kind!r}")
        return [(g + dx, y, bel) for g in self.groups for dx, bel in offs for y in rows]


DIES = {
    "ecp5-85k": Die(groups=(4, 13, 22, 31, 40, 49, 58, 69, 78, 87, 96, 105, 114),
                    bram_rows=(22, 46, 70, 82), dsp_rows=(10, 34, 58), spine=66.5,
                    band=52.0),
    "ecp5-25k": Die(groups=(4, 13, 22, 33, 42, 51, 60), bram_rows=(25, 37), dsp_rows=(13,),
                    spine=31.0),
}


def sites(target, kind):
    """The sites of ``kind`` on ``target`` (a ``--target`` name with a floorplan)."""
    return _die(target).sites(kind)


def _die(target):
    if not isinstance(target, str):
        raise TypeError(f"Target must be a string, not {target!r}")
    try:
        return DIES[target]
    except KeyError:
        raise ValueError(f"Floorplan target must be one of {', '.join(DIES)}, "
                         f"not {target!r}") from None


_COL = re.compile(r"(?:^|\.)col(\d+)\.")
_LANE = re.compile(r"\.(?:act_mem|wgt_mem)\.\d+\.(\d+)$|\.mac\.prod(\d+)(?:\$|$)")


def _lane_order(names):
    """``names`` (one column's cells of one kind) in lane order; the rest after, by name.

    A buffer slice or MAC product ``j`` of ``n`` sorts at ``j / n``; everything else at 1.
    """
    idx = {}
    for n in names:
        m = _LANE.search(n)
        if m:
            idx[n] = int(m.group(1) or m.group(2))
    span = {}
    for n, j in idx.items():
        kind = "prod" if ".mac.prod" in n else n.rsplit(".", 2)[0]
        span[kind] = max(span.get(kind, 0), j + 1)

    def key(n):
        if n not in idx:
            return (1.0, n)
        kind = "prod" if ".mac.prod" in n else n.rsplit(".", 2)[0]
        return (idx[n] / span[kind], n)
    return sorted(names, key=key)


def _regions(die, ncols, banded):
    """Per column: its region as ``(side, band, slot, slots)``.

    ``side``: -1 left of the spine, +1 right, 0 both; ``band``: None, "low" or "high" (rows
    below or above ``die.band``); columns beyond the regions share a region's site columns
    (every ``slots``-th, from ``slot``).
    """
    bands = ("low", "high") if banded else (None,)
    regions = [(side, band) for band in bands for side in (-1, 1)]
    if ncols == 1:
        regions = [(0, bands[0])]
    return [(*regions[k % len(regions)], k // len(regions), -(-ncols // len(regions)))
            for k in range(ncols)]


def plan(cells, target):
    """Sites for the block RAMs and DSPs of each engine column.

    Parameters
    ----------
    cells : dict
        The top module's ``cells`` of yosys's JSON netlist (name -> cell with ``type``).
    target : str
        ``ecp5-85k`` or ``ecp5-25k``.

    Returns
    -------
    dict
        ``{"bels": {cell name: "X../Y../BEL"}, "columns": [per column: its cells and the
        x and y span of its sites]}``.

    Raises
    ------
    ValueError
        No engine column in the netlist, or a column's region has fewer sites of a kind than
        the column has cells of it.
    """
    die = _die(target)
    cols = {}
    for name, cell in cells.items():
        if cell["type"] in _HARD:
            m = _COL.search(name)
            if m:
                cols.setdefault(int(m.group(1)), {}).setdefault(cell["type"], []).append(name)
    if not cols:
        raise ValueError("Floorplan needs engine columns (cells named '...colN.'), "
                         "not a netlist without them")
    # Lower and upper halves where the die has them and they hold the columns, else the
    # whole height.
    error = None
    for banded in ((True, False) if die.band is not None else (False,)):
        try:
            return _assign(die, cols, _regions(die, len(cols), banded))
        except ValueError as e:
            error = e
    raise error


def _assign(die, cols, regions):
    bels, summary = {}, []
    for k, (side, band, slot, slots) in zip(sorted(cols), regions, strict=True):
        info = {"column": k, "region": _region_name(side, band)}
        for kind in _HARD:
            names = cols[k].get(kind, [])
            if not names:
                continue
            rows = die.bram_rows if kind == "DP16KD" else die.dsp_rows
            rows = [y for y in rows if band is None or (y < die.band) == (band == "low")]
            xs = sorted({x for x, y, _ in die.sites(kind)
                         if side == 0 or (x - die.spine) * side > 0},
                        key=lambda x: abs(x - die.spine))
            xs = xs[slot::slots]
            per_x = len(rows)
            need = -(-len(names) // per_x)
            if need > len(xs):
                raise ValueError(
                    f"Floorplan of column {k} needs {len(names)} {kind} sites, its region "
                    f"({info['region']}) has {len(xs) * per_x}")
            chosen = xs[:need]
            by_site = {(x, y): bel for x, y, bel in die.sites(kind)}
            # Outermost first, so lane 0 is farthest from the spine.
            order = [(x, y, by_site[x, y]) for x in sorted(chosen, key=lambda x: -abs(
                x - die.spine)) for y in rows]
            step = len(order) / len(names)
            for i, n in enumerate(_lane_order(names)):
                x, y, bel = order[int(i * step)]
                bels[n] = f"X{x}/Y{y}/{bel}"
            info[kind] = {"cells": len(names), "x": [min(chosen), max(chosen)], "rows": rows}
        summary.append(info)
    return {"bels": bels, "columns": summary}


def _region_name(side, band):
    x = {-1: "left", 1: "right", 0: "whole"}[side]
    return x if band is None else f"{band} {x}"


def apply_file(netlist, module, target):
    """Set the ``BEL`` of every engine column's block RAM and DSP in a yosys JSON netlist.

    Rewrites ``netlist`` in place and returns :func:`plan`'s summary (without the bels) with
    ``cells``, the number of cells fixed.
    """
    path = Path(netlist)
    doc = json.loads(path.read_text())
    try:
        cells = doc["modules"][module]["cells"]
    except KeyError:
        raise ValueError(f"Netlist {path} has no module {module!r}") from None
    result = plan(cells, target)
    for name, bel in result["bels"].items():
        cells[name]["attributes"]["BEL"] = bel
    path.write_text(json.dumps(doc))
    return {"cells": len(result["bels"]), "columns": result["columns"]}
