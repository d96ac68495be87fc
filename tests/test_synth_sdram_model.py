"""The SDRAM chip model, driven by a hand-written controller: every rule can fail and can pass."""

from collections import Counter
from types import SimpleNamespace

import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from cgaccel.synth.sdram_model import (
    SdramMode,
    SdramModel,
    SdramProtocolError,
    join_address,
    split_address,
)

# Small but distinct timings, so that each rule is the one that binds in its test:
# t_rc > t_ras + t_rp, so tRC and tRP can fail separately.
TIMING = dict(t_rcd=2, t_rp=2, t_ras=4, t_rc=7, t_wr=2, t_rfc=5, t_mrd=2, t_rrd=2,
              refresh_cycles=400, init_cycles=8)
CMDS = {"NOP": 0b111, "ACTIVE": 0b011, "READ": 0b101, "WRITE": 0b100, "BURST TERMINATE": 0b110,
        "PRECHARGE": 0b010, "AUTO REFRESH": 0b001, "LOAD MODE REGISTER": 0b000}
OUTPUTS = ("cke", "cs_n", "ras_n", "cas_n", "we_n", "ba", "a", "dqm", "dq_o", "dq_oe")
A10 = 1 << 10


def make_pins(row_bits=13, bank_bits=2):
    return SimpleNamespace(
        cke=Signal(init=1), cs_n=Signal(init=1), ras_n=Signal(init=1), cas_n=Signal(init=1),
        we_n=Signal(init=1), ba=Signal(bank_bits), a=Signal(row_bits), dqm=Signal(2),
        dq_o=Signal(16), dq_oe=Signal(), dq_i=Signal(16))


class Bench:
    """A minimal controller: registered pins, one command per cycle, a register sampling dq_i.

    ``cmd`` sets the pins' next values and waits for the edge, so a command returned as cycle k
    is the one the model sees in cycle k. ``dq[k]`` is ``dq_i`` during cycle k, as held by the
    input register in cycle k + 1.
    """

    def __init__(self, *, row_bits=13, col_bits=9, bank_bits=2, seed=0, **timing):
        self.t = dict(TIMING, **timing)
        self.pins = make_pins(row_bits, bank_bits)
        self._next = make_pins(row_bits, bank_bits)
        self._cap = Signal(16)
        self.model = SdramModel(self.pins, row_bits=row_bits, col_bits=col_bits,
                                bank_bits=bank_bits, seed=seed, **self.t)
        self.cycle = 0
        self.dq = {}
        self.counts = Counter()
        self.last = None  # cycle of the last command other than NOP

    def run(self, script):
        m = Module()
        m.d.sync += [getattr(self.pins, n).eq(getattr(self._next, n)) for n in OUTPUTS]
        m.d.sync += self._cap.eq(self.pins.dq_i)

        async def testbench(ctx):
            self._ctx = ctx
            await script(self)

        sim = Simulator(m)
        sim.add_clock(1e-8)
        sim.add_testbench(self.model.run, background=True)
        sim.add_testbench(testbench)
        sim.run()
        return self.model

    async def cmd(self, name="NOP", *, ba=0, a=0, dqm=0, dq=None, cke=1):
        ctx, nxt = self._ctx, self._next
        ras, cas, we = (CMDS[name] >> 2) & 1, (CMDS[name] >> 1) & 1, CMDS[name] & 1
        for sig, value in ((nxt.cke, cke), (nxt.cs_n, 0), (nxt.ras_n, ras), (nxt.cas_n, cas),
                           (nxt.we_n, we), (nxt.ba, ba), (nxt.a, a), (nxt.dqm, dqm),
                           (nxt.dq_o, dq or 0), (nxt.dq_oe, dq is not None)):
            ctx.set(sig, value)
        if name != "NOP":
            self.last = self.cycle + 1
        self.counts[name] += 1
        await ctx.tick()
        self.cycle += 1
        self.dq[self.cycle - 1] = ctx.get(self._cap)
        return self.cycle

    async def nop(self, n=1, **kw):
        for _ in range(n):
            await self.cmd("NOP", **kw)

    async def at(self, cycle, name, **kw):
        """Issue ``name`` in cycle ``cycle``, with NOPs up to it."""
        assert cycle > self.cycle, (cycle, self.cycle)
        await self.nop(cycle - self.cycle - 1)
        return await self.cmd(name, **kw)

    async def init(self, mode=None, *, lmr_first=False):
        """The init sequence at minimum spacing (default mode: CAS latency 2, BL 1)."""
        t, mode = self.t, mode or SdramMode(cas_latency=2)
        await self.nop(t["init_cycles"])
        await self.cmd("PRECHARGE", a=A10)
        await self.nop(t["t_rp"] - 1)
        if lmr_first:
            await self.cmd("LOAD MODE REGISTER", a=mode.encode())
            await self.nop(t["t_mrd"] - 1)
        for _ in range(2):
            await self.cmd("AUTO REFRESH")
            await self.nop(t["t_rfc"] - 1)
        if not lmr_first:
            await self.cmd("LOAD MODE REGISTER", a=mode.encode())
            await self.nop(t["t_mrd"] - 1)


