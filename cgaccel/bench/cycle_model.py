"""Analytical cycle model of the compute engine, derived from its RTL (not fitted).

Given a tiled layer (:func:`cgaccel.engine.tiling.plan_layer`) and, for a gated layer, the golden
model's gate map, predict the cycles the engine RTL spends on it.

Compute cycles (the engine's ``cnt_busy``) of one tile
------------------------------------------------------
Every column walks its work items ``(i, p)`` (local output channel ``i``, output pixel ``p``) in
order and issues at most one word (``rows`` MACs) per cycle (:mod:`cgaccel.engine.column`):

* a base item costs ``max(1, taps(p) * base_words)`` issue cycles; an item whose channel the FBS
  output mask switches off, or with no base word, is a 1-cycle bubble;
* in a gated tile, an item whose gate opens (golden ``gate[k, oy, ox]``) later costs ``max(1,
  taps(p) * cond_words)`` more issue cycles. Its conditional item becomes issuable
  ``GATE_LATENCY`` cycles after the base item's last word (issue, list read and two registers,
  operand read and register, the ``MacColumn`` pipeline, accumulate, gate decision, conditional
  queue); the issue stage takes queued conditional work before new base work, and a base item of
  a gated tile needs one of ``psum_slots`` slots, held until its gate closes or its conditional
  item finishes (released with the same latency). With those rules the issue sequence is
  replayed item by item;
* a column is busy from ``FILL`` cycles before its first word (start, item generator and four
  setup stages, setup FIFO) to ``DRAIN`` cycles after its last (issue register, list read,
  list registers (2), operand read, operand register, ``MacColumn`` latency, accumulate, gate
  register, ten output-unit stages, the completion check). A column with no channel in the
  tile is busy for one cycle.

Without gating and without slot pressure a column's tile is ``FILL + sum of item costs + DRAIN``
busy cycles. A pixel-split tile (``psplit``) gives column ``j`` every channel on pixels
``[j*pc, (j+1)*pc)``; before its first item the column walks to pixel ``j*pc`` (one cycle per
row, then per pixel, plus one: :func:`ff_cycles`). With dealt pixels (``pdeal``) column ``j``
gets pixels ``s, s+cols, ...`` of channel ``k``, ``s = (j + k) % cols`` (rotated a column per
channel; a channel with ``s`` past the tile has none there), and walks to pixel ``j`` while it
divides ``cols`` by ``wo`` (one cycle per row of the step), whichever takes longer, plus one.

Tiles and columns
-----------------
With a double-buffered output bank (tile command ``obuf``) the engine queues one tile per
buffer half, and a column starts its part of the next tile as soon as it has finished the
current one (``COL_RESTART`` cycles after its last busy cycle: queue pop, registered start);
otherwise a tile is accepted only when the previous one is done and read back. Either way a
column starts no earlier than ``cmd_to_busy`` cycles (:class:`PipelineTiming`) after the
command was accepted (intake FSM: IDLE, SIZE while the size checks step through their
products, CHECK; queue; registered start). ``cnt_busy`` counts the cycles at least one column
is busy: the union of every column's busy intervals. A tile is done (``o_done``, and its
half free for new writes) ``HALF_FREE`` cycles after its last column's last busy cycle (the
column's ``fin`` flip-flop, then the engine's ``remaining``).

Total cycles of the engine-only testbench (:func:`cgaccel.engine.sim.run_plans`)
------------------------------------------------------------------------------
The loader issues one buffer write per cycle (up to ``load_lanes`` consecutive activation or
weight words each, :meth:`~cgaccel.engine.geometry.Geometry.lane_writes`); tile ``n``'s writes
go to half ``n % 2`` and wait until tile ``n-2`` (same half) is done (activation writes after or
for a ``wide`` tile, whose band spans both halves: until tile ``n-1`` is done); then the loader
waits for
the write-back of the tile that last used the same outputs (``n-2`` with ``obuf``, else
``n-1``), preloads residuals and issues the command. The reader takes ``o_done`` in order and
reads each tile back (one read request per cycle: a byte, a dealt tile's row of ``cols``
bytes or another tile's word of ``out_word`` bytes, as the controller reads them,
:meth:`~cgaccel.engine.geometry.Geometry.read_requests`)
while later tiles compute. What does not overlap
compute is then the first tile's load, the last tile's write-back, and any load longer than the
compute it hides behind.
"""

