"""Cycle model of a whole layer end to end: command list, controller, DMA and engine.

:mod:`cgaccel.bench.cycle_model` predicts the engine's compute cycles exactly, behind an ideal
loader (one buffer word per cycle, no command overhead). End to end the controller
(:mod:`cgaccel.controller`) executes the driver's command list one command at a time:

* every command is fetched from DRAM (``fetch`` cycles plus one per AXI beat of the 32-byte
  command: the DMA read and its decode);
* a ``LOAD`` is ``outer`` DMA transfers: the read DMA delivers each one's beats back to back,
  ``transfer_gap`` cycles apart, and the controller makes one engine write per item
  (activation and weight words: up to ``load_lanes`` per write within one beat of the read
  DMA's realigned stream), whichever is slower; its
  first item arrives ``load_latency`` cycles after the fetch, and it cannot write into a
  buffer half before the engine has finished the tile that uses it (an activation LOAD: before
  every ``wide`` tile in flight has finished);
* a ``RUN`` hands the tile command to the engine through a register slice of two places
  (whose columns then follow the engine model: intake, queue, drift into the next tile);
* a ``STORE`` checks its window (one cycle per bit of ``outer - 1``), waits for its tile,
  reads one output byte per cycle, one row of ``cols`` bytes per cycle when it is dealt
  and a row divides an AXI beat, or one word of ``out_word`` bytes per cycle when it is not
  dealt and its bank addresses are word-aligned (:func:`store_reads`), (a DMA write per outer
  iteration,
  each issued once its bytes are packed, at least ``store_min`` cycles apart) and ends
  ``store_tail`` cycles plus one per beat of its last write after that write is issued, when
  its write responses are in;
* ``END`` waits for the engine; ``CYCLES`` counts from the start pulse to done.

The engine-side constants come from the RTL (``cycle_model``); the front-end constants
(:class:`FrontEnd`) are latencies of the controller, the DMA engines and the DRAM model, read
off AXI traces of the end-to-end bench (``docs/bench.md`` says how) and checked against its
``CYCLES`` counter.
"""

from dataclasses import dataclass

from ..commands import COMMAND_BYTES, Op
from ..engine.engine import read_latency
from ..engine.geometry import Geometry, Target
from .cycle_model import COL_RESTART, HALF_FREE, _union_length, estimate_plan, pipeline_timing

__all__ = ["FrontEnd", "E2eEstimate", "estimate_e2e", "load_writes", "store_reads"]


@dataclass(frozen=True)
class FrontEnd:
    """Front-end latencies in cycles (defaults: read off AXI traces, see ``docs/bench.md``).

    Members
    -------
    start : int
        ``CTRL.start`` to the first command fetch.
    fetch : int
        One command: DMA read latency and decode, without its data beats (one cycle each:
        4 at 64 bits, 2 at 128).
    load_latency : int
        LOAD decode to its first transfer's data at the engine (the DMA read's latency).
    transfer_gap : int
        Cycles between the data beats of two transfers of a LOAD (the read DMA's command to
        data latency, not hidden behind the previous transfer's short burst).
    store_first : int
        STORE check to the first DMA write, besides packing its bytes (one per cycle) and
        the engine's read latency (:func:`~cgaccel.engine.engine.read_latency`: 4 with
        several columns, 3 with one).
    store_min : int
        Least cycles between two DMA writes of a STORE (the write engine's command latency).
    store_tail : int
        The last DMA write's command to the STORE's end, besides its data beats (write
        response and the controller's count of them).
    done : int
        END: the engine idle to ``STATUS.done``.
    run_latency : int
        RUN: the controller's hand-off to the engine's intake at the earliest (the top's
        command register slice, which holds two commands, so the controller goes on to the
        next command while the engine has not taken the tile yet).
    """

    start: int = 0
    fetch: int = 14
    load_latency: int = 11
    transfer_gap: int = 3
    store_first: int = 3
    store_min: int = 4
    store_tail: int = 7
    done: int = 0
    run_latency: int = 1