def run(script, **kw):
    bench = Bench(**kw)
    bench.run(script)
    return bench


def fails(script, match, **kw):
    """Run ``script``, expect the model to raise ``match``; return the bench and message."""
    bench = Bench(**kw)
    with pytest.raises(SdramProtocolError, match=match) as info:
        bench.run(script)
    return bench, str(info.value)


# -- address map ---------------------------------------------------------------------------------

def test_split_address_is_row_bank_column():
    assert split_address(0) == (0, 0, 0)
    assert split_address(2) == (0, 0, 1)
    assert split_address(1022) == (0, 0, 511)
    assert split_address(1024) == (1, 0, 0)        # the next 512 words: next bank, same row
    assert split_address(4096) == (0, 1, 0)        # after 4 banks: next row
    assert split_address((32 << 20) - 2) == (3, 8191, 511)
    assert split_address(0x1402, row_bits=11, col_bits=8, bank_bits=1) == (0, 5, 1)
    for addr in (0, 2, 1024, 0x123456, (32 << 20) - 2):
        assert join_address(*split_address(addr)) == addr
    assert SdramModel(make_pins(), **TIMING).split_address(4098) == (0, 1, 1)


@pytest.mark.parametrize("addr, exc, match", [
    (3, ValueError, "must be even"),
    (32 << 20, ValueError, "at most"),
    (-2, ValueError, "at least 0"),
    ("0", TypeError, "must be an integer"),
])
def test_split_address_refuses(addr, exc, match):
    with pytest.raises(exc, match=match):
        split_address(addr)


@pytest.mark.parametrize("kw, exc, match", [
    (dict(t_rcd=0), ValueError, "t_rcd must be at least 1, not 0"),
    (dict(t_wr=2.0), TypeError, "t_wr must be an integer, not 2.0"),
    (dict(refresh_cycles=True), TypeError, "refresh_cycles must be an integer"),
    (dict(init_cycles=-1), ValueError, "init_cycles must be at least 0"),
    (dict(row_bits=10), ValueError, "row_bits must be at least 11"),
    (dict(col_bits=11), ValueError, "col_bits must be at most 10"),
    (dict(bank_bits=3), ValueError, "bank_bits must be at most 2"),
    (dict(row_bits=12), ValueError, r"pins.a must be 12 bit\(s\) wide, not 13"),
])
def test_constructor_validates(kw, exc, match):
    with pytest.raises(exc, match=match):
        SdramModel(make_pins(), **dict(TIMING, **kw))


def test_constructor_needs_every_pin():
    pins = make_pins()
    del pins.dq_i
    with pytest.raises(TypeError, match="'dq_i'"):
        SdramModel(pins, **TIMING)