import heapq
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from ..engine.engine import read_latency
from ..engine.geometry import Geometry, Target
from ..engine.intake import intake_cycles

__all__ = ["PipelineTiming", "TileEstimate", "LayerEstimate", "pipeline_timing", "estimate_plan",
           "model_error_pct", "ff_cycles"]

# cgaccel.engine.output_unit.OutputUnit.latency without its ``dsp_copy`` stage, which the
# config's ``hard_block_regs`` adds.
OUTPUT_UNIT_LATENCY = 9
# Issue register, list read, list fabric register, operand read, operand output register,
# operand fabric register (cgaccel.engine.column); ``hard_block_regs`` adds the list's output
# register.
FETCH_STAGES = 6
# Last busy cycle -> go (queue pop) -> registered start -> first busy cycle of the next tile.
COL_RESTART = 3
# Last busy cycle of a tile's last column -> its ``fin`` flip-flop -> the engine's
# ``remaining`` clear: the tile is done (``o_done``, its half free) this many cycles later.
HALF_FREE = 2
# Testbench: o_done handshake and the write-back FIFO, besides the last read's latency to the
# FIFO (``cgaccel.engine.engine.read_latency``: the columns' request registers with more than
# one column, read port, the block RAM's output register, the column's word register).
TB_READBACK = 2
TB_WAKEUP = 1             # testbench: a waiting process sees another's progress a cycle later


@dataclass(frozen=True)
class PipelineTiming:
    """Fixed latencies of one configuration, each counted stage by stage in the RTL.

    Members
    -------
    mac_latency : int
        ``MacColumn.latency``: operand registers, one multiplier stage, then
        ``ceil(log2(rows))`` adder levels.
    fill : int
        Busy cycles before a column's first word: the registered start loads the item generator
        (1), the generator registers an item (1), four setup stages (S1..S4), the setup FIFO
        makes it readable (the issue stage loads it in that cycle); 6 in all.
    drain : int
        Busy cycles after a column's last word: issue register, list read, list output
        and fabric registers, operand read, operand output register, operand fabric
        register (7 fetch stages, 6 without ``hard_block_regs``),
        ``mac_latency``, accumulate register (1), gate/output register (1), output unit
        (``OutputUnit.latency`` = 10, 9 without ``hard_block_regs``), completion check (1).
    gate_latency : int
        Cycles from an item's last base word to the earliest first word of its conditional
        item (also when a released psum slot can be reused): the fetch stages, ``mac_latency``,
        accumulate register, conditional-queue write, queue read-out.
    intake : int
        Cycles from one accepted tile command to the earliest next: IDLE, SIZE for the
        size checks' ``intake_cycles`` (:mod:`cgaccel.engine.intake`), CHECK.
    cmd_to_busy : int
        Cycles from an accepted command to its columns' first busy cycle: the intake, then
        column queue valid, go, registered start.
    readback : int
        Testbench: a tile's ``o_done`` to its last write-back read's data, besides one cycle
        per read request (``TB_READBACK`` and the engine's ``read_latency``).
    """

    mac_latency: int
    fill: int
    drain: int
    gate_latency: int
    intake: int
    cmd_to_busy: int
    readback: int


def pipeline_timing(config):
    """The :class:`PipelineTiming` of ``config`` (``rows``, and the field widths for the
    intake)."""
    mac = 2 + (config.rows - 1).bit_length()
    intake = 2 + intake_cycles(config)
    hb = int(config.hard_block_regs)
    fetch = FETCH_STAGES + hb
    return PipelineTiming(mac_latency=mac, fill=6,
                          drain=fetch + mac + 2 + OUTPUT_UNIT_LATENCY + hb + 1,
                          gate_latency=fetch + mac + 3,
                          intake=intake, cmd_to_busy=intake + 2,
                          readback=TB_READBACK + read_latency(config))


