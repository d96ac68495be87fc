"""cocotb testbench behind :class:`cgaccel.engine.vlsim.VerilatorEngine` (not a pytest module).

Drives inputs on the falling clock edge and samples after ``ReadOnly``, which is portable across
simulators. Reads its work from ``$CGACCEL_ENGINE_WORK/plan.pkl`` and writes ``result.json``.
"""

import json
import os
import pickle
import random
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import Event, FallingEdge, ReadOnly, RisingEdge
from cocotb.utils import get_sim_time

from .geometry import Geometry
from .sim import _read_values


def _packer(layout):
    fields = [(name, f.offset, f.width) for name, f in layout]

    def pack(values):
        out = 0
        for name, off, width in fields:
            out |= (int(values[name]) & ((1 << width) - 1)) << off
        return out
    return pack


@cocotb.test()
async def run_engine(dut):
    work = Path(os.environ["CGACCEL_ENGINE_WORK"])
    spec = pickle.loads((work / "plan.pkl").read_bytes())
    geo = Geometry(spec["config"])
    pack_wr = _packer(geo.write_layout())
    pack_cmd = _packer(geo.tile_layout())
    pack_rd = _packer(geo.read_layout())
    tiles, gaps = spec["tiles"], spec["gaps"]
    rng_w, rng_r = random.Random(spec["seed"]), random.Random(spec["seed"] + 1)
    clk = dut.clk
    cocotb.start_soon(Clock(clk, 10, unit="ns").start())
    for sig in (dut.i_wr__valid, dut.i_cmd__valid, dut.i_rd__valid, dut.o_done__ready,
                dut.o_rd__ready):
        sig.value = 0
    dut.rst.value = 1
    for _ in range(3):
        await FallingEdge(clk)
    dut.rst.value = 0
    t0 = get_sim_time(unit="ns")
    rb_done = [Event() for _ in tiles]
    state = {"values": [], "errors": [], "busy": []}

    async def put(valid, payload, ready, value):
        if gaps and rng_w.random() < 0.3:
            for _ in range(rng_w.randint(1, 3)):
                await FallingEdge(clk)
        payload.value = value
        valid.value = 1
        while True:
            await ReadOnly()
            ok = int(ready.value)
            await FallingEdge(clk)
            if ok:
                break
        valid.value = 0

    async def loader():
        for n, tile in enumerate(tiles):
            for wr in geo.lane_writes(tile["writes"]):
                await put(dut.i_wr__valid, dut.i_wr__payload, dut.i_wr__ready, pack_wr(wr))
            back = 2 if tile["cmd"].get("obuf") else 1  # tile that last used these outputs
            if n >= back:
                await rb_done[n - back].wait()
                await FallingEdge(clk)
            for wr in geo.lane_writes(tile["out_writes"]):
                await put(dut.i_wr__valid, dut.i_wr__payload, dut.i_wr__ready, pack_wr(wr))
            await put(dut.i_cmd__valid, dut.i_cmd__payload, dut.i_cmd__ready,
                      pack_cmd(tile["cmd"]))

    async def reader():
        for n, tile in enumerate(tiles):
            busy0 = int(dut.cnt_busy.value)
            if not int(dut.o_done__valid.value):
                await RisingEdge(dut.o_done__valid)
            await FallingEdge(clk)
            dut.o_done__ready.value = 1
            while True:
                await ReadOnly()
                ok = int(dut.o_done__valid.value)
                err = int(dut.o_done__payload.value) & 1
                await FallingEdge(clk)
                if ok:
                    break
            dut.o_done__ready.value = 0
            state["errors"].append(err)
            state["busy"].append(int(dut.cnt_busy.value) - busy0)
            # As the controller reads: a dealt tile's rows of columns in one read each, any
            # other tile's word-aligned runs of a column in one word read each.
            vals, qi, ri = [], 0, 0
            deal = bool(tile["cmd"].get("pdeal"))
            reqs = geo.read_requests(tile["reads"], deal, word=True)
            while ri < len(reqs):
                if qi < len(reqs) and not (gaps and rng_r.random() < 0.3):
                    col, addr, nb = reqs[qi]
                    dut.i_rd__payload.value = pack_rd(dict(
                        col=col, addr=addr, row=int(deal and nb > 0),
                        word=int(not deal and nb > 0)))
                    dut.i_rd__valid.value = 1
                else:
                    dut.i_rd__valid.value = 0
                dut.o_rd__ready.value = 0 if (gaps and rng_r.random() < 0.3) else 1
                await ReadOnly()
                sent = int(dut.i_rd__valid.value) and int(dut.i_rd__ready.value)
                got = int(dut.o_rd__valid.value) and int(dut.o_rd__ready.value)
                data = int(dut.o_rd__payload.value)
                await FallingEdge(clk)
                qi += bool(sent)
                if got:
                    vals += _read_values(data, reqs[ri], deal, geo.config.cols,
                                         geo.config.act_width)
                    ri += 1
            dut.i_rd__valid.value = 0
            dut.o_rd__ready.value = 0
            state["values"].append(vals)
            rb_done[n].set()

    cocotb.start_soon(loader())
    await reader()
    counters = {name[4:]: int(getattr(dut, name).value) for name in (
        "cnt_busy", "cnt_wait", "cnt_col_idle", "cnt_macs", "cnt_skipped", "cnt_open")}
    (work / "result.json").write_text(json.dumps(dict(
        values=state["values"], errors=state["errors"], busy=state["busy"],
        counters=counters, cycles=int((get_sim_time(unit="ns") - t0) // 10))))