# -- data ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("cl", [2, 3])
def test_write_then_read_returns_data_exactly_cl_cycles_later(cl):
    out = {}

    async def script(b):
        await b.init(SdramMode(cas_latency=cl))
        assert b.model.initialised and b.model.mode == SdramMode(cas_latency=cl)
        k = await b.cmd("ACTIVE", ba=1, a=5)
        await b.at(k + 2, "WRITE", ba=1, a=7, dq=0xBEEF)
        out["r"] = await b.cmd("READ", ba=1, a=7)     # write-to-read needs no gap
        await b.nop(cl + 3)

    b = run(script)
    r = out["r"]
    assert b.dq[r + cl] == 0xBEEF
    # Sampling a cycle early or late gets garbage, not a stale copy of the word.
    assert b.dq[r + cl - 1] != 0xBEEF and b.dq[r + cl + 1] != 0xBEEF
    assert b.model.read_word(join_address(1, 5, 7)) == 0xBEEF
    assert b.model.memory == {(1, 5, 7): 0xBEEF}
    assert b.model.words_read == 1 and b.model.words_written == 1
    assert b.model.counts == b.counts and b.model.cycle == b.cycle
    # Idle cycles carry changing garbage.
    assert len({b.dq[c] for c in range(1, r)}) > r // 2


@pytest.mark.parametrize("dqm, expected", [(0b00, 0xAABB), (0b01, 0xAA22), (0b10, 0x11BB),
                                           (0b11, 0x1122)])
def test_write_dqm_masks_bytes(dqm, expected):
    out = {}

    async def script(b):
        b.model.write_word(join_address(0, 9, 3), 0x1122)
        await b.init()
        k = await b.cmd("ACTIVE", ba=0, a=9)
        await b.at(k + 2, "WRITE", a=3, dq=0xAABB, dqm=dqm)
        out["r"] = await b.cmd("READ", a=3)
        await b.nop(4)

    b = run(script)
    assert b.model.read_word(join_address(0, 9, 3)) == expected
    assert b.dq[out["r"] + 2] == expected


@pytest.mark.parametrize("dqm", [0b01, 0b10, 0b11])
def test_read_dqm_two_cycles_ahead_hides_bytes(dqm):
    out = {}

    async def script(b):
        b.model.write_word(join_address(2, 1, 0), 0x5A5A)
        await b.init()
        k = await b.cmd("ACTIVE", ba=2, a=1)
        out["r"] = await b.at(k + 2, "READ", ba=2, dqm=dqm)   # DQM in cycle r: data in r + 2
        await b.nop(5)

    b = run(script)
    assert b.model.words_read == (0 if dqm == 0b11 else 1)
    got = b.dq[out["r"] + 2]
    for byte in range(2):
        same = (got >> 8 * byte) & 0xFF == 0x5A
        assert same != bool(dqm >> byte & 1)


def _burst_script(mode, col, words, out):
    async def script(b):
        await b.init(mode)
        k = await b.cmd("ACTIVE", ba=3, a=100)
        await b.at(k + 2, "WRITE", ba=3, a=col, dq=words[0])
        for w in words[1:mode.write_burst_length]:
            await b.cmd("NOP", dq=w)
        out["r"] = await b.cmd("READ", ba=3, a=col)
        await b.nop(mode.cas_latency + mode.burst_length + 2)
    return script


@pytest.mark.parametrize("bl, interleaved, col, order", [
    (2, False, 5, [5, 4]),
    (4, False, 6, [6, 7, 4, 5]),
    (4, True, 5, [5, 4, 7, 6]),
    (8, False, 13, [13, 14, 15, 8, 9, 10, 11, 12]),
    (8, True, 13, [13, 12, 15, 14, 9, 8, 11, 10]),
])
def test_bursts_follow_the_burst_order(bl, interleaved, col, order):
    words = [0x1000 + 17 * i for i in range(bl)]
    mode = SdramMode(cas_latency=3, burst_length=bl, interleaved=interleaved)
    out = {}
    b = run(_burst_script(mode, col, words, out))
    assert [b.model.memory[(3, 100, c)] for c in order] == words
    r = out["r"]
    assert [b.dq[r + 3 + j] for j in range(bl)] == words
    assert b.dq[r + 3 + bl] not in words


def test_single_write_mode_writes_one_word_and_reads_a_burst():
    mode = SdramMode(cas_latency=2, burst_length=4, single_write=True)
    out = {}

    async def script(b):
        for c in range(4):
            b.model.write_word(join_address(3, 100, c), 0x100 + c)
        await _burst_script(mode, 2, [0xCAFE], out)(b)

    b = run(script)
    assert b.model.words_written == 1
    r = out["r"]
    assert [b.dq[r + 2 + j] for j in range(4)] == [0xCAFE, 0x103, 0x100, 0x101]
    assert b.model.read_word(join_address(3, 100, 2)) == 0xCAFE


