"""Run tiled layers on the engine RTL in the Amaranth simulator.

The testbench is a model of the DMA front end: a loader process writes each tile's buffers,
``load_lanes`` consecutive words per write as the controller does (the next tile's into the
other half while the current tile computes), waits for the write-back of the tile that last
used the same output half (two tiles back) before preloading residuals and issuing the command,
and a reader process collects ``o_done`` and reads the outputs back (while the next tile
computes). With ``gaps`` every stream the engine exposes sees random ``valid``/``ready`` gaps.
"""

import random
from dataclasses import dataclass

from amaranth.sim import Simulator

from .engine import Engine
from .geometry import Geometry

__all__ = ["SimResult", "run_plans"]

COUNTERS = ("cnt_busy", "cnt_wait", "cnt_col_idle", "cnt_macs", "cnt_skipped", "cnt_open")


@dataclass
class SimResult:
    """Outputs and counters of one simulation.

    Members
    -------
    ys : list of ndarray
        One output map per plan.
    errors : list of int
        ``o_done.error`` of every tile, in order.
    counters : dict
        Final counter values (``cnt_*`` without the prefix; ``collide`` as well with an
        ``Engine(config, collision_check=True)``).
    tile_busy : list of int
        ``cnt_busy`` increase between successive ``o_done`` (tiles may overlap with ``obuf``).
    cycles : int
        Simulated cycles in total.
    """

    ys: list
    errors: list
    counters: dict
    tile_busy: list
    cycles: int


async def _put(ctx, port, payload, rng, gaps):
    if gaps and rng.random() < 0.3:
        ctx.set(port.valid, 0)
        await ctx.tick().repeat(rng.randint(1, 3))
    ctx.set(port.payload, payload)
    ctx.set(port.valid, 1)
    await ctx.tick().until(port.ready)
    ctx.set(port.valid, 0)


def _bytes(data, n, width=8):
    """The signed values of an ``o_rd`` payload: ``n`` lanes of ``width`` bits of a row read,
    else the low one."""
    out = []
    for j in range(max(1, n)):
        b = (data >> (width * j)) & ((1 << width) - 1)
        out.append(b - (1 << width) if b >> (width - 1) else b)
    return out


def _read_values(data, req, deal, cols, width=8):
    """The values of one read request ``req = (col, addr, n)`` of
    :meth:`~cgaccel.engine.geometry.Geometry.read_requests`: a dealt row read returns every
    column (column 0's in the low bits) and its ``n`` reads are columns ``col, col + 1, ...``
    (mod ``cols``), the row's rotation."""
    col, _, n = req
    if not (deal and n):
        return _bytes(data, n, width)
    row = _bytes(data, cols, width)
    return [row[(col + i) % cols] for i in range(n)]


