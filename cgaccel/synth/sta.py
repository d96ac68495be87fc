"""Static timing of a routed design from nextpnr's SDF: every endpoint, grouped by register.

nextpnr reports one critical path per clock. With ``--sdf`` it also writes every routed
interconnect delay, every cell arc and every setup check of the design; this module reads that
file, computes the latest arrival time at every pin (longest path in topological order, from the
clock-to-out of each register or memory) and, at each setup check, the clock period that
endpoint needs (arrival + setup). Endpoints are grouped by the register or memory they belong
to (:func:`group`), so a report says how many endpoints of which registers fail at a frequency.

The model is nextpnr's own: the max of the ``(min:typ:max)`` triples, setup = the setup value
of ``SETUPHOLD``, clock pins at time 0 (the SDF gives the clock network's interconnect too, but
nextpnr's critical path starts at clock-to-out, which is what is reproduced here). A clock pin
is a pin that is the reference of a ``SETUPHOLD`` in some cell of the same type, or the
``(posedge ...)`` source of an ``IOPATH``: ``CLK`` of ECP5 flip-flops, ``WCK`` of distributed
RAM, ``CLKA``/``CLKB`` of block RAM, ``CLK0`` of DSPs, ``CLK``/``RCLK``/``WCLK`` on iCE40.
Paths from or to the chip's pins are not timed (only register to register).

``python -m cgaccel.synth.sta DIR_OR_SDF [--mhz 150] [--top 30] [--path GROUP] [--blocks DEPTH]
[--wire-scale F] [--clock-to-out CELLTYPE=NS]`` prints the table (``--blocks``: the failing
endpoints added up by block; the last two: the same routed design timed as if its wires, or a
primitive's clock-to-out, were faster); ``synthesize`` adds its summary to ``report.json`` as
``timing``.
"""

import argparse
import json
import re
import sys
import time
from collections import deque
from functools import lru_cache
from pathlib import Path

__all__ = ["Timing", "SdfError", "load", "endpoints", "worst_path", "group", "summary",
           "blocks", "nets", "format_summary", "format_blocks", "format_nets", "format_path",
           "main"]

_NUM = r"(-?[\d.]+(?:[eE][-+]?\d+)?)"
_TRIPLE = rf"\(\s*(?:{_NUM}\s*:\s*{_NUM}\s*:\s*{_NUM}|{_NUM})?\s*\)"
_PORT = r"(?:\(\s*(posedge|negedge)\s+(\S+?)\s*\)|(\S+))"
_RE_IC = re.compile(rf"\(\s*INTERCONNECT\s+(\S+)\s+(\S+)\s+{_TRIPLE}")
_RE_IO = re.compile(rf"\(\s*IOPATH\s+{_PORT}\s+(\S+)\s+{_TRIPLE}")
_RE_SU = re.compile(rf"\(\s*(SETUPHOLD|SETUP)\s+{_PORT}\s+{_PORT}\s+{_TRIPLE}")
_RE_INST = re.compile(r"\(\s*INSTANCE\s*([^)\s]*(?:\\\)[^)\s]*)*)\s*\)")
_RE_TYPE = re.compile(r'\(\s*CELLTYPE\s+"([^"]*)"\s*\)')
_NEG = float("-inf")


class SdfError(ValueError):
    """The file is not an SDF this module can read (the message says why)."""


def _max(m, first):
    """The max of a triple matched at group ``first`` (min:typ:max, or a single value)."""
    if m[first + 2] is not None:
        return max(float(m[first]), float(m[first + 1]), float(m[first + 2]))
    if m[first + 3] is not None:
        return float(m[first + 3])
    return 0.0                                  # "()": no delay given


def _unescape(name):
    if "\\" not in name:
        return name
    return name.replace("\\\\", "\0").replace("\\", "").replace("\0", "\\")


def _pin(token):
    """``cell/PIN`` of an SDF pin token, with the escapes removed: the pin is after the last
    unescaped ``/`` (a ``/`` in a cell name is escaped)."""
    cell, slash, pin = token.rpartition("/")
    if "\\" in pin or cell.endswith("\\"):
        cut, i = -1, 0                          # rare: an escaped "/" near the end
        while i < len(token):
            if token[i] == "\\":
                i += 1
            elif token[i] == "/":
                cut = i
            i += 1
        cell, slash, pin = (token[:cut], "/", token[cut + 1:]) if cut >= 0 else ("", "", token)
    if not slash:
        return "/" + _unescape(token)           # a top-level port
    return _unescape(cell) + "/" + pin