def test_read_burst_interrupted_by_read_and_by_precharge():
    out = {}

    async def script(b):
        for c in range(8):
            b.model.write_word(join_address(0, 4, c), 0x40 + c)
        await b.init(SdramMode(cas_latency=2, burst_length=4))
        k = await b.cmd("ACTIVE", a=4)
        r1 = out["r1"] = await b.at(k + 4, "READ", a=0)
        out["r2"] = await b.at(r1 + 2, "READ", a=4)      # cuts the first burst after 2 words
        out["p"] = await b.at(r1 + 3, "PRECHARGE")        # cuts the second after 1 word
        await b.nop(8)

    b = run(script)
    r1 = out["r1"]
    got = [b.dq[r1 + 2 + j] for j in range(5)]
    assert got[:3] == [0x40, 0x41, 0x44]
    assert got[3] not in range(0x40, 0x48) and got[4] not in range(0x40, 0x48)
    assert b.model.words_read == 3


def test_write_burst_interrupted_by_read_keeps_the_earlier_words():
    async def script(b):
        await b.init(SdramMode(cas_latency=2, burst_length=4))
        k = await b.cmd("ACTIVE", a=4)
        w = await b.at(k + 2, "WRITE", a=0, dq=0xA0)
        await b.cmd("NOP", dq=0xA1)
        await b.at(w + 2, "READ", a=0)        # the words of cycles w + 2, w + 3 are not written
        await b.nop(6)

    b = run(script)
    assert b.model.memory == {(0, 4, 0): 0xA0, (0, 4, 1): 0xA1}


def test_burst_terminate_stops_a_read_burst():
    out = {}

    async def script(b):
        await b.init(SdramMode(cas_latency=3, burst_length=8))
        k = await b.cmd("ACTIVE", ba=1, a=2)
        r = out["r"] = await b.at(k + 2, "READ", ba=1, a=0)
        await b.at(r + 2, "BURST TERMINATE")
        await b.nop(10)

    b = run(script)
    assert b.model.words_read == 2 and b.model.counts["BURST TERMINATE"] == 1


def test_precharge_right_after_a_one_word_read_keeps_its_data():
    out = {}

    async def script(b):
        b.model.write_word(join_address(1, 2, 3), 0x7777)
        await b.init(SdramMode(cas_latency=3))
        k = await b.cmd("ACTIVE", ba=1, a=2)
        r = out["r"] = await b.at(k + 3, "READ", ba=1, a=3)
        await b.at(r + 1, "PRECHARGE", ba=1)       # tRAS = 4 met
        await b.nop(5)

    b = run(script)
    assert b.dq[out["r"] + 3] == 0x7777


def test_unwritten_words_are_seeded_garbage():
    out = {}

    async def script(b):
        await b.init()
        k = await b.cmd("ACTIVE", ba=2, a=77)
        out["r"] = await b.at(k + 2, "READ", ba=2, a=12)
        await b.nop(4)

    seen = {}
    for seed in (0, 1):
        b = run(script, seed=seed)
        seen[seed] = b.dq[out["r"] + 2]
        assert seen[seed] == b.model.read_word(join_address(2, 77, 12))
        assert b.model.memory == {}
    assert seen[0] != seen[1]
    assert run(script, seed=1).dq == b.dq            # the seed fixes all garbage
    assert len({b.model.read_word(2 * i) for i in range(64)}) > 50


def test_load_and_dump_use_the_address_map():
    model = SdramModel(make_pins(), **TIMING)
    model.load(1023, b"\x01\x02\x03")              # odd start: high byte of col 511 of bank 0
    assert model.read_word(1022) >> 8 == 0x01
    assert model.read_word(1024) == 0x0302 and model.memory[(1, 0, 0)] == 0x0302
    assert model.dump(1023, 3) == b"\x01\x02\x03"
    model.write_word(4096, 0xA55A)
    assert model.dump(4096, 2) == b"\x5a\xa5"
    with pytest.raises(ValueError, match="within"):
        model.dump(model.size_bytes - 1, 2)


# -- timing rules: each one short by a cycle fails, at its minimum passes -----------------------