def load_writes(inner, item_bytes, beat_bytes, lanes):
    """Engine writes of one LOAD transfer of ``inner`` items of ``item_bytes``.

    The read DMA realigns the transfer to its first byte, so every beat but the last is full;
    the controller writes up to ``lanes`` items at once but never joins two beats.
    """
    per_beat = beat_bytes // item_bytes
    full, last = divmod(inner, per_beat)
    return full * -(-per_beat // lanes) + -(-last // lanes)


def store_reads(config, inner, deal, buf_addr=0, buf_stride=1):
    """Engine reads (cycles) of one STORE iteration of ``inner`` bytes.

    A dealt STORE reads whole rows (``cols`` consecutive bytes, one per column) when
    ``cols`` divides the AXI beat (:class:`~cgaccel.controller.Controller`); any other
    STORE reads a word of ``out_word`` bytes per cycle when ``buf_addr`` and ``buf_stride``
    are multiples of ``out_word``, else one byte per cycle
    (:meth:`~cgaccel.engine.geometry.Geometry.store_step`).
    """
    return -(-inner // _store_step(config, deal, buf_addr, buf_stride))


def _store_step(config, deal, buf_addr=0, buf_stride=1):
    """Bytes per engine read of a STORE."""
    return Geometry(config).store_step(deal, buf_addr, buf_stride)


@dataclass(frozen=True)
class E2eEstimate:
    """Predicted end-to-end figures of one compiled layer.

    Members
    -------
    cycles : int
        Start pulse to done (the top's ``CYCLES`` counter).
    busy : int
        Cycles at least one column computes (the top's ``BUSY`` counter).
    commands : int
    timeline : list of int
        With ``timeline=True``: the cycle each command ends (the controller fetches the
        next), to set beside a trace of the RTL's AXI bus when the model and the RTL part.
    """

    cycles: int
    busy: int
    commands: int
    timeline: list = None


def estimate_e2e(config, compiled, gate=None, fe=FrontEnd(), timeline=False):
    """Predict the end-to-end cycles of ``compiled`` (a :class:`~cgaccel.driver.CompiledLayer`).

    Parameters
    ----------
    config : AccelConfig
    compiled : CompiledLayer
    gate : ndarray, optional
        The golden gate map (required for a gated layer).
    fe : FrontEnd
    timeline : bool
        Also return every command's end cycle.

    Returns
    -------
    E2eEstimate
    """
    est = estimate_plan(config, compiled.plan, gate)
    tm = pipeline_timing(config)
    tiles = est.tiles
    cols = config.cols
    lanes = config.load_lanes
    beat = config.axi_bytes
    fetch = fe.fetch + -(-COMMAND_BYTES // config.axi_bytes)
    rd_lat = read_latency(config)
    geo = Geometry(config)
    lane_items = {(Target.ACT, geo.act_item_bits), (Target.WGT, geo.wgt_item_bits)}
    col_end = [None] * cols
    fin = []                # per tile: last busy cycle of any column
    intervals = []
    t = fe.start
    accept_prev = None
    accepts = []            # per tile: the cycle the engine took its command
    stored = 0              # tiles whose write-back has ended
    store_left = None       # bytes of tile ``stored`` not yet stored
    ends = [] if timeline else None
    for cmd in compiled.commands:
        t += fetch
        if cmd.op == Op.LOAD:
            first = t + fe.load_latency
            n = len(fin)    # the tile this LOAD fills (its RUN comes next)
            if cmd.target != Target.OUT and n >= 2:
                # Buffer half n % 2 is free once tile n-2 has finished; the top's write slice
                # already holds the first write then, so it reaches the engine a cycle later.
                first = max(first, fin[n - 2] + HALF_FREE)
            if cmd.target == Target.ACT and n >= 1 and (
                    cmd.bank != n % 2 or tiles[n - 1].wide or (n >= 2 and tiles[n - 2].wide)):
                # A wide band's other half is tile n-1's, and activation writes wait while a
                # wide tile is in flight: after tile n-1 (the last to finish).
                first = max(first, fin[n - 1] + HALF_FREE)
            item = 1 << cmd.item_log2
            ln = lanes if (cmd.target, 8 * item) in lane_items else 1
            # The read DMA delivers a transfer's beats back to back and pauses between
            # transfers; the controller writes the items as they come: whichever is slower
            # sets the pace.
            beats = -(-(cmd.inner * item) // beat)
            writes = load_writes(cmd.inner, item, beat, ln)
            t = first + max(cmd.outer * (beats + fe.transfer_gap),
                            cmd.outer * writes + fe.transfer_gap)
        elif cmd.op == Op.RUN:
            n = len(fin)
            # The controller hands the command to the top's command slice (two places) and
            # goes on; the engine takes it from there ``run_latency`` cycles on at the earliest.
            handoff = t if n < 2 else max(t, accepts[n - 2])
            accept = handoff + fe.run_latency
            if accept_prev is not None:
                accept = max(accept, accept_prev + tm.intake)
            # The engine takes a command for a half once that half's previous tile is done,
            # and a single-buffered tile only when nothing is in flight.
            if n >= 2:
                accept = max(accept, fin[n - 2] + HALF_FREE + 1)
            if not tiles[n].obuf and n >= 1:
                accept = max(accept, fin[n - 1] + HALF_FREE + 1)
            last = 0
            for j in range(cols):
                first = accept + tm.cmd_to_busy
                if col_end[j] is not None:
                    first = max(first, col_end[j] + COL_RESTART)
                col_end[j] = first + tiles[n].col_busy[j] - 1
                intervals.append((first, col_end[j]))
                last = max(last, col_end[j])
            fin.append(last)
            accept_prev = accept
            accepts.append(accept)
            t = handoff + 1
        elif cmd.op == Op.STORE:
            # Window check (shift-and-add over outer - 1, then the compare), wait for the
            # tile, then one DMA write per outer iteration once its bytes are packed; the
            # STORE ends when the last write's responses are in. Tiles are stored in order,
            # pixel-split and column-strip ones by several STOREs.
            if store_left is None:
                store_left = tiles[stored].reads
            t += (cmd.outer - 1).bit_length() + 2
            t = max(t, fin[stored] + HALF_FREE + 1)
            # A write whose bytes straddle one beat more than their count needs costs the
            # write DMA's realigner a cycle (hidden behind the next write's bytes when they
            # take longer).
            # The write DMA takes a write's first beat ``store_min`` cycles (and its
            # realigner's cycle) after the previous write's last: hidden while the packing
            # runs ahead (``first`` reads: the beat in the pack register and the two in the
            # controller's register slice), else the reads stall.
            step = _store_step(config, cmd.deal, cmd.buf_addr, cmd.buf_stride)
            reads = -(-cmd.inner // step)
            first = min(reads, 3 * (beat // step))
            t += fe.store_first + rd_lat + reads
            least = -(-cmd.inner // beat)
            for i in range(cmd.outer):
                beats = -(-((cmd.dram + i * cmd.dram_stride) % beat + cmd.inner) // beat)
                extra = beats - least
                # Words fill a beat in few reads: then the write DMA (a write's beats, the
                # gap to the next write) may be the slower side.
                t += (max(reads + max(0, fe.store_min + extra - first),
                          fe.store_min + beats - 1) if i else extra)
            t += beats + fe.store_tail
            store_left -= cmd.inner * cmd.outer
            if store_left == 0:
                stored += 1
                store_left = None
        elif cmd.op == Op.END:
            t = max(t, fin[-1] + HALF_FREE + 1 if fin else t) + fe.done
        if timeline:
            ends.append(t)
        if cmd.op == Op.END:
            break
    return E2eEstimate(cycles=t, busy=_union_length(intervals), commands=len(compiled.commands),
                       timeline=ends)