class Timing:
    """Arrival times of the pins of a routed design, from an SDF written by nextpnr.

    Parameters
    ----------
    lines : iterable of str
        The SDF text, line by line (nextpnr writes one statement a line).

    Members
    -------
    pins : list of str
        Every pin, ``cell/PIN`` (cell names unescaped).
    arrival : list of float
        Latest arrival time of each pin (ps) after the clock edge; ``-inf`` where no register
        reaches it.
    setup : dict
        Pin index to setup time (ps) at each timing-check endpoint.
    loops : int
        Pins left out of the topological order (combinational loops): 0 on a synchronous design.

    wire_scale : float
        What if: every interconnect delay times this (0: logic and clock-to-out only, the
        bound no placement or route can beat).
    clock_to_out : dict, optional
        What if: ``{celltype: ps}``, the clock-to-out of every register or memory of that cell
        type (``{"DP16KD": 920}``: each block RAM read through its output register).

    Raises
    ------
    SdfError
        No ``DELAYFILE``, or no timing check in the file.
    """

    def __init__(self, lines, *, wire_scale=1.0, clock_to_out=None):
        if isinstance(wire_scale, bool) or not isinstance(wire_scale, (int, float)) \
                or wire_scale < 0:
            raise ValueError(f"Wire scale must be a non-negative number, not {wire_scale!r}")
        clock_to_out = dict(clock_to_out or {})
        for k, v in clock_to_out.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                raise ValueError(f"Clock-to-out of {k} must be a non-negative number of ps, "
                                 f"not {v!r}")
        index = {}
        pins = []

        def node(name):
            n = index.get(name)
            if n is None:
                n = index[name] = len(pins)
                pins.append(name)
                succ.append([])
            return n

        succ = []                               # node -> [(dst, delay, is_cell_arc)]
        iopaths = []                            # (celltype, cell, src pin, dst pin, delay)
        checks = []                             # (cell, data pin, setup)
        clocks = {}                             # celltype -> set of clock pins
        celltype = cell = None
        cells = set()
        header = False
        for line in lines:
            if "INTERCONNECT" in line:
                m = _RE_IC.search(line)
                if m is None:
                    raise SdfError(f"Unreadable INTERCONNECT: {line.strip()!r}")
                s, d = node(_pin(m[1])), node(_pin(m[2]))
                succ[s].append((d, _max(m, 3) * wire_scale, False))
                continue
            if "IOPATH" in line:
                m = _RE_IO.search(line)
                if m is None:
                    raise SdfError(f"Unreadable IOPATH: {line.strip()!r}")
                src = m[2] or m[3]
                if m[1] is not None:            # (IOPATH (posedge CLK) Q ...)
                    clocks.setdefault(celltype, set()).add(src)
                iopaths.append((celltype, cell, src, m[4], _max(m, 5)))
                continue
            if "SETUP" in line:
                m = _RE_SU.search(line)
                if m is None:
                    raise SdfError(f"Unreadable timing check: {line.strip()!r}")
                data, ref = m[3] or m[4], m[6] or m[7]
                clocks.setdefault(celltype, set()).add(ref)
                checks.append((cell, data, _max(m, 8)))
                continue
            if "CELLTYPE" in line:
                m = _RE_TYPE.search(line)
                celltype = m[1] if m else None
                continue
            if "INSTANCE" in line:
                m = _RE_INST.search(line)
                cell = _unescape(m[1]) if m else None
                cells.add(cell)
                continue
            if "DELAYFILE" in line:
                header = True
        if not header:
            raise SdfError("Not an SDF file (no DELAYFILE)")
        if not checks:
            raise SdfError("No timing checks (SETUPHOLD) in the SDF")
        starts = {}                             # node -> (clock-to-out, clock pin node)
        for celltype, cell, src, dst, delay in iopaths:
            s, d = node(f"{cell}/{src}"), node(f"{cell}/{dst}")
            if src in clocks.get(celltype, ()):
                delay = clock_to_out.get(celltype, delay)
                if d not in starts or delay > starts[d][0]:
                    starts[d] = (delay, s)
            else:
                succ[s].append((d, delay, True))
        setup = {}
        for cell, data, value in checks:
            d = node(f"{cell}/{data}")
            if value > setup.get(d, _NEG):
                setup[d] = value
        self.pins = pins
        self._index = index
        self._fanout = [sum(1 for _, _, is_cell in arcs if not is_cell) for arcs in succ]
        self.setup = setup
        self.clocks = {k: sorted(v) for k, v in clocks.items()}
        self._starts = starts
        self._propagate(succ)
        self.prefix = _design_prefix(cells - {None})

    def _propagate(self, succ):
        """Longest-path arrivals in topological order (Kahn), linear in pins + arcs."""
        n = len(self.pins)
        indeg = [0] * n
        for arcs in succ:
            for d, _, _ in arcs:
                indeg[d] += 1
        arr = [_NEG] * n
        pred = [-1] * n
        via_cell = [False] * n
        for s, (delay, clk) in self._starts.items():
            arr[s] = delay
            pred[s] = clk
            via_cell[s] = True
        for _, clk in self._starts.values():
            arr[clk] = max(arr[clk], 0.0)
        queue = deque(i for i in range(n) if indeg[i] == 0)
        seen = 0
        while queue:
            u = queue.popleft()
            seen += 1
            a = arr[u]
            for d, delay, cell in succ[u]:
                if a != _NEG and a + delay > arr[d]:
                    arr[d] = a + delay
                    pred[d] = u
                    via_cell[d] = cell
                indeg[d] -= 1
                if indeg[d] == 0:
                    queue.append(d)
        self.arrival = arr
        self._pred = pred
        self._via_cell = via_cell
        self.loops = n - seen

    @classmethod
    def from_file(cls, path, **what_if):
        """Read an SDF file (``SdfError`` if it cannot be read as one); ``what_if``: the
        ``wire_scale`` and ``clock_to_out`` arguments."""
        try:
            with open(path, errors="replace") as f:
                return cls(f, **what_if)
        except OSError as e:
            raise SdfError(f"Cannot read {path}: {e.strerror}") from None

    def endpoints(self):
        """``{pin: required period (ps)}``: arrival + setup of every endpoint a register
        reaches."""
        arr, pins = self.arrival, self.pins
        return {pins[p]: arr[p] + s for p, s in self.setup.items() if arr[p] != _NEG}

    def _path(self, p):
        chain = [p]
        while self._pred[chain[-1]] >= 0:
            chain.append(self._pred[chain[-1]])
        return chain[::-1]

    def worst_path(self, pin):
        """The latest path into ``pin`` as ``[(pin, arrival ps), ...]``, from the clock pin of
        the register it starts at (arrival 0) to ``pin``; the endpoint's setup is not
        included (``setup[pin]``)."""
        p = self._index.get(pin)
        if p is None or self.arrival[p] == _NEG:
            raise KeyError(f"No timed path into {pin!r}")
        return [(self.pins[q], self.arrival[q]) for q in self._path(p)]

    def logic_levels(self, pin):
        """Cell arcs (LUTs, carries, muxes) on the worst path into ``pin``, clock-to-out not
        counted (nextpnr's "logic" steps)."""
        chain = self._path(self._index[pin])
        return sum(1 for q in chain[2:] if self._via_cell[q])

    def fanout(self, pin):
        """Wires (``INTERCONNECT`` arcs) leaving ``pin``: its net's fanout."""
        return self._fanout[self._index[pin]]

    def wire_hops(self, pin):
        """The wires on the worst path into ``pin``: ``[(driver pin, delay ps), ...]``, in
        path order, zero-delay hops (carry chains) left out."""
        arr, chain = self.arrival, self._path(self._index[pin])
        return [(self.pins[u], arr[v] - arr[u]) for u, v in zip(chain, chain[1:], strict=False)
                if not self._via_cell[v] and arr[v] > arr[u]]

    def setup_of(self, pin):
        return self.setup[self._index[pin]]

    def group(self, cell):
        """:func:`group` with this design's wrapper prefix."""
        return group(cell, self.prefix)


