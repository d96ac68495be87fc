"""Command lists from compile_layer, executed by cmdsim, against plan_layer and the golden model."""

import random

import numpy as np
import pytest

from cgaccel.cmdsim import CommandError, Memory, Trace, execute, run_on_engine
from cgaccel.commands import Command, Op, encode
from cgaccel.config import AccelConfig
from cgaccel.driver import compile_layer
from cgaccel.engine.geometry import Target
from cgaccel.engine.tiling import expected_counts
from cgaccel.model.data import make_layer
from cgaccel.model.layer import gated_conv
from cgaccel.model.resnet18 import LayerShape


def small_config(rows=2, cols=2, **kw):
    base = dict(rows=rows, cols=cols, max_channels=64, max_dim=32, max_kernel=3,
                act_depth=256, weight_depth=256, out_depth=256, psum_slots=8, max_groups=8)
    base.update(kw)
    return AccelConfig(**base)


def shape(C, H, W, K, R, stride=1, pad=None):
    return LayerShape("t", C, H, W, K, R, R, stride, R // 2 if pad is None else pad)


def run_list(cfg, compiled):
    mem = Memory(compiled.image())
    mem.add(compiled.y_addr, compiled.y_len)
    return mem, execute(cfg, mem, compiled.cmd_addr, compiled.cmd_len, compiled.y_addr,
                        compiled.y_len)


def check_against_plan(cfg, args, **tiling):
    """compile_layer + cmdsim must give exactly plan_layer's transactions, tile by tile."""
    c = compile_layer(cfg, args, **tiling)
    mem, trace = run_list(cfg, c)
    tiles = trace.tiles()
    plan = c.plan
    assert len(tiles) == len(plan.tiles)
    K, Ho, Wo = plan.shape
    stored = []
    for tp, tt in zip(plan.tiles, tiles, strict=True):
        assert sorted(tt.writes) == sorted(tp.writes)
        assert sorted(tt.out_writes) == sorted(tp.out_writes)
        assert tt.cmd == tp.cmd
        assert sorted(tt.reads) == sorted(tp.reads)
        dest = {rd: tuple(d) for rd, d in zip(tp.reads, tp.dest.tolist(), strict=True)}
        for rd, addr in zip(tt.reads, tt.dram, strict=True):
            k, oy, ox = dest[rd]
            assert addr == c.y_addr + (k * Ho + oy) * Wo + ox
        stored += tt.dram
    # Every output byte is stored exactly once, and only inside the window.
    assert sorted(stored) == list(range(c.y_addr, c.y_addr + c.y_len))
    assert trace.write_bytes == c.store_bytes == K * Ho * Wo
    assert trace.read_bytes == c.load_bytes + c.cmd_len
    assert trace.events[-1] == ("end",)
    return c, mem, trace


CASES = [
    # id, config kwargs, shape, groups, density, make_layer kwargs, tiling
    ("dense3x3_oddCK", {}, shape(5, 6, 6, 3, 3), 1, 0.0, {}, {}),
    ("g2_res_relu_multitile", {}, shape(4, 7, 6, 6, 3), 2, 0.5,
     dict(residual=True, relu=True), dict(k_tile=4, band_rows=2)),
    ("g4_1x1", dict(rows=4, cols=3), shape(8, 5, 5, 8, 1), 4, 0.4, {}, {}),
    ("g8_stride2_rows3", dict(rows=3, cols=2), shape(8, 7, 7, 8, 3, 2), 8, 0.5, {}, {}),
    ("g2_fbs", dict(rows=2, cols=3), shape(6, 5, 5, 6, 3), 2, 0.5,
     dict(fbs_density=0.6, relu=True), {}),
    ("rows5_word_wider_than_data", dict(rows=5, cols=2), shape(7, 4, 5, 5, 3), 1, 0.0,
     dict(fbs_density=0.5, residual=True), dict(band_rows=1)),
    ("downsample_1x1_s2", dict(rows=4, cols=4), shape(8, 6, 6, 8, 1, 2, 0), 2, 0.3, {}, {}),
    ("axi32_k1_col4", dict(cols=4, axi_data_width=32), shape(3, 4, 4, 1, 1, pad=0), 1, 0.0,
     dict(relu=True), {}),
    ("act16_wgt16", dict(act_width=16, weight_width=16, acc_width=40),
     shape(3, 4, 4, 3, 3), 1, 0.0, {}, dict(k_tile=2)),
    ("double_out_res_multitile", {}, shape(4, 7, 6, 6, 3), 2, 0.5,
     dict(residual=True, relu=True), dict(k_tile=4, band_rows=2, double_out=True)),
    ("double_out_one_tile", dict(rows=4), shape(4, 5, 5, 4, 3), 1, 0.0, {},
     dict(double_out=True)),
    # Wide tiles (act_depth 32, bands of 4 words x 15 pixels): the band's LOAD is cut where
    # it crosses into the second half, here in the middle of word plane 2 ("auto": 8 K
    # tiles per band).
    ("wide_full_width", dict(act_depth=32), shape(8, 4, 5, 16, 3), 2, 0.5,
     dict(residual=True), dict(k_tile=2, double_out=True)),
    # Column strips of a wide band (one block transfer, cut in two) and a strided 1x1 layer
    # (one transfer per band row).
    ("wide_strips", dict(act_depth=32), shape(8, 4, 12, 8, 3), 1, 0.0, {},
     dict(k_tile=4, wide=True)),
    ("wide_1x1_s2", dict(act_depth=32), shape(8, 8, 8, 8, 1, 2, 0), 2, 0.4, {},
     dict(k_tile=2, wide=True)),
]


@pytest.mark.parametrize("cfg_kw,shp,groups,density,extra,tiling", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_commands_reproduce_plan(cfg_kw, shp, groups, density, extra, tiling):
    c, _, trace = check_against_plan(small_config(**cfg_kw),
                                     make_layer(shp, groups, density, seed=7, **extra), **tiling)
    if tiling.get("wide") or "act_depth" in cfg_kw:
        # Wide tiles: activation writes fill both halves, loaded once per band.
        assert c.plan.wide
        banks = {ev[1][3] for ev in trace.events if ev[0] == "write" and ev[1][0] == Target.ACT}
        assert banks == {0, 1}
        bands = {(t.oy0, t.ox0) for t in c.plan.tiles}
        assert sum(t.load_act for t in c.plan.tiles) == len(bands)


@pytest.mark.parametrize("seed", range(12))
def test_commands_reproduce_plan_random(seed):
    rng = random.Random(seed)
    cfg = small_config(rows=rng.choice([1, 2, 3, 4, 8]), cols=rng.choice([1, 2, 3, 4]),
                       axi_data_width=rng.choice([32, 64, 128]))
    groups = rng.choice([1, 2, 4])
    C = groups * rng.randint(1, 4)
    K = groups * rng.randint(1, 4)
    R = rng.choice([1, 3])
    stride = rng.choice([1, 2])
    shp = shape(C, rng.randint(R, 8), rng.randint(R, 8), K, R, stride)
    args = make_layer(shp, groups, rng.random(), seed=seed,
                      fbs_density=rng.choice([None, 0.7]), residual=rng.random() < 0.5,
                      relu=rng.random() < 0.5)
    check_against_plan(cfg, args, k_tile=rng.choice([None, 1, K]),
                       double_out=rng.random() < 0.5)


ENGINE_CASES = [
    ("g2_res_relu_multitile", {}, shape(4, 7, 6, 6, 3), 2, 0.5, dict(residual=True, relu=True),
     dict(k_tile=4, band_rows=2), True),
    ("dense_fbs_rows3", dict(rows=3, cols=2), shape(5, 5, 5, 5, 3, 2), 1, 0.0,
     dict(fbs_density=0.7), {}, False),
    ("g4_1x1_res_double_out", dict(rows=4, cols=3), shape(8, 5, 5, 8, 1), 4, 0.4,
     dict(residual=True), dict(band_rows=2, double_out=True), True),
    ("wide_g2_res", dict(act_depth=32), shape(8, 4, 5, 8, 3), 2, 0.5, dict(residual=True),
     dict(k_tile=2, double_out=True, wide=True), True),
]


@pytest.mark.parametrize("cfg_kw,shp,groups,density,extra,tiling,gaps",
                         [c[1:] for c in ENGINE_CASES], ids=[c[0] for c in ENGINE_CASES])
def test_engine_runs_command_stream(cfg_kw, shp, groups, density, extra, tiling, gaps):
    """cmdsim's transactions on the engine RTL give the golden y, and the expected counts."""
    cfg = small_config(**cfg_kw)
    args = make_layer(shp, groups, density, seed=11, **extra)
    ref = gated_conv(**args)
    c, mem, trace = check_against_plan(cfg, args, **tiling)
    res = run_on_engine(cfg, trace, mem, gaps=gaps, seed=3)
    assert res.errors == [0] * len(c.plan.tiles)
    y = c.decode_y(mem.read(c.y_addr, c.y_len))
    np.testing.assert_array_equal(y, ref.y)
    words, skipped, opens = expected_counts(c.plan, ref.gate)
    assert res.counters["macs"] == words * cfg.rows
    assert res.counters["skipped"] == skipped * cfg.rows
    assert res.counters["open"] == opens


# Controller checks ------------------------------------------------------------------------------

CFG = small_config()


def list_memory(commands, extra=()):
    blob = b"".join(encode(c) for c in commands)
    mem = Memory([(0x1000, blob), (0x2000, bytes(range(64)))] + list(extra))
    mem.add(0x3000, 64)
    return mem, len(blob)


def test_load_modes_and_store():
    cmds = [Command(op=Op.LOAD, target=Target.BIAS, chan=1, item_log2=2, buf_addr=5,
                    buf_stride=2, inner=1, outer=3, dram=0x2000, dram_stride=4),
            Command(op=Op.LOAD, target=Target.WGT, col=1, bank=1, item_log2=1, buf_addr=8,
                    buf_stride=16, inner=2, outer=2, dram=0x2010, dram_stride=8),
            Command(op=Op.STORE, chan=1, buf_addr=1, buf_stride=4, inner=2, outer=3,
                    dram=0x3000, dram_stride=10),
            Command(op=Op.END)]
    mem, n = list_memory(cmds)
    trace = execute(CFG, mem, 0x1000, n, 0x3000, 64)
    le = lambda b: int.from_bytes(bytes(b), "little")  # noqa: E731
    assert trace.events == [
        ("write", (Target.BIAS, 0, 0, 0, 5, le(range(0, 4)))),
        ("write", (Target.BIAS, 1, 0, 0, 5, le(range(4, 8)))),
        ("write", (Target.BIAS, 0, 0, 0, 7, le(range(8, 12)))),
        ("write", (Target.WGT, 1, 0, 1, 8, le(range(16, 18)))),
        ("write", (Target.WGT, 1, 0, 1, 9, le(range(18, 20)))),
        ("write", (Target.WGT, 1, 0, 1, 24, le(range(24, 26)))),
        ("write", (Target.WGT, 1, 0, 1, 25, le(range(26, 28)))),
        ("store",),
        ("read", (0, 1), 0x3000), ("read", (0, 2), 0x3001),
        ("read", (1, 1), 0x300A), ("read", (1, 2), 0x300B),
        ("read", (0, 5), 0x3014), ("read", (0, 6), 0x3015),
        ("end",)]
    assert trace.read_bytes == n + 12 + 8
    assert trace.write_bytes == 6


def test_deal_load_matches_chan_load():
    """A deal LOAD of kt items writes what kt single-item chan iterations write; every
    iteration starts one column lower (item m of iteration n: column (m - n) % cols, rotated
    a column per iteration), buf_stride further on."""
    cfg = small_config(cols=3)
    chan = Command(op=Op.LOAD, target=Target.MULT, chan=1, bank=1, item_log2=2, buf_addr=2,
                   buf_stride=1, inner=1, outer=7, dram=0x2000, dram_stride=4)
    deal = Command(op=Op.LOAD, target=Target.MULT, deal=1, bank=1, item_log2=2, buf_addr=2,
                   buf_stride=1, inner=7, outer=1, dram=0x2000)

    def run(cmd):
        mem, n = list_memory([cmd, Command(op=Op.END)])
        return execute(cfg, mem, 0x1000, n, 0x3000, 64)

    traces = [run(c) for c in (chan, deal)]
    assert traces[0].events == traces[1].events
    assert traces[0].read_bytes == traces[1].read_bytes
    le = lambda b: int.from_bytes(bytes(b), "little")  # noqa: E731
    # Item n (bytes 4n..4n+3) at column n % 3, address 2 + n // 3.
    assert traces[1].events[:-1] == [("write", (Target.MULT, n % 3, 0, 1, 2 + n // 3,
                                                le(range(4 * n, 4 * n + 4))))
                                     for n in range(7)]
    # Four transfers of 4 one-byte items (OUT), 16 bytes apart, dealt over 3 columns with
    # buf_stride 5: item m of transfer n to column (m - n) % 3 at 4 + 5n + m // 3.
    cmd = Command(op=Op.LOAD, target=Target.OUT, deal=1, buf_addr=4, buf_stride=5, inner=4,
                  outer=4, dram=0x2000, dram_stride=16)
    assert run(cmd).events == [
        ("write", (Target.OUT, 0, 0, 0, 4, 0)), ("write", (Target.OUT, 1, 0, 0, 4, 1)),
        ("write", (Target.OUT, 2, 0, 0, 4, 2)), ("write", (Target.OUT, 0, 0, 0, 5, 3)),
        ("write", (Target.OUT, 2, 0, 0, 9, 16)), ("write", (Target.OUT, 0, 0, 0, 9, 17)),
        ("write", (Target.OUT, 1, 0, 0, 9, 18)), ("write", (Target.OUT, 2, 0, 0, 10, 19)),
        ("write", (Target.OUT, 1, 0, 0, 14, 32)), ("write", (Target.OUT, 2, 0, 0, 14, 33)),
        ("write", (Target.OUT, 0, 0, 0, 14, 34)), ("write", (Target.OUT, 1, 0, 0, 15, 35)),
        ("write", (Target.OUT, 0, 0, 0, 19, 48)), ("write", (Target.OUT, 1, 0, 0, 19, 49)),
        ("write", (Target.OUT, 2, 0, 0, 19, 50)), ("write", (Target.OUT, 0, 0, 0, 20, 51)),
        ("end",)]


def test_deal_store_reads_bytes_from_columns():
    """STORE deal: byte m of iteration n from column (m - n) % cols at buf_addr +
    n*buf_stride + m // cols, to contiguous DRAM bytes; col is ignored."""
    cfg = small_config(cols=3)
    cmd = Command(op=Op.STORE, deal=1, col=7, buf_addr=2, buf_stride=6, inner=5, outer=2,
                  dram=0x3001, dram_stride=0x10)
    mem, n = list_memory([cmd, Command(op=Op.END)])
    trace = execute(cfg, mem, 0x1000, n, 0x3000, 64)
    assert trace.events == [("store",)] + [
        ("read", ((m - i) % 3, 2 + 6 * i + m // 3), 0x3001 + 0x10 * i + m)
        for i in range(2) for m in range(5)] + [("end",)]
    assert trace.write_bytes == 10


@pytest.mark.parametrize("cmd,name,match", [
    (Command(op=Op.STORE, chan=1, inner=4, outer=1, dram=0x303E), "out_of_range",
     "must fall in the output window"),
    (Command(op=Op.LOAD, chan=1, bcast=1, inner=1, outer=1, dram=0x2000), "command",
     "must not set both chan and bcast"),
    (Command(op=Op.LOAD, col=2, inner=1, outer=1, dram=0x2000), "command",
     "LOAD col must be below 2, not 2"),
    (Command(op=Op.LOAD, bcast=1, inner=1, outer=1, dram=0x5000), "dram_read",
     "must fall in mapped memory"),
    (Command(op=5), "command", "opcode must be one of 0..3, not 5"),
    (Command(op=Op.LOAD, target=Target.BIAS, deal=1, chan=1, inner=1, outer=1, dram=0x2000),
     "command", "LOAD deal must not be combined with chan or bcast"),
    (Command(op=Op.LOAD, target=Target.BIAS, deal=1, bcast=1, inner=1, outer=1, dram=0x2000),
     "command", "LOAD deal must not be combined with chan or bcast"),
    (Command(op=Op.LOAD, target=Target.WGT, deal=1, inner=1, outer=1, dram=0x2000),
     "command", "LOAD deal target must not be ACT or WGT, not WGT"),
    (Command(op=Op.STORE, deal=1, chan=1, inner=1, outer=1, dram=0x3000), "command",
     "STORE deal must not be combined with chan"),
    (Command(op=Op.STORE, deal=1, bcast=1, inner=1, outer=1, dram=0x3000), "command",
     "STORE must not set bcast or target"),
    (Command(op=Op.STORE, target=Target.OUT, deal=1, inner=1, outer=1, dram=0x3000),
     "command", "STORE must not set bcast or target"),
    (Command(op=Op.LOAD, bcast=1, inner=1, outer=1, dram=(1 << 32) - 2, item_log2=2),
     "out_of_range", "must stay below 0x100000000"),
])
def test_errors(cmd, name, match):
    mem, n = list_memory([cmd, Command(op=Op.END)])
    with pytest.raises(CommandError, match=match) as info:
        execute(CFG, mem, 0x1000, n, 0x3000, 64)
    assert info.value.name == name
    assert info.value.index == 0


def test_descriptor_errors():
    mem, n = list_memory([Command(op=Op.END)])
    with pytest.raises(CommandError, match="must be multiples of 32") as info:
        execute(CFG, mem, 0x1000, n - 4, 0x3000, 64)
    assert info.value.code == 3
    with pytest.raises(CommandError, match="must end with END, not run out"):
        execute(CFG, *list_memory([Command(op=Op.RUN)])[:1], 0x1000, 32, 0x3000, 64)
    with pytest.raises(CommandError, match="must fall in mapped memory") as info:
        execute(CFG, mem, 0x8000, 32, 0x3000, 64)
    assert info.value.name == "dram_read"


def test_trace_order_violations():
    out = ("write", (Target.OUT, 0, 0, 0, 0, 1))
    wr = ("write", (Target.ACT, 0, 1, 0, 0, 1))
    one = {"kt": 1, "ho": 1, "wo": 1}
    run, run_obuf = ("run", dict(one, obuf=0)), ("run", dict(one, obuf=1))
    run2_obuf = ("run", {"obuf": 1, "kt": 2, "ho": 1, "wo": 1})
    store = ("store",)
    read = ("read", (0, 0), 0)
    with pytest.raises(ValueError, match="tile 1's residual preload and RUN must follow the "
                                         "write-back of tile 0"):
        Trace([wr, run, out, store, read, run], 0, 0).tiles()
    with pytest.raises(ValueError, match="tile 1's residual preload and RUN must follow"):
        Trace([wr, run, wr, run], 0, 0).tiles()
    with pytest.raises(ValueError, match="the STORE of tile 0 must follow its RUN"):
        Trace([store, read], 0, 0).tiles()
    with pytest.raises(ValueError, match="must precede the residual preload"):
        Trace([out, wr, run], 0, 0).tiles()
    with pytest.raises(ValueError, match="must be followed by a RUN"):
        Trace([wr, run, wr], 0, 0).tiles()
    with pytest.raises(ValueError, match="tile 2's residual preload and RUN must follow the "
                                         "write-back of tile 0"):
        Trace([run_obuf, run_obuf, out, run_obuf], 0, 0).tiles()
    # Double-buffered outputs: tile 1 may start before tile 0 is written back.
    tiles = Trace([wr, out, run_obuf, wr, out, run2_obuf, store, read, wr, out, run_obuf, store,
                   read, read, store, read], 0, 0).tiles()
    assert [len(t.reads) for t in tiles] == [1, 2, 1]
    # A tile is written back by several STOREs (one per column of a pixel-split tile).
    tiles = Trace([wr, run2_obuf, store, read, store, read, wr, run_obuf, store, read],
                  0, 0).tiles()
    assert [len(t.reads) for t in tiles] == [2, 1]
    with pytest.raises(ValueError, match="must follow a STORE"):
        Trace([wr, run_obuf, store, read, read], 0, 0).tiles()
    tiles = Trace([wr, out, run, store, read, out, run, store, read], 0, 0).tiles()
    assert [len(t.reads) for t in tiles] == [1, 1]


def test_memory_regions():
    mem = Memory([(0x100, b"abc")])
    with pytest.raises(ValueError, match="must not overlap"):
        mem.add(0x102, 4)
    with pytest.raises(CommandError, match="DRAM write of 2 bytes at 0x102"):
        mem.write(0x102, b"xy")
    mem.write(0x101, b"XY")
    assert mem.read(0x100, 3) == b"aXY"