async def _trcd(b, gap):
    k = await b.cmd("ACTIVE", ba=1, a=3)
    await b.at(k + gap, "READ", ba=1)


async def _tras(b, gap):
    k = await b.cmd("ACTIVE", ba=1, a=3)
    await b.at(k + gap, "PRECHARGE", ba=1)


async def _trp(b, gap):
    k = await b.cmd("ACTIVE", ba=1, a=3)
    p = await b.at(k + 5, "PRECHARGE", ba=1)
    await b.at(p + gap, "ACTIVE", ba=1, a=4)


async def _trc(b, gap):
    k = await b.cmd("ACTIVE", ba=1, a=3)
    await b.at(k + 4, "PRECHARGE", ba=1)
    await b.at(k + gap, "ACTIVE", ba=1, a=4)


async def _trrd(b, gap):
    k = await b.cmd("ACTIVE", ba=1, a=3)
    await b.at(k + gap, "ACTIVE", ba=2, a=3)


async def _twr(b, gap):
    k = await b.cmd("ACTIVE", ba=0, a=3)
    w = await b.at(k + 4, "WRITE", dq=1)
    await b.at(w + gap, "PRECHARGE")


async def _twr_all(b, gap):
    k = await b.cmd("ACTIVE", ba=0, a=3)
    w = await b.at(k + 4, "WRITE", dq=1)
    await b.at(w + gap, "PRECHARGE", a=A10)


async def _trfc(b, gap):
    k = await b.cmd("AUTO REFRESH")
    await b.at(k + gap, "ACTIVE")


async def _trfc_refresh(b, gap):
    k = await b.cmd("AUTO REFRESH")
    await b.at(k + gap, "AUTO REFRESH")


async def _tmrd(b, gap):
    k = await b.cmd("LOAD MODE REGISTER", a=SdramMode(cas_latency=3).encode())
    await b.at(k + gap, "ACTIVE")


async def _trp_refresh(b, gap):
    k = await b.cmd("ACTIVE", ba=3, a=3)
    p = await b.at(k + 4, "PRECHARGE", a=A10)
    await b.at(p + gap, "AUTO REFRESH")


async def _trp_lmr(b, gap):
    k = await b.cmd("ACTIVE", ba=3, a=3)
    p = await b.at(k + 4, "PRECHARGE", a=A10)
    await b.at(p + gap, "LOAD MODE REGISTER", a=SdramMode(cas_latency=2).encode())


async def _trp_read_ap(b, gap):
    # READ with auto precharge (BL 1) in cycle r: the bank precharges from r + 1.
    k = await b.cmd("ACTIVE", ba=1, a=3)
    r = await b.at(k + 5, "READ", ba=1, a=A10)
    await b.at(r + 1 + gap, "ACTIVE", ba=1, a=4)


async def _trp_write_ap(b, gap):
    # WRITE with auto precharge (BL 1) in cycle w: the bank precharges from w + tWR.
    k = await b.cmd("ACTIVE", ba=1, a=3)
    w = await b.at(k + 5, "WRITE", ba=1, a=A10, dq=5)
    await b.at(w + 2 + gap, "ACTIVE", ba=1, a=4)


async def _trp_ap_tras(b, gap):
    # An auto precharge asked for before tRAS waits for it: the bank precharges from k + tRAS.
    k = await b.cmd("ACTIVE", ba=1, a=3)
    await b.at(k + 2, "READ", ba=1, a=A10)
    await b.at(k + 4 + gap, "ACTIVE", ba=1, a=4)


# (rule, minimum spacing, scenario, timing overrides)
RULES = [
    ("tRCD", 2, _trcd, {}), ("tRAS", 4, _tras, {}), ("tRP", 2, _trp, {}), ("tRC", 7, _trc, {}),
    ("tRRD", 2, _trrd, {}), ("tWR", 2, _twr, {}), ("tWR", 2, _twr_all, {}),
    ("tRFC", 5, _trfc, {}), ("tRFC", 5, _trfc_refresh, {}), ("tMRD", 2, _tmrd, {}),
    ("tRP", 2, _trp_refresh, {}), ("tRP", 2, _trp_lmr, {}), ("tRP", 2, _trp_read_ap, {}),
    ("tRP", 2, _trp_write_ap, {}),
    # t_rc = t_ras + t_rp, so that tRC does not bind before the delayed auto precharge.
    ("tRP", 2, _trp_ap_tras, dict(t_rc=6)),
]


