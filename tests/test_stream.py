# amaranth: UnusedElaboratable=no
"""Unit tests of the stream register slice (:class:`cgaccel.stream.SkidBuffer`, Amaranth sim)."""

import random

import numpy as np
import pytest
from amaranth.hdl import unsigned
from amaranth.lib import data
from amaranth.sim import Simulator

from cgaccel.stream import SkidBuffer

PATTERNS = ["always", "random", "bursty"]
LAYOUT = data.StructLayout({"addr": unsigned(13), "length": unsigned(7)})


def _pattern(kind, rng):
    """Per-cycle "may move" draws: always, random 50%, or bursts of on/off."""
    if kind == "always":
        return lambda: True
    if kind == "random":
        return lambda: rng.random() < 0.5
    state = {"on": True, "left": 0}

    def bursty():
        if state["left"] == 0:
            state["on"] = not state["on"]
            state["left"] = rng.randint(1, 6)
        state["left"] -= 1
        return state["on"]
    return bursty


def run_stream(dut, items, src, dst, seed, max_cycles=20000):
    """Push ``items`` through ``dut`` with producer/consumer patterns ``src``/``dst``; return the
    items received and the cycles taken. Both sides obey the stream rules: the producer holds
    ``valid`` and the payload until the transfer, and neither side waits for the other."""
    rng = random.Random(seed)
    may_send, may_take = _pattern(src, rng), _pattern(dst, rng)
    got = []
    cycles = 0

    async def bench(ctx):
        nonlocal cycles
        sent = 0
        offering = False
        while len(got) < len(items):
            assert cycles < max_cycles, "hang"
            if not offering and sent < len(items) and may_send():
                ctx.set(dut.i.payload, items[sent])
                ctx.set(dut.i.valid, 1)
                offering = True
            ready = may_take()
            ctx.set(dut.o.ready, ready)
            # Registered outputs: ``i.ready`` must not follow ``o.ready`` in the same cycle.
            i_ready = ctx.get(dut.i.ready)
            ctx.set(dut.o.ready, not ready)
            assert ctx.get(dut.i.ready) == i_ready, "i.ready depends on o.ready"
            ctx.set(dut.o.ready, ready)
            if ready and ctx.get(dut.o.valid):
                got.append(ctx.get(dut.o.payload))
            if offering and i_ready:
                sent += 1
                offering = False
            await ctx.tick()
            ctx.set(dut.i.valid, 0 if not offering else 1)
            cycles += 1

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return got, cycles


@pytest.mark.parametrize("src", PATTERNS)
@pytest.mark.parametrize("dst", PATTERNS)
def test_order_no_loss_no_duplicate(src, dst):
    seed = 3 * PATTERNS.index(src) + PATTERNS.index(dst)
    rng = np.random.default_rng(seed)
    items = [int(x) for x in rng.integers(0, 1 << 16, size=400)]
    got, _ = run_stream(SkidBuffer(16), items, src, dst, seed)
    np.testing.assert_array_equal(np.array(got), np.array(items))


def test_struct_payload():
    rng = random.Random(3)
    items = [{"addr": rng.randrange(1 << 13), "length": rng.randrange(1 << 7)}
             for _ in range(200)]
    got, _ = run_stream(SkidBuffer(LAYOUT), items, "random", "bursty", 5)
    assert [{"addr": g.addr, "length": g.length} for g in got] == items


def test_full_throughput():
    """Producer and consumer always willing: one item per cycle, one cycle of latency."""
    items = list(range(300))
    got, cycles = run_stream(SkidBuffer(16), items, "always", "always", 0)
    assert got == items
    assert cycles == len(items) + 1


def test_stall_keeps_one_in_skid():
    """A stalled output takes one more item (the skid register), then refuses."""
    dut = SkidBuffer(8)

    async def bench(ctx):
        ctx.set(dut.o.ready, 0)
        ctx.set(dut.i.valid, 1)
        seen = []
        for value in (11, 22, 33):
            ctx.set(dut.i.payload, value)
            seen.append(ctx.get(dut.i.ready))
            if not seen[-1]:
                break
            await ctx.tick()
        assert seen == [1, 1, 0]
        ctx.set(dut.i.valid, 0)
        ctx.set(dut.o.ready, 1)
        out = []
        for _ in range(3):
            if ctx.get(dut.o.valid):
                out.append(ctx.get(dut.o.payload))
            await ctx.tick()
        assert out == [11, 22]
        assert not ctx.get(dut.o.valid)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("shape", ["8", True, None, 1.5])
def test_bad_shape(shape):
    with pytest.raises(TypeError, match=rf"Skid buffer payload shape must be shape-castable, "
                                        rf"not {repr(shape).replace('.', '[.]')}"):
        SkidBuffer(shape)


@pytest.mark.parametrize("shape,copies,seed", [(LAYOUT, 4, 0), (LAYOUT, 1, 1), (3, 4, 2),
                                               (LAYOUT, 3, 3)])
def test_pair_buffer_matches_skid_buffer_every_cycle(shape, copies, seed):
    """PairBuffer's outputs equal SkidBuffer's at every clock for any input sequence (valid,
    payload and ready drawn at random every cycle, stream rules or not), payload included
    while ``o.valid`` is low."""
    from amaranth.hdl import Module, Shape, Value

    from cgaccel.stream import PairBuffer
    skid, pair = SkidBuffer(shape), PairBuffer(shape, copies=copies)
    top = Module()
    top.submodules.skid = skid
    top.submodules.pair = pair
    width = Shape.cast(shape).width
    rng = random.Random(seed)
    cycles = 4000

    async def bench(ctx):
        for cycle in range(cycles):
            valid, ready = rng.random() < 0.6, rng.random() < 0.5
            payload = rng.getrandbits(width)
            for dut in (skid, pair):
                ctx.set(dut.i.valid, valid)
                ctx.set(Value.cast(dut.i.payload), payload)
                ctx.set(dut.o.ready, ready)
            def outputs(d):
                return (ctx.get(d.i.ready), ctx.get(d.o.valid),
                        ctx.get(Value.cast(d.o.payload)))
            assert outputs(skid) == outputs(pair), f"outputs differ at cycle {cycle}"
            await ctx.tick()

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("copies", [0, -1, True, 1.5])
def test_pair_buffer_bad_copies(copies):
    from cgaccel.stream import PairBuffer
    with pytest.raises(ValueError, match=r"^Pair buffer copies must be a positive int"):
        PairBuffer(8, copies=copies)