@dataclass(frozen=True)
class TileEstimate:
    """Predicted cycles of one tile.

    Members
    -------
    busy : int
        The tile's compute cycles on its own (max over columns; tiles overlap in the engine).
    col_busy : tuple of int
        Busy cycles of every column for this tile.
    words : int
        Words (``rows``-MAC issue slots) issued over all columns, bubbles excluded.
    col_issue : tuple of int
        Per column, the cycle after its last issued word (0 for a column with no work).
    writes, out_writes, reads : int
        Buffer writes, residual preloads and write-back reads (bytes) of the tile.
    obuf : bool
        The tile uses one half of a double-buffered output bank (tile command ``obuf``).
    wide : bool
        The tile's band spans both activation halves (tile command ``wide``).
    act_writes : int
        Of ``writes``, those of activations (the last ones of a wide tile, else the first).
    read_reqs : int
        Write-back read requests (cycles): ``reads``, or a dealt tile's rows.
    """

    busy: int
    col_busy: tuple
    words: int
    col_issue: tuple
    writes: int
    out_writes: int
    reads: int
    obuf: bool = False
    wide: bool = False
    act_writes: int = 0
    read_reqs: int = None

    def __post_init__(self):
        if self.read_reqs is None:
            object.__setattr__(self, "read_reqs", self.reads)


@dataclass(frozen=True)
class LayerEstimate:
    """Predicted cycles of one layer.

    Members
    -------
    compute_cycles : int
        Cycles at least one column is busy (what the engine's ``cnt_busy`` counts).
    total_cycles : int
        Cycles of the engine-only testbench from the first buffer write to the last write-back
        read, with the load/store traffic that does not overlap compute.
    tiles : list of TileEstimate
    """

    compute_cycles: int
    total_cycles: int
    tiles: list = field(repr=False)

    @property
    def words(self):
        return sum(t.words for t in self.tiles)


def _wo(plan, tile):
    """Output columns of a tile (a column strip, or the whole width)."""
    return plan.shape[2] if tile.wo is None else tile.wo


def _column_work(plan, tile, j, cols):
    """``(channel, pixels)`` pairs (tile-local channel, slice of the tile's pixels) column
    ``j`` computes, in order."""
    P = tile.ho * _wo(plan, tile)
    if tile.cmd.get("psplit") and tile.cmd.get("pdeal"):
        # Rotated a column per channel: channel k's first pixel is (j + k) % cols.
        return [(k, slice(s, max(s, P), cols)) for k in range(tile.kt)
                if (s := (j + k) % cols) < P]
    if tile.cmd.get("psplit"):
        pc = tile.cmd["pc"]
        lo = min(P, j * pc)
        pix = slice(lo, min(P, lo + pc))
        return [(k, pix) for k in range(tile.kt)] if pix.stop > lo else []
    return [(k, slice(0, P)) for k in range(j, tile.kt, cols)] if P else []