def _design_prefix(cells):
    """The wrapper prefix of the design's cells: the longest run of leading ``inner.``.

    Only the flow's wrappers (:class:`~cgaccel.synth.block.ScanWrapper`, ``DirectWrapper``,
    :class:`~cgaccel.synth.reset.GlobalResetTop`) name a submodule ``inner``; the block top
    puts the design under ``inner.inner.`` on ECP5 (reset top, scan wrapper) and ``inner.`` on
    iCE40, a board top under ``inner.`` on ECP5 and at the top on iCE40.
    """
    depth = 0
    for c in cells:
        k = 0
        while c.startswith("inner.", 6 * k):
            k += 1
        depth = max(depth, k)
    return "inner." * depth


# What the tools append to a signal's name: an upper-case word after "_" (yosys's mapped cells
# ``_TRELLIS_FF_Q_3``, ``_DI_LUT4_Z``, ``_SB_DFFESR_Q``, nextpnr's ``_DFFLC`` / ``_LC``, memory
# ports ``_DOB4``, ``_WADDR_7``, ``_RAM``; Amaranth names are lower case) or a "$" word
# (``$CCU2_COMB1``, ``$DPRAM_COMB0``, ``$RAMW_SLICE``); ``$289`` is Amaranth's numbering.
_CUT = re.compile(r"(?<=[^.])\$(?![\d$])|_[A-Z][A-Z0-9]*(?=_|$)")
_TAIL = re.compile(r"(?:\.\d+)+$|(?:\[\d+\])+$")