def run_plans(config, plans, *, gaps=False, seed=0, engine=None, vcd=None, timeout=None):
    """Simulate the engine on one or more :class:`~cgaccel.engine.tiling.LayerPlan`.

    Parameters
    ----------
    config : AccelConfig
    plans : list of LayerPlan
    gaps : bool
        Random valid/ready gaps on every stream.
    seed : int
        Seed of the gap pattern.
    engine : Engine, optional
        Device under test (a fresh ``Engine(config)`` by default).
    vcd : str, optional
        Write a waveform file.
    timeout : int, optional
        Cycle limit (default generous); exceeding it raises RuntimeError.

    Returns
    -------
    SimResult
    """
    dut = engine if engine is not None else Engine(config)
    geo = Geometry(config)
    tiles = [t for p in plans for t in p.tiles]
    rng_w = random.Random(seed)
    rng_r = random.Random(seed + 1)
    state = {"rb_done": -1, "values": [], "errors": [], "busy": [], "finished": False,
             "cycle": 0}
    if timeout is None:
        work = sum(len(t.writes) + len(t.out_writes) + len(t.reads) for t in tiles)
        macs = sum(int(p.taps.sum()) * p.shape[0] * max(1, sum(p.segments[0]))
                   for p in plans)
        timeout = 10 * work + 4 * macs + 10000

    async def loader(ctx):
        for n, tile in enumerate(tiles):
            for wr in geo.lane_writes(tile.writes):
                await _put(ctx, dut.i_wr, wr, rng_w, gaps)
            # Preloads may only overwrite outputs already read back: with double-buffered
            # outputs this half was last used by tile n-2, otherwise by tile n-1.
            while state["rb_done"] < n - (2 if tile.cmd.get("obuf") else 1):
                await ctx.tick()
            for wr in geo.lane_writes(tile.out_writes):
                await _put(ctx, dut.i_wr, wr, rng_w, gaps)
            await _put(ctx, dut.i_cmd, tile.cmd, rng_w, gaps)

    async def reader(ctx):
        for n, tile in enumerate(tiles):
            busy0 = ctx.get(dut.cnt_busy)
            ctx.set(dut.o_done.ready, 1)
            (payload,) = await ctx.tick().sample(dut.o_done.payload).until(dut.o_done.valid)
            ctx.set(dut.o_done.ready, 0)
            state["errors"].append(int(payload.error))
            state["busy"].append(ctx.get(dut.cnt_busy) - busy0)
            vals = []
            # As the controller reads: a dealt tile's rows of columns in one read each, any
            # other tile's word-aligned runs of a column in one word read each.
            deal = bool(tile.cmd.get("pdeal"))
            reqs = geo.read_requests(tile.reads, deal, word=True)
            qi = ri = 0
            while ri < len(reqs):
                if qi < len(reqs) and not (gaps and rng_r.random() < 0.3):
                    col, addr, nb = reqs[qi]
                    ctx.set(dut.i_rd.payload, {"col": col, "addr": addr,
                                               "row": deal and nb > 0,
                                               "word": not deal and nb > 0})
                    ctx.set(dut.i_rd.valid, 1)
                else:
                    ctx.set(dut.i_rd.valid, 0)
                ctx.set(dut.o_rd.ready, 0 if (gaps and rng_r.random() < 0.3) else 1)
                sent = ctx.get(dut.i_rd.valid) and ctx.get(dut.i_rd.ready)
                got = ctx.get(dut.o_rd.valid) and ctx.get(dut.o_rd.ready)
                data = ctx.get(dut.o_rd.payload)
                await ctx.tick()
                if sent:
                    qi += 1
                if got:
                    vals += _read_values(data, reqs[ri], deal, config.cols, config.act_width)
                    ri += 1
            ctx.set(dut.i_rd.valid, 0)
            ctx.set(dut.o_rd.ready, 0)
            state["values"].append(vals)
            state["rb_done"] = n
        state["counters"] = {name[4:]: ctx.get(getattr(dut, name)) for name in COUNTERS}
        if "cnt_collide" in dut.signature.members:
            state["counters"]["collide"] = ctx.get(dut.cnt_collide)
        state["finished"] = True

    async def watchdog(ctx):
        while not state["finished"]:
            await ctx.tick()
            state["cycle"] += 1
            if state["cycle"] > timeout:
                raise RuntimeError(f"engine simulation must finish within {timeout} cycles, "
                                   f"not hang (tile {state['rb_done'] + 1} of {len(tiles)})")

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(loader)
    sim.add_testbench(reader)
    sim.add_testbench(watchdog, background=True)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    if not state["finished"]:
        raise RuntimeError("engine simulation ended before every tile was read back")
    ys = []
    pos = 0
    for p in plans:
        ys.append(p.assemble(state["values"][pos:pos + len(p.tiles)]))
        pos += len(p.tiles)
    return SimResult(ys=ys, errors=state["errors"], counters=state["counters"],
                     tile_busy=state["busy"], cycles=state["cycle"])