@pytest.mark.parametrize("rule, need, scenario, timing", RULES,
                         ids=[r[2].__name__.strip("_") for r in RULES])
@pytest.mark.parametrize("short", [1, 0], ids=["short", "minimum"])
def test_timing_rule(rule, need, scenario, timing, short):
    async def script(b):
        await b.init()
        await b.nop(4)
        await scenario(b, need - short)
        await b.nop(4)

    if short:
        b, msg = fails(script, f"^{rule} violated: ", **timing)
        assert f" at cycle {b.last}, {need - 1} cycle(s) after " in msg
        assert msg.endswith(f"needs {need}")
    else:
        b = run(script, **timing)
        assert b.model.counts == b.counts and b.model.cycle == b.cycle


def test_trcd_message_names_cycles_and_values():
    async def script(b):
        await b.init()
        k = await b.cmd("ACTIVE", ba=1, a=3)
        await b.at(k + 1, "WRITE", ba=1, dq=0)

    b, msg = fails(script, "tRCD")
    assert msg == (f"tRCD violated: WRITE to bank 1 at cycle {b.last}, 1 cycle(s) after its "
                   f"ACTIVE at {b.last - 1}, needs 2")


def test_auto_precharge_closes_the_row():
    async def script(b):
        await b.init()
        k = await b.cmd("ACTIVE", ba=1, a=3)
        r = await b.at(k + 5, "READ", ba=1, a=A10)
        await b.at(r + 3, "READ", ba=1)

    fails(script, "^READ to bank 1 at cycle .* with no open row .*auto precharge")


def test_command_to_a_bank_with_a_pending_auto_precharge():
    async def script(b):
        await b.init(SdramMode(cas_latency=2, burst_length=4))
        k = await b.cmd("ACTIVE", ba=1, a=3)
        r = await b.at(k + 5, "READ", ba=1, a=A10)
        await b.at(r + 1, "PRECHARGE", ba=1)

    fails(script, r"^PRECHARGE at cycle \d+ to bank 1 before the auto precharge of its READ")


@pytest.mark.parametrize("gap", [1, 2])
def test_auto_precharge_burst_interrupted_by_another_bank_precharges_at_once(gap):
    async def script(b):
        await b.init(SdramMode(cas_latency=2, burst_length=8))
        k = await b.cmd("ACTIVE", ba=1, a=3)
        await b.at(k + 2, "ACTIVE", ba=2, a=1)
        r = await b.at(k + 5, "READ", ba=1, a=A10)    # would precharge from r + 8 ...
        i = await b.at(r + 2, "READ", ba=2)           # ... but precharges from here
        await b.at(i + gap, "ACTIVE", ba=1, a=9)
        await b.nop(12)

    if gap < TIMING["t_rp"]:
        fails(script, "^tRP violated: ACTIVE to bank 1 .* after its auto precharge")
    else:
        b = run(script)
        assert b.model.words_read == 2 + 8 and b.model.counts["ACTIVE"] == 3


def test_burst_terminate_of_an_auto_precharge_burst():
    async def script(b):
        await b.init(SdramMode(cas_latency=2, burst_length=4))
        k = await b.cmd("ACTIVE", ba=1, a=3)
        r = await b.at(k + 5, "READ", ba=1, a=A10)
        await b.at(r + 1, "BURST TERMINATE")

    fails(script, "^BURST TERMINATE at cycle .* interrupts the READ with auto precharge")


# -- bank state ----------------------------------------------------------------------------------

def test_active_to_an_open_bank():
    async def script(b):
        await b.init()
        k = await b.cmd("ACTIVE", ba=2, a=3)
        await b.at(k + 8, "ACTIVE", ba=2, a=4)

    fails(script, r"^ACTIVE to bank 2 at cycle \d+ while row 3 is open")


@pytest.mark.parametrize("name", ["READ", "WRITE"])
def test_column_command_to_a_closed_bank(name):
    async def script(b):
        await b.init()
        await b.cmd("ACTIVE", ba=0, a=3)
        await b.nop(3)
        await b.cmd(name, ba=1, dq=0)

    fails(script, f"^{name} to bank 1 at cycle \\d+ with no open row")