@lru_cache(maxsize=1 << 16)
def group(cell, prefix=None):
    """The register or memory a cell belongs to, with its hierarchy, from its name.

    yosys names a mapped flip-flop after its signal (``engine.col1.free_TRELLIS_FF_Q_3``) and
    logic after the cell it drives (``free_TRELLIS_FF_Q_3_DI_LUT4_Z``): both are ``free``'s.
    Memory blocks lose their indices (``setup_fifo.storage.0.12$RAMW_SLICE`` ->
    ``setup_fifo.storage``), bits their ``[3]``. Names from Amaranth's numbering
    (``$signal$289``, ``port$1015$0``, ``i_valid$169``) stay; cells nextpnr made up are
    ``$nextpnr`` (or ``$gbuf``).

    Parameters
    ----------
    cell : str
        Cell name (or ``cell/PIN``), unescaped.
    prefix : str, optional
        The wrapper prefix (``"inner.inner."``, see :attr:`Timing.prefix`): removed from the
        design's cells; the other cells' names get ``wrapper:`` in front instead. Default:
        every leading ``inner.`` is removed.
    """
    name = cell.rpartition("/")[0] if "/" in cell else cell
    name = name.replace("\\$", "$")            # yosys keeps a Verilog escape: ``\$2``
    for made in ("$nextpnr", "$gbuf"):         # cells nextpnr made (carry LCs, global buffers)
        if name.startswith(made):
            return made
    if prefix is None:
        while name.startswith("inner."):
            name = name[6:]
    elif name.startswith(prefix):
        name = name[len(prefix):]
    else:
        while name.startswith("inner."):
            name = name[6:]
        name = "wrapper:" + name
    m = _CUT.search(name)
    if m:
        name = name[:m.start()]
    while True:
        short = _TAIL.sub("", name)
        if short == name:
            return name
        name = short


def load(sdf, **what_if):
    """A :class:`Timing` from a path (file, or a directory holding ``routed.sdf``) or itself;
    ``what_if``: :class:`Timing`'s ``wire_scale`` and ``clock_to_out``, for a path."""
    if isinstance(sdf, Timing):
        return sdf
    path = Path(sdf)
    if path.is_dir():
        path = path / "routed.sdf"
    return Timing.from_file(path, **what_if)


def endpoints(sdf):
    """``{pin: required period (ps)}`` of every endpoint of an SDF
    (:meth:`Timing.endpoints`)."""
    return load(sdf).endpoints()


def worst_path(sdf, pin):
    """The latest path into ``pin``: ``[(pin, arrival ps), ...]`` (see
    :meth:`Timing.worst_path`)."""
    return load(sdf).worst_path(pin)


