"""Cycle model of a whole layer end to end: command list, controller, DMA and engine.

:mod:`cgaccel.bench.cycle_model` predicts the engine's compute cycles exactly, behind an ideal
loader (one buffer word per cycle, no command overhead). End to end the controller
(:mod:`cgaccel.controller`) executes the driver's command list one command at a time:

* every command is fetched from DRAM (``fetch`` cycles plus one per AXI beat of the 32-byte
  command: the DMA read and its decode);
* a ``LOAD`` moves ``inner * outer`` items into the engine, one per cycle at best (activation
  and weight words: ``load_lanes`` per cycle), as
  ``outer`` DMA transfers that each cost at least ``per_transfer`` cycles (small transfers:
  the parameter tables, the gathered pixels of a strided 1x1 layer); its first item arrives
  ``load_latency`` cycles after the decode, and it cannot write into a buffer half before
  the engine has finished the tile that uses it;
* a ``RUN`` hands the tile command to the engine (whose columns then follow the engine model:
  intake, queue, drift into the next tile);
* a ``STORE`` checks its window (one cycle per bit of ``outer - 1``), waits for its tile,
  reads one output byte per cycle and ends ``store_latency`` cycles after the last byte,
  when the DRAM write responses are in;
* ``END`` waits for the engine; ``CYCLES`` counts from the start pulse to done.

The engine-side constants come from the RTL (``cycle_model``); the front-end constants
(:class:`FrontEnd`) are latencies of the DMA engines and the DRAM model, measured once on the
end-to-end bench and stated in ``docs/bench.md`` with the command that checks them.
"""

from dataclasses import dataclass

from ..commands import COMMAND_BYTES, Op
from ..engine.geometry import Geometry, Target
from .cycle_model import CMD_TO_BUSY, COL_RESTART, INTAKE_CYCLES, _union_length, estimate_plan

__all__ = ["FrontEnd", "E2eEstimate", "estimate_e2e"]


@dataclass(frozen=True)
class FrontEnd:
    """Front-end latencies in cycles (defaults: fitted, see ``docs/bench.md``).

    Members
    -------
    start : int
        ``CTRL.start`` to the first command fetch.
    fetch : int
        One command: DMA read latency and decode, without its data beats (one cycle each:
        4 at 64 bits, 2 at 128).
    load_latency : int
        LOAD decode to its first item at the engine.
    per_transfer : int
        Least cycles of one DMA transfer (a LOAD's outer iteration): the read engine takes one
        command at a time and reads whole beats.
    transfer_gap : int
        Extra cycles between two transfers of a LOAD.
    store_latency : int
        A tile's last STORE byte to its DRAM write responses.
    done : int
        END: the engine idle to ``STATUS.done``.
    """

    start: int = 4
    fetch: int = 7
    load_latency: int = 3
    per_transfer: int = 4
    transfer_gap: int = 1
    store_latency: int = 20
    done: int = 3


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
    """

    cycles: int
    busy: int
    commands: int


def estimate_e2e(config, compiled, gate=None, fe=FrontEnd()):
    """Predict the end-to-end cycles of ``compiled`` (a :class:`~cgaccel.driver.CompiledLayer`).

    Parameters
    ----------
    config : AccelConfig
    compiled : CompiledLayer
    gate : ndarray, optional
        The golden gate map (required for a gated layer).
    fe : FrontEnd

    Returns
    -------
    E2eEstimate
    """
    est = estimate_plan(config, compiled.plan, gate)
    tiles = est.tiles
    cols = config.cols
    lanes = config.load_lanes
    fetch = fe.fetch + -(-COMMAND_BYTES // config.axi_bytes)
    geo = Geometry(config)
    lane_items = {(Target.ACT, geo.act_item_bits), (Target.WGT, geo.wgt_item_bits)}
    col_end = [None] * cols
    fin = []                # per tile: last busy cycle of any column
    intervals = []
    t = fe.start
    accept_prev = None
    stored = 0              # tiles whose write-back has ended
    store_left = None       # bytes of tile ``stored`` not yet stored
    for cmd in compiled.commands:
        t += fetch
        if cmd.op == Op.LOAD:
            first = t + fe.load_latency
            n = len(fin)    # the tile this LOAD fills (its RUN comes next)
            if cmd.target != Target.OUT and n >= 2:
                # Buffer half n % 2 is free once tile n-2 has finished.
                first = max(first, fin[n - 2] + 2)
            # ``load_lanes`` activation/weight words per engine write, other items one each.
            per = cmd.inner
            if lanes > 1 and (cmd.target, 8 << cmd.item_log2) in lane_items:
                per = -(-cmd.inner // lanes)
            t = (first + max(per * cmd.outer, cmd.outer * fe.per_transfer)
                 + cmd.outer * fe.transfer_gap)
        elif cmd.op == Op.RUN:
            n = len(fin)
            accept = t
            if accept_prev is not None:
                accept = max(accept, accept_prev + INTAKE_CYCLES)
            # The engine takes a command for a half once that half's previous tile is done,
            # and a single-buffered tile only when nothing is in flight.
            if n >= 2:
                accept = max(accept, fin[n - 2] + 2)
            if not tiles[n].obuf and n >= 1:
                accept = max(accept, fin[n - 1] + 2)
            last = 0
            for j in range(cols):
                first = accept + CMD_TO_BUSY
                if col_end[j] is not None:
                    first = max(first, col_end[j] + COL_RESTART)
                col_end[j] = first + tiles[n].col_busy[j] - 1
                intervals.append((first, col_end[j]))
                last = max(last, col_end[j])
            fin.append(last)
            accept_prev = accept
            t = accept + 1
        elif cmd.op == Op.STORE:
            # Window check (shift-and-add over outer - 1, then the compare), wait for the
            # tile, one byte per cycle; tiles are stored in order, pixel-split ones by one
            # STORE per column.
            if store_left is None:
                store_left = tiles[stored].reads
            t += (cmd.outer - 1).bit_length() + 2
            t = max(t, fin[stored] + 2) + cmd.inner * cmd.outer
            store_left -= cmd.inner * cmd.outer
            if store_left == 0:
                t += fe.store_latency
                stored += 1
                store_left = None
        elif cmd.op == Op.END:
            t = max(t, fin[-1] + 2 if fin else t) + fe.done
            break
    return E2eEstimate(cycles=t, busy=_union_length(intervals), commands=len(compiled.commands))