@pytest.mark.parametrize("name", ["AUTO REFRESH", "LOAD MODE REGISTER"])
def test_refresh_and_mode_need_idle_banks(name):
    async def script(b):
        await b.init()
        await b.cmd("ACTIVE", ba=3, a=3)
        await b.nop(8)
        await b.cmd(name, a=SdramMode(cas_latency=2).encode())

    fails(script, f"^{name} at cycle \\d+ with bank 3 not idle: row 3 open")


# -- initialisation and refresh ------------------------------------------------------------------

@pytest.mark.parametrize("lmr_first", [False, True])
def test_init_sequence_in_either_order(lmr_first):
    async def script(b):
        await b.init(SdramMode(cas_latency=3), lmr_first=lmr_first)
        assert b.model.initialised
        await b.cmd("ACTIVE")
        await b.nop(2)

    b = run(script)
    assert b.model.mode.cas_latency == 3 and b.model.mode.burst_length == 1
    assert b.model.counts["AUTO REFRESH"] == 2 and b.model.counts["ACTIVE"] == 1


def test_power_up_wait():
    async def early(b):
        await b.nop(7)
        await b.cmd("PRECHARGE", a=A10)

    _, msg = fails(early, "^initialisation: PRECHARGE at cycle 8 during the power-up wait")
    assert "until cycle 8" in msg

    async def on_time(b):
        await b.nop(8)
        await b.cmd("PRECHARGE", a=A10)
        await b.nop(1)
        assert not b.model.initialised

    assert run(on_time).model.counts["PRECHARGE"] == 1


@pytest.mark.parametrize("steps, match", [
    (["AUTO REFRESH"], "before the PRECHARGE ALL"),
    (["PRECHARGE", "AUTO REFRESH", "AUTO REFRESH", "ACTIVE"], "mode register not loaded"),
    (["PRECHARGE", "AUTO REFRESH", "LOAD MODE REGISTER", "ACTIVE"], "has 1 AUTO REFRESH"),
    (["PRECHARGE", "AUTO REFRESH", "LOAD MODE REGISTER", "READ"], "READ at cycle .* before the"),
])
def test_init_sequence_incomplete(steps, match):
    async def script(b):
        await b.nop(8)
        for step in steps:
            assert not b.model.initialised
            await b.cmd(step, a=A10 if step == "PRECHARGE" else SdramMode(2).encode())
            await b.nop(6)

    fails(script, "^initialisation: .*" + match)


def test_cke_must_stay_high():
    async def script(b):
        await b.init()
        await b.nop(3)
        await b.cmd("NOP", cke=0)

    fails(script, "^CKE low at cycle 26")    # init ends in cycle 22
    b = run(lambda b: b.nop(7, cke=0))              # low during the wait is fine
    assert b.model.counts["NOP"] == 7


@pytest.mark.parametrize("gap, ok", [(40, True), (41, False)])
def test_refresh_interval(gap, ok):
    async def script(b):
        await b.init()
        k = await b.cmd("AUTO REFRESH")
        await b.at(k + gap, "AUTO REFRESH")
        await b.nop(3)

    if ok:
        b = run(script, refresh_cycles=40)
        assert b.model.last_refresh_gap_max == 40
    else:
        _, msg = fails(script, "^refresh interval exceeded at cycle", refresh_cycles=40)
        assert "41 cycle(s) since the last AUTO REFRESH" in msg and "at most 40" in msg


def test_refresh_that_stops_is_caught_during_and_after_the_run():
    async def script(b):
        await b.init()
        await b.nop(100)

    # Init's second AUTO REFRESH is in cycle 8 + 1 + tRP + tRFC = 16.
    fails(script, "^refresh interval exceeded at cycle 67: 51 cycle", refresh_cycles=50)
    b = run(script, refresh_cycles=200)
    b.model.finish()
    b.model.check_refresh(16 + 200)
    with pytest.raises(SdramProtocolError, match="refresh interval exceeded at cycle 217"):
        b.model.check_refresh(16 + 201)