def summary(sdf, mhz=150.0, *, top=30, target_mhz=None):
    """Endpoints, failing endpoints and the worst groups of a routed design.

    Parameters
    ----------
    sdf : path or Timing
        nextpnr's SDF (or a directory holding ``routed.sdf``).
    mhz : float
        Count the endpoints that fail at this frequency.
    top : int
        How many groups to list (the worst first).
    target_mhz : float, optional
        Also count the endpoints failing at this frequency (the flow's target).

    Returns
    -------
    dict
        ``endpoints``, ``mhz``, ``failing`` (at ``mhz``), ``target_mhz``, ``failing_at_target``
        (``None`` without a target), ``worst_ns`` (the longest required period: nextpnr's
        critical path), ``worst_from`` / ``worst_to`` (its pins), ``worst_levels``,
        ``groups_total``, ``loops`` and ``groups``: the ``top`` worst, each ``group``,
        ``endpoints``, ``failing``, ``failing_at_target``, ``worst_ns``, ``from`` (the group
        its worst path starts at) and ``logic_levels`` on that path.
    """
    if isinstance(mhz, bool) or not isinstance(mhz, (int, float)) or mhz <= 0:
        raise ValueError(f"Frequency must be a positive number of MHz, not {mhz!r}")
    if isinstance(top, bool) or not isinstance(top, int) or top < 0:
        raise ValueError(f"Group count must be a non-negative integer, not {top!r}")
    t = load(sdf)
    period = 1e6 / mhz
    target = None if target_mhz is None else 1e6 / target_mhz
    ends = t.endpoints()
    groups = {}
    for pin, req in ends.items():
        g = groups.setdefault(t.group(pin), [0, 0, 0, _NEG, None])
        g[0] += 1
        g[1] += req > period
        g[2] += target is not None and req > target
        if req > g[3]:
            g[3], g[4] = req, pin
    worst = max(ends, key=ends.get) if ends else None
    rows = sorted(groups.items(), key=lambda kv: (-kv[1][3], kv[0]))[:top]
    return {
        "endpoints": len(ends), "mhz": mhz,
        "failing": sum(1 for r in ends.values() if r > period),
        "target_mhz": target_mhz,
        "failing_at_target": None if target is None else sum(
            1 for r in ends.values() if r > target),
        "worst_ns": round(ends[worst] / 1000, 3) if worst else None,
        "worst_from": t.worst_path(worst)[1][0] if worst else None,
        "worst_to": worst,
        "worst_levels": t.logic_levels(worst) if worst else None,
        "groups_total": len(groups),
        "loops": t.loops,
        "groups": [{"group": name, "endpoints": n, "failing": fail,
                    "failing_at_target": None if target is None else fail_t,
                    "worst_ns": round(req / 1000, 3),
                    "from": t.group(t.worst_path(pin)[0][0]),
                    "logic_levels": t.logic_levels(pin)}
                   for name, (n, fail, fail_t, req, pin) in rows],
    }


def blocks(sdf, mhz=150.0, *, depth=1, shallow=4):
    """The endpoints failing at ``mhz``, added up by block: where a clock target is missed.

    A group's block is the first ``depth`` parts of its dotted name (``engine.col1.g_oy`` is in
    ``engine`` at depth 1, ``engine.col1`` at depth 2). A failing endpoint whose worst path has
    at most ``shallow`` logic levels is counted apart: with so few LUTs the time goes to wires
    and to the clock-to-out of a block RAM or DSP, which placement, routing or the primitive's
    own output register decide; a deeper one needs its logic cut by a register.

    Returns
    -------
    list of dict
        One per block with a failing endpoint, the most failing first: ``block``,
        ``endpoints``, ``failing``, ``failing_shallow`` (of ``failing``), ``worst_ns``.
    """
    if isinstance(mhz, bool) or not isinstance(mhz, (int, float)) or mhz <= 0:
        raise ValueError(f"Frequency must be a positive number of MHz, not {mhz!r}")
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ValueError(f"Block depth must be a positive integer, not {depth!r}")
    if isinstance(shallow, bool) or not isinstance(shallow, int) or shallow < 0:
        raise ValueError(f"Shallow level count must be a non-negative integer, not {shallow!r}")
    t = load(sdf)
    period = 1e6 / mhz
    rows = {}
    for pin, req in t.endpoints().items():
        name = ".".join(t.group(pin).split(".")[:depth])
        r = rows.setdefault(name, [0, 0, 0, _NEG])
        r[0] += 1
        if req > period:
            r[1] += 1
            r[2] += t.logic_levels(pin) <= shallow
        r[3] = max(r[3], req)
    return [{"block": name, "endpoints": n, "failing": fail, "failing_shallow": sh,
             "worst_ns": round(req / 1000, 3)}
            for name, (n, fail, sh, req) in sorted(rows.items(),
                                                   key=lambda kv: (-kv[1][1], kv[0]))
            if fail]