def ff_cycles(plan, tile, j, cols=None):
    """Cycles a pixel-split column walks to its first pixel before its first item (0 else).

    ``cols`` (the array's columns) is needed for dealt pixels (``pdeal``)."""
    if not tile.cmd.get("psplit"):
        return 0
    wo = _wo(plan, tile)
    deal = tile.cmd.get("pdeal")
    q, r = divmod(j if deal else j * tile.cmd["pc"], wo)
    if q >= tile.ho:
        # Chunk past the tile: row steps until it leaves, then stop; dealt pixels go on with
        # the next channels (rotated, they start at other pixels) once ``cols`` is divided.
        return (max(tile.ho, cols // wo) if deal else tile.ho) + 1
    if deal:
        # Meanwhile the column divides its pixel step ``cols`` by ``wo`` (one row a cycle).
        return max(q + r, cols // wo) + 1
    return q + r + 1


def _column_items(plan, tile, j, cols, gate):
    """Base costs, conditional costs (0: gate closed), slot needs and words of column ``j``."""
    ho = tile.ho
    work = _column_work(plan, tile, j, cols)
    cs = slice(tile.ox0, tile.ox0 + _wo(plan, tile))
    all_taps = plan.taps[tile.oy0:tile.oy0 + ho, cs].reshape(-1)
    base, cond, slot = [], [], []
    words = 0
    if not work:
        return None
    for kl, pix in work:
        taps = all_taps[pix]
        n = len(taps)
        k = tile.k0 + kl
        nb, nc = plan.segments[k]
        if not plan.omask[k]:
            base.append(np.ones(n, np.int64))
            cond.append(np.zeros(n, np.int64))
            slot.append(np.zeros(n, bool))
            continue
        base.append(np.maximum(1, taps * nb))
        words += int((taps * nb).sum())
        if plan.gated:
            g = gate[k, tile.oy0:tile.oy0 + ho, cs].reshape(-1)[pix].astype(bool)
            cond.append(np.where(g, np.maximum(1, taps * nc), 0))
            words += int((taps[g] * nc).sum())
            slot.append(np.ones(n, bool))
        else:
            cond.append(np.zeros(n, np.int64))
            slot.append(np.zeros(n, bool))
    return np.concatenate(base), np.concatenate(cond), np.concatenate(slot), words


def _generator_gaps(plan, tile, j, cols):
    """Dealt tiles of ``P < cols`` pixels: the item generator passes a channel without a pixel
    in column ``j`` in a cycle of its own. Returns ``(lead, avail)``: the cycles it passes
    before the column's first item, and per item the cycles after the first item's at which
    the generator emits it (``None`` where no channel is passed)."""
    P = tile.ho * _wo(plan, tile)
    if not (tile.cmd.get("psplit") and tile.cmd.get("pdeal")) or P >= cols:
        return 0, None
    pos, g = [], 0
    for k in range(tile.kt):
        s = (j + k) % cols
        if s >= P:
            g += 1
            continue
        n = -(-(P - s) // cols)
        pos += range(g, g + n)
        g += n
    if not pos:
        return 0, None
    return pos[0], [p - pos[0] for p in pos]


def _replay_gated(base, cond, slot, nslots, gl, avail=None):
    """Issue-stage replay of one column; returns the cycle after the last issued word. With
    ``avail``, base item ``i`` is not issued before cycle ``avail[i]``."""
    t = 0
    n = len(base)
    bi = 0
    free = nslots
    releases = []          # first-word cycles from which a released slot is usable
    condq = deque()        # (ready cycle, cost)
    end = 0
    base_l = base.tolist()
    cond_l = cond.tolist()
    slot_l = slot.tolist()
    while bi < n or condq:
        while releases and releases[0] <= t:
            heapq.heappop(releases)
            free += 1
        if condq and condq[0][0] <= t:
            _, cost = condq.popleft()
            end = t + cost
            heapq.heappush(releases, end - 1 + gl)
            t = end
        elif bi < n and avail is not None and avail[bi] > t:
            t = avail[bi] if not condq else min(avail[bi], max(t + 1, condq[0][0]))
        elif bi < n and (not slot_l[bi] or free):
            cost = base_l[bi]
            end = t + cost
            if slot_l[bi]:
                free -= 1
                if cond_l[bi]:
                    condq.append((end - 1 + gl, cond_l[bi]))
                else:
                    heapq.heappush(releases, end - 1 + gl)
            bi += 1
            t = end
        else:
            nxt = []
            if condq:
                nxt.append(condq[0][0])
            if releases:
                nxt.append(releases[0])
            t = max(t + 1, min(nxt))
    return end


def estimate_plan(config, plan, gate=None):
    """Predict the cycles of ``plan`` on ``config``'s engine.

    Parameters
    ----------
    config : AccelConfig
        The configuration the plan was made for.
    plan : LayerPlan
    gate : ndarray [K, Ho, Wo], optional
        Golden-model gate map; required when the plan is gated.

    Returns
    -------
    LayerEstimate

    Raises
    ------
    ValueError
        A gated plan without a gate map of the plan's output shape.
    """
    if plan.gated:
        if gate is None:
            raise ValueError("gate must be given for a gated plan, not None")
        gate = np.asarray(gate)
        if gate.shape != tuple(plan.shape):
            raise ValueError(f"gate must have shape {tuple(plan.shape)}, not {gate.shape}")
    tm = pipeline_timing(config)
    geo = Geometry(config)
    cols = config.cols
    tiles = []
    for tile in plan.tiles:
        col_issue = []
        words = 0
        leads = [0] * cols
        for j in range(cols):
            items = _column_items(plan, tile, j, cols, gate)
            if items is None:
                col_issue.append(0)
                continue
            base, cond, slot, w = items
            words += w
            lead, avail = _generator_gaps(plan, tile, j, cols)
            leads[j] = lead
            if slot.any() or avail is not None:
                col_issue.append(_replay_gated(base, cond, slot, config.psum_slots,
                                               tm.gate_latency, avail))
            else:
                col_issue.append(int(base.sum()))
        # A column with no work (no channel, or a pixel chunk past the tile) is busy for the
        # start cycle (and its walk to the chunk) only.
        ff = [ff_cycles(plan, tile, j, cols) + leads[j] for j in range(cols)]
        col_busy = tuple(tm.fill + f + c + tm.drain if c else 1 + f
                         for f, c in zip(ff, col_issue, strict=True))
        tiles.append(TileEstimate(busy=max(col_busy), col_busy=col_busy, words=words,
                                  col_issue=tuple(col_issue),
                                  writes=len(geo.lane_writes(tile.writes)),
                                  out_writes=len(tile.out_writes), reads=len(tile.reads),
                                  read_reqs=len(geo.read_requests(
                                      tile.reads, tile.cmd.get("pdeal"), word=True)),
                                  obuf=bool(tile.cmd.get("obuf", 0)),
                                  wide=bool(tile.cmd.get("wide", 0)),
                                  act_writes=len(geo.lane_writes(
                                      [w for w in tile.writes if w[0] == Target.ACT]))))
    compute, total = _timeline(tiles, cols, tm)
    return LayerEstimate(compute_cycles=compute, total_cycles=total, tiles=tiles)


def _union_length(intervals):
    """Cycles covered by inclusive ``(first, last)`` intervals."""
    n = 0
    cur_a = cur_b = None
    for a, b in sorted(intervals):
        if cur_b is None or a > cur_b + 1:
            if cur_b is not None:
                n += cur_b - cur_a + 1
            cur_a, cur_b = a, b
        else:
            cur_b = max(cur_b, b)
    if cur_b is not None:
        n += cur_b - cur_a + 1
    return n


def _timeline(tiles, cols, tm):
    """Engine and engine-only testbench timeline (see the module docstring).

    Returns ``(busy cycles, testbench cycles)``.
    """
    col_end = [None] * cols      # last busy cycle of every column
    fin, rb = [], []             # per tile: last busy cycle of any column, write-back done
    intervals = []
    loader = 0                   # first cycle the loader is free
    accept_prev = None
    for n, t in enumerate(tiles):
        w0 = loader if n < 2 else max(loader, fin[n - 2] + HALF_FREE)
        accept = w0 + t.writes
        # Activation writes wait while a wide tile is in flight, and a wide band also fills
        # the previous tile's half: after the previous tile (which finishes after every
        # earlier one). A wide tile writes its band last, a narrow tile first.
        if n >= 1 and t.act_writes and (t.wide or tiles[n - 1].wide
                                        or (n >= 2 and tiles[n - 2].wide)):
            if t.wide:
                accept = max(accept, fin[n - 1] + HALF_FREE + t.act_writes)
            else:
                accept = max(w0, fin[n - 1] + HALF_FREE) + t.writes
        # The tile that last used this tile's outputs must have been read back: two tiles
        # back with a double-buffered output bank, else the previous tile (which also keeps
        # a single-buffered tile from being queued behind another).
        back = 2 if t.obuf else 1
        if n >= back:
            accept = max(accept, rb[n - back] + TB_WAKEUP)
        accept += t.out_writes
        if accept_prev is not None:
            accept = max(accept, accept_prev + tm.intake)
        last = 0
        for j in range(cols):
            first = accept + tm.cmd_to_busy
            if col_end[j] is not None:
                first = max(first, col_end[j] + COL_RESTART)
            col_end[j] = first + t.col_busy[j] - 1
            intervals.append((first, col_end[j]))
            last = max(last, col_end[j])
        fin.append(last)
        start_rd = fin[n] + HALF_FREE
        if n:
            start_rd = max(start_rd, rb[n - 1] + TB_WAKEUP)
        rb.append(start_rd + t.read_reqs + tm.readback)
        loader = accept + 1
        accept_prev = accept
    return _union_length(intervals), (rb[-1] if rb else 0)


def model_error_pct(predicted, measured):
    """Signed model error in percent of the measured value (None when not measured)."""
    if measured is None or predicted is None:
        return None
    if measured == 0:
        return 0.0 if predicted == 0 else float("inf")
    return 100.0 * (predicted - measured) / measured