def test_first_refresh_is_due_after_the_power_up_wait():
    async def script(b):
        await b.nop(8 + 30)

    fails(script, "since the end of the power-up wait at 8", refresh_cycles=29)
    assert run(script, refresh_cycles=30).model.last_refresh_gap_max is None


# -- mode register -------------------------------------------------------------------------------

@pytest.mark.parametrize("word, ba, match", [
    (0x27, 0, "full-page"),
    (0x24, 0, "burst length code 4 is reserved"),
    (0x10, 0, "CAS latency must be 2 or 3, not 1"),
    (0x40, 0, "CAS latency must be 2 or 3, not 4"),
    (0x20 | 1 << 7, 0, r"operating mode \(A8:A7\)"),
    (0x20 | A10, 0, "reserved bits"),
    (0x20, 1, "BA must be 0"),
])
def test_unsupported_mode_register(word, ba, match):
    async def script(b):
        await b.nop(8)
        await b.cmd("PRECHARGE", a=A10)
        await b.nop(2)
        await b.cmd("LOAD MODE REGISTER", a=word, ba=ba)

    fails(script, "^mode register: LOAD MODE REGISTER at cycle 12 .*" + match)


def test_mode_encoding_round_trips():
    for mode in (SdramMode(2), SdramMode(3, 8, interleaved=True), SdramMode(2, 4, False, True)):
        assert SdramMode.decode(mode.encode()) == mode
    assert SdramMode(cas_latency=3, burst_length=1).encode() == 0x30


# -- data bus ------------------------------------------------------------------------------------

@pytest.mark.parametrize("drive_at, dqm_at, ok", [
    (2, None, False),   # dq_oe in the data cycle
    (2, 0, True),       # ... with DQM two cycles ahead, the chip does not drive
    (3, None, True),    # the cycle after the data
    (1, None, True),    # the cycle before
])
def test_bus_contention(drive_at, dqm_at, ok):
    async def script(b):
        await b.init()
        k = await b.cmd("ACTIVE", ba=1, a=3)
        r = await b.at(k + 2, "READ", ba=1, dqm=0b11 if dqm_at == 0 else 0)
        for c in range(r + 1, r + 5):     # data in cycle r + 2
            await b.cmd("NOP", dq=0x1234 if c == r + drive_at else None)

    if ok:
        assert run(script).model.counts["READ"] == 1
    else:
        fails(script, r"^bus contention at cycle \d+: dq_oe is 1 while the chip drives data of "
                      r"the READ at cycle \d+ \(bank 1, column 0; DQM 0b00")


@pytest.mark.parametrize("dqm_cycles, match", [
    ((0, 1), None),                         # the data sheet's READ-to-WRITE: legal
    ((0,), "^read-to-write: WRITE at cycle"),  # DQM missing the cycle before the WRITE
    ((1,), "^bus contention"),              # the word due with the WRITE is driven
])
def test_read_to_write_needs_dqm(dqm_cycles, match):
    async def script(b):
        await b.init(SdramMode(cas_latency=2, burst_length=4))
        k = await b.cmd("ACTIVE", ba=1, a=3)
        r = await b.at(k + 2, "READ", ba=1, dqm=0b11 if 0 in dqm_cycles else 0)
        await b.cmd("NOP", dqm=0b11 if 1 in dqm_cycles else 0)
        await b.cmd("WRITE", ba=1, a=8, dq=0x4240)   # cuts the burst at r + 2
        assert b.cycle == r + 2
        for j in range(1, 4):
            await b.cmd("NOP", dq=0x4240 + j)
        await b.nop(4)

    if match is None:
        b = run(script)
        assert b.model.memory == {(1, 3, 8 + j): 0x4240 + j for j in range(4)}
        assert b.model.words_read == 0
    else:
        fails(script, match)


def test_write_data_needs_dq_oe():
    async def script(b):
        await b.init()
        k = await b.cmd("ACTIVE", a=3)
        await b.at(k + 2, "WRITE", a=5)

    fails(script, r"^WRITE data: dq_oe is 0 in cycle \d+, which carries data of the WRITE")

    async def masked(b):
        await b.init()
        k = await b.cmd("ACTIVE", a=3)
        await b.at(k + 2, "WRITE", a=5, dqm=0b11)      # nothing stored: the bus may float
        await b.nop(2)

    assert run(masked).model.words_written == 0