def nets(sdf, mhz=150.0, *, top=20):
    """The nets on the worst paths of the endpoints failing at ``mhz``: which wires to shorten
    (a copy of the driver nearer its loads, a register on the way) to fix the most endpoints.

    Every failing endpoint's worst path is followed; each wire on it counts once for the net
    it belongs to (named by its driver pin).

    Returns
    -------
    list of dict
        The ``top`` nets through the most failing endpoints (then the longest wire first):
        ``net`` (driver pin), ``group`` (the driver's), ``fanout`` (the net's wires in the
        whole design), ``failing`` (endpoints whose worst path uses it), ``longest_ns`` (its
        longest wire on those paths).
    """
    if isinstance(mhz, bool) or not isinstance(mhz, (int, float)) or mhz <= 0:
        raise ValueError(f"Frequency must be a positive number of MHz, not {mhz!r}")
    if isinstance(top, bool) or not isinstance(top, int) or top < 0:
        raise ValueError(f"Net count must be a non-negative integer, not {top!r}")
    t = load(sdf)
    period = 1e6 / mhz
    tally = {}
    for pin, req in t.endpoints().items():
        if req <= period:
            continue
        for net, delay in t.wire_hops(pin):
            n = tally.setdefault(net, [0, 0.0])
            n[0] += 1
            n[1] = max(n[1], delay)
    rows = sorted(tally.items(), key=lambda kv: (-kv[1][0], -kv[1][1], kv[0]))[:top]
    return [{"net": net, "group": t.group(net), "fanout": t.fanout(net), "failing": n,
             "longest_ns": round(d / 1000, 3)} for net, (n, d) in rows]


def format_nets(rows, mhz):
    """The table of :func:`nets`, as text."""
    lines = [f"{'fail@' + format(mhz, 'g'):>9} {'fanout':>6} {'wire ns':>7}  net (driver pin)"]
    for r in rows:
        lines.append(f"{r['failing']:>9} {r['fanout']:>6} {r['longest_ns']:>7.3f}  {r['net']}")
    return "\n".join(lines)


def format_blocks(rows, mhz, shallow=4):
    """The table of :func:`blocks`, as text."""
    lines = [f"{'fail@' + format(mhz, 'g'):>9} {'<=' + str(shallow) + ' levels':>10} "
             f"{'ends':>6} {'worst ns':>8}  block"]
    for r in rows:
        lines.append(f"{r['failing']:>9} {r['failing_shallow']:>10} {r['endpoints']:>6} "
                     f"{r['worst_ns']:>8.3f}  {r['block']}")
    if len(rows) > 1:
        lines.append(f"{sum(r['failing'] for r in rows):>9} "
                     f"{sum(r['failing_shallow'] for r in rows):>10} "
                     f"{sum(r['endpoints'] for r in rows):>6} {'':>8}  (blocks listed)")
    return "\n".join(lines)


def format_summary(s):
    """The table of :func:`summary`, as text."""
    tgt = s["target_mhz"]
    head = (f"{s['endpoints']} endpoints, {len(s['groups'])} of {s['groups_total']} groups "
            f"shown; worst {s['worst_ns']} ns"
            + (f" ({1000 / s['worst_ns']:.2f} MHz, {s['worst_levels']} logic levels)"
               if s["worst_ns"] else ""))
    fail = f"{s['failing']} endpoints fail at {s['mhz']:g} MHz"
    if tgt is not None:
        fail += f", {s['failing_at_target']} at the target {tgt:g} MHz"
    lines = [head, fail + (f"; {s['loops']} pins in combinational loops (not timed)"
                           if s["loops"] else "")]
    cols = f"{'fail@' + format(s['mhz'], 'g'):>9}"
    if tgt is not None:
        cols += f" {'fail@' + format(tgt, 'g'):>9}"
    lines.append(f"{cols} {'ends':>5} {'worst ns':>8} {'levels':>6}  group <- worst path from")
    for g in s["groups"]:
        row = f"{g['failing']:>9}"
        if tgt is not None:
            row += f" {g['failing_at_target']:>9}"
        lines.append(f"{row} {g['endpoints']:>5} {g['worst_ns']:>8.3f} {g['logic_levels']:>6}  "
                     f"{g['group']} <- {g['from']}")
    return "\n".join(lines)


def format_path(t, grp):
    """The worst path into group ``grp`` of :class:`Timing` ``t``, pin by pin (text)."""
    ends = {p: r for p, r in t.endpoints().items() if t.group(p) == grp}
    if not ends:
        raise KeyError(f"No timed endpoint in group {grp!r}")
    pin = max(ends, key=ends.get)
    lines = [f"worst path into {grp}: {ends[pin] / 1000:.3f} ns "
             f"({t.logic_levels(pin)} logic levels), {len(ends)} endpoints in the group",
             f"{'ps':>8}  pin (group)"]
    prev = None
    for p, a in t.worst_path(pin):
        g = t.group(p)
        lines.append(f"{a:>8.0f}  {p}" + (f"  ({g})" if g != prev else ""))
        prev = g
    lines.append(f"{ends[pin]:>8.0f}  setup {t.setup_of(pin):.0f} ps")
    return "\n".join(lines)


def main(argv=None):
    """``python -m cgaccel.synth.sta``: print the endpoint table (and a path)."""
    parser = argparse.ArgumentParser(
        prog="python -m cgaccel.synth.sta",
        description="Every timing endpoint of a routed design (nextpnr --sdf), by register.")
    parser.add_argument("sdf", metavar="DIR_OR_SDF",
                        help="nextpnr's SDF, or a flow output directory holding routed.sdf "
                             "(and report.json, whose target frequency is then counted too)")
    parser.add_argument("--mhz", type=float, default=150.0,
                        help="count endpoints failing at this frequency (default 150)")
    parser.add_argument("--top", type=int, default=30, help="groups to list (default 30)")
    parser.add_argument("--path", metavar="GROUP", default=None,
                        help="also print the worst path into GROUP, pin by pin")
    parser.add_argument("--blocks", metavar="DEPTH", type=int, default=None,
                        help="also add up the failing endpoints by block, the first DEPTH "
                             "parts of the group name (1: controller, engine, ...; 2: "
                             "engine.col0, ...)")
    parser.add_argument("--nets", metavar="N", type=int, default=None,
                        help="also list the N nets on the most failing endpoints' worst paths "
                             "(fanout, longest wire)")
    parser.add_argument("--wire-scale", type=float, default=1.0, metavar="F",
                        help="what if every interconnect delay were F times nextpnr's (0: the "
                             "logic-only bound)")
    parser.add_argument("--clock-to-out", action="append", default=[],
                        metavar="CELLTYPE=NS",
                        help="what if every CELLTYPE's clock-to-out were NS (DP16KD=0.92: "
                             "block RAM reads through the output register); repeatable")
    args = parser.parse_args(argv)
    path = Path(args.sdf)
    what_if = {}
    try:
        if args.wire_scale != 1.0:
            what_if["wire_scale"] = args.wire_scale
        for item in args.clock_to_out:
            kind, eq, ns = item.partition("=")
            try:
                what_if.setdefault("clock_to_out", {})[kind] = float(ns) * 1000
            except ValueError:
                eq = ""
            if not eq or not kind:
                raise ValueError(f"--clock-to-out must be CELLTYPE=NS, not {item!r}")
    except ValueError as e:
        print(f"sta: error: {e}", file=sys.stderr)
        return 1
    target = None
    report = (path if path.is_dir() else path.parent) / "report.json"
    if report.is_file():
        try:
            target = json.loads(report.read_text()).get("freq_target_mhz")
        except ValueError:
            target = None
    start = time.monotonic()
    try:
        t = load(path, **what_if)
        s = summary(t, args.mhz, top=args.top, target_mhz=target)
    except (SdfError, ValueError) as e:
        print(f"sta: error: {e}", file=sys.stderr)
        return 1
    print(f"{path}: {len(t.pins)} pins, {time.monotonic() - start:.1f} s"
          + "".join(f"; what if {k} = {v}" for k, v in what_if.items()))
    print(format_summary(s))
    # The optional tables, each after the summary.
    tables = [(args.blocks, lambda: format_blocks(blocks(t, args.mhz, depth=args.blocks),
                                                  args.mhz)),
              (args.nets, lambda: format_nets(nets(t, args.mhz, top=args.nets), args.mhz))]
    for option, table in tables:
        if option is None:
            continue
        try:
            text = table()
        except ValueError as e:
            print(f"sta: error: {e}", file=sys.stderr)
            return 1
        print()
        print(text)
    if args.path is not None:
        try:
            print()
            print(format_path(t, args.path))
        except KeyError as e:
            print(f"sta: error: {e.args[0]}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
