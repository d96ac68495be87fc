"""Host driver: DRAM layouts, command ordering, tile packing, and the Driver's register protocol
against a pure-Python accelerator model (cmdsim + the engine RTL in the Amaranth simulator)."""

import asyncio

import numpy as np
import pytest

from cgaccel.cmdsim import CommandError, Memory, execute, run_on_engine
from cgaccel.commands import Op
from cgaccel.config import AccelConfig
from cgaccel.driver import (
    REG,
    REGION_ALIGN,
    AcceleratorError,
    AcceleratorTimeout,
    Driver,
    DriverError,
    HardwareMismatch,
    compile_layer,
    pack_tile,
    unpack_tile,
)
from cgaccel.engine.geometry import Target
from cgaccel.engine.tiling import expected_counts
from cgaccel.model.data import make_layer
from cgaccel.model.layer import gated_conv
from cgaccel.model.resnet18 import LayerShape
from cgaccel.model.vectors import make_vectors
from cgaccel.regs import MAGIC, VERSION, counter_names, hwcfg_values


def small_config(rows=2, cols=2, **kw):
    base = dict(rows=rows, cols=cols, max_channels=64, max_dim=32, max_kernel=3,
                act_depth=256, weight_depth=256, out_depth=256, psum_slots=8, max_groups=8)
    base.update(kw)
    return AccelConfig(**base)


def shape(C, H, W, K, R, stride=1, pad=None):
    return LayerShape("t", C, H, W, K, R, R, stride, R // 2 if pad is None else pad)


CFG = small_config()
LAYER = make_layer(shape(6, 6, 5, 6, 3), 2, 0.5, seed=2, residual=True, relu=True)


# Tile packing -----------------------------------------------------------------------------------

def test_tile_pack_roundtrip():
    cmd = dict(bank=1, kt=6, r=3, s=3, stride=2, hb=5, w=7, iy_base=-1, pad_l=1, ho=3, wo=4,
               cw=3, gated=1, relu=0, residual=1, obuf=1, psplit=1, pc=5, wide=1,
               pdeal=1)
    value = pack_tile(CFG, cmd)
    assert value & 1 == 1  # bank is the first (lowest) field
    assert unpack_tile(CFG, value) == cmd


def test_tile_pack_errors():
    cmd = dict(bank=0, kt=1, r=1, s=1, stride=1, hb=1, w=1, iy_base=0, pad_l=0, ho=1, wo=1,
               cw=1, gated=0, relu=0, residual=0, obuf=0, psplit=0, pc=0, wide=0,
               pdeal=0)
    with pytest.raises(ValueError, match="field r must fit 4 unsigned bits, not 16"):
        pack_tile(CFG, dict(cmd, r=16))
    with pytest.raises(ValueError, match="field iy_base must fit 7 signed bits, not -65"):
        pack_tile(CFG, dict(cmd, iy_base=-65))
    with pytest.raises(ValueError, match=r"must have fields \['relu'\]"):
        pack_tile(CFG, {k: v for k, v in cmd.items() if k != "relu"})


# Layouts and command order ---------------------------------------------------------------------

def test_regions_and_layouts():
    cfg = small_config(rows=3, cols=2)
    args = make_layer(shape(5, 6, 5, 7, 3), 1, 0.0, seed=4, residual=True)
    c = compile_layer(cfg, args, base_addr=0x40000)
    C, H, W = args["x"].shape
    K = args["w"].shape[0]
    # Regions are 4 KiB aligned, disjoint, above base_addr, and y comes after all of them.
    spans = sorted((a, a + len(b)) for a, b in c.regions.values())
    assert spans[0][0] == c.cmd_addr == 0x40000
    for (a0, e0), (a1, _) in zip(spans, spans[1:], strict=False):
        assert a0 % REGION_ALIGN == 0 and e0 <= a1
    assert c.y_addr % REGION_ALIGN == 0 and c.y_addr >= spans[-1][1]
    assert c.y_len == K * 6 * 5
    # Activations: [ceil(C/rows)][H][W][rows] int8, each 3-byte word padded to 4 bytes.
    xp = np.zeros((6, H, W), np.int8)
    xp[:C] = args["x"]
    want = np.zeros((2, H, W, 4), np.int8)
    want[..., :3] = xp.reshape(2, 3, H, W).transpose(0, 2, 3, 1)
    assert c.regions["x"][1] == want.tobytes()
    # Weights: [K][R*S][CW] words of the same format.
    wp = np.zeros((K, 6, 3, 3), np.int8)
    wp[:, :C] = args["w"]
    want = np.zeros((K, 3, 3, 2, 4), np.int8)
    want[..., :3] = wp.reshape(K, 2, 3, 3, 3).transpose(0, 3, 4, 1, 2)
    assert c.regions["w"][1] == want.tobytes()
    assert c.regions["bias"][1] == args["bias"].astype("<i4").tobytes()
    assert c.regions["mult"][1] == args["mult"].astype("<i4").tobytes()
    assert c.regions["thr"][1] == bytes(4 * K)   # dense: the engine sees thr 0
    assert c.regions["res"][1] == args["res"].tobytes()


def test_command_order():
    """Loads of tile t+1 follow RUN t; STORE t precedes the residual preload and RUN of t+1."""
    c = compile_layer(CFG, LAYER, k_tile=2, band_rows=3)
    n = len(c.plan.tiles)
    assert n == 6
    ops = [(cmd.op, cmd.target if cmd.op == Op.LOAD else None) for cmd in c.commands]
    wgts = [(Op.LOAD, t) for t in (Target.WGT, Target.BIAS, Target.THR, Target.MULT,
                                   Target.CFG)]
    want = []
    for i, t in enumerate(c.plan.tiles):
        want += [(Op.LOAD, Target.ACT)] if t.load_act else []
        want += [(Op.LOAD, Target.LIST)] if t.load_list else []
        want += wgts if t.load_wgt else []
        want += [(Op.STORE, None)] if i else []
        want += [(Op.LOAD, Target.OUT), (Op.RUN, None)]
    want += [(Op.STORE, None), (Op.END, None)]
    assert ops == want
    # 2 bands x 3 K tiles, bands outer (activations are the larger load here): tiles 2 and
    # 5 find their band still in their half (left there by tiles 0 and 3).
    assert [(t.oy0, t.k0) for t in c.plan.tiles] == [(0, 0), (0, 2), (0, 4), (3, 0), (3, 2),
                                                     (3, 4)]
    assert [(t.load_act, t.load_wgt) for t in c.plan.tiles] == [
        (True, True), (True, True), (False, True), (True, True), (True, True), (False, True)]
    # One work list serves both bands (3 and 2 input rows: word planes 3 rows apart), so
    # each half loads it once.
    assert [t.load_list for t in c.plan.tiles] == [True, True] + [False] * 4
    assert c.plan.plane == max(t.cmd["hb"] * t.cmd["w"] for t in c.plan.tiles)
    banks = [cmd.bank for cmd in c.commands if cmd.op == Op.LOAD and cmd.target == Target.WGT]
    assert banks == [t % 2 for t in range(n)]
    # Per-channel tables: one transfer of kt items per table and tile, dealt to the columns.
    params = [cmd for cmd in c.commands if cmd.op == Op.LOAD
              and cmd.target in (Target.BIAS, Target.THR, Target.MULT, Target.CFG)]
    loaded = [t for t in c.plan.tiles if t.load_wgt]
    assert len(params) == 4 * len(loaded) == 4 * n
    K = c.shape[0]
    for i, cmd in enumerate(params):
        t = loaded[i // 4]
        name = Target(cmd.target).name.lower()
        item = len(c.regions[name][1]) // K     # [K] items
        assert (cmd.deal, cmd.chan, cmd.bcast, cmd.inner, cmd.outer, cmd.buf_addr,
                cmd.buf_stride, 1 << cmd.item_log2, cmd.bank) == (
                    1, 0, 0, t.kt, 1, 0, 1, item, t.bank)
        assert cmd.dram == c.regions[name][0] + t.k0 * item
    runs = [unpack_tile(CFG, cmd.tile) for cmd in c.commands if cmd.op == Op.RUN]
    assert [r["bank"] for r in runs] == [t % 2 for t in range(n)]
    assert runs == [t.cmd for t in c.plan.tiles]


def test_command_order_double_out():
    """With a double-buffered output bank, STORE t waits until before the RUN of tile t+2."""
    c = compile_layer(CFG, LAYER, k_tile=2, band_rows=3, double_out=True)
    n = len(c.plan.tiles)
    seq = []
    for cmd in c.commands:
        if cmd.op == Op.RUN:
            seq.append(("run", unpack_tile(CFG, cmd.tile)["bank"]))
        elif cmd.op == Op.STORE:
            seq.append(("store", cmd.buf_addr))
    half = CFG.out_depth // 2
    want = [("run", 0), ("run", 1)]
    for t in range(2, n):
        want += [("store", (t % 2) * half), ("run", t % 2)]
    want += [("store", (n % 2) * half), ("store", ((n + 1) % 2) * half)]
    assert seq == want
    outs = [cmd for cmd in c.commands if cmd.op == Op.LOAD and cmd.target == Target.OUT]
    assert [(o.bank, o.buf_addr) for o in outs] == [(t % 2, (t % 2) * half) for t in range(n)]


def test_command_order_dealt_pixels():
    """Dealt-pixel tiles: the weights in one broadcast transfer, parameters broadcast, one
    dealt residual LOAD and one dealt STORE per tile (a transfer per channel, contiguous
    DRAM bytes), and the list reproduces the plan's transactions."""
    cfg = small_config(rows=2, cols=3)
    layer = make_layer(shape(4, 7, 2, 6, 1), 2, 0.5, seed=4, residual=True)
    c = compile_layer(cfg, layer, k_tile=4, band_rows=3, double_out=True, split="deal")
    _, Ho, Wo = c.shape
    tiles = c.plan.tiles
    assert all(t.cmd["psplit"] == t.cmd["pdeal"] == 1 for t in tiles)
    assert [t.cmd["pc"] for t in tiles][:2] == [2, 2]     # 3 rows of 2 over 3 columns
    wgt = [cmd for cmd in c.commands if cmd.op == Op.LOAD and cmd.target == Target.WGT]
    loaded = [t for t in tiles if t.load_wgt]
    assert [(w.bcast, w.chan, w.inner, w.outer) for w in wgt] == [
        (1, 0, t.kt * 1 * 2, 1) for t in loaded]           # kt channels x RS=1 x CW=2
    half = cfg.out_depth // 2
    for op in (Op.STORE, Op.LOAD):
        got = [cmd for cmd in c.commands if cmd.op == op
               and (op == Op.STORE or cmd.target == Target.OUT)]
        assert [(g.deal, g.chan, g.bcast, g.inner, g.outer, g.buf_addr, g.buf_stride,
                 g.dram_stride) for g in got] == [
            (1, 0, 0, t.ho * Wo, t.kt, t.bank * half, t.cmd["pc"], Ho * Wo) for t in tiles]
    mem = Memory(list(c.image()) + [(c.y_addr, bytes(c.y_len))])
    trace = execute(cfg, mem, c.cmd_addr, c.cmd_len, c.y_addr, c.y_len).tiles()
    for t, p in zip(trace, tiles, strict=True):
        assert t.cmd == p.cmd
        assert t.reads == p.reads
        assert sorted(t.writes) == sorted(p.writes)
        assert sorted(t.out_writes) == sorted(p.out_writes)
        # The dealt STORE writes the tile's bytes in DRAM order.
        assert t.dram == sorted(t.dram)


def test_command_order_pixel_split():
    """Pixel-split tiles: broadcast weights/parameters, a residual preload and a STORE per
    column holding pixels, each at its chunk of the output rows."""
    cfg = small_config(rows=2, cols=4)
    c = compile_layer(cfg, LAYER, k_tile=4, band_rows=1, split="pixel")
    _, Ho, Wo = c.shape
    tiles = c.plan.tiles
    assert [t.cmd["pc"] for t in tiles] == [2] * len(tiles)   # Wo=5 over 4 columns: 2 2 1 0
    wgt = [cmd for cmd in c.commands if cmd.op == Op.LOAD and cmd.target == Target.WGT]
    assert all(cmd.bcast == 1 and cmd.chan == 0 and cmd.outer == 1 for cmd in wgt)
    # Parameters: channel n to slot n of every column, the table in one transfer (broadcast,
    # not dealt).
    params = [cmd for cmd in c.commands if cmd.op == Op.LOAD
              and cmd.target in (Target.BIAS, Target.THR, Target.MULT, Target.CFG)]
    assert [(cmd.bcast, cmd.chan, cmd.deal, cmd.inner, cmd.outer, cmd.buf_addr)
            for cmd in params] == [(1, 0, 0, t.kt, 1, 0) for t in tiles if t.load_wgt
                                   for _ in range(4)]
    stores = [cmd for cmd in c.commands if cmd.op == Op.STORE]
    res = [cmd for cmd in c.commands if cmd.op == Op.LOAD and cmd.target == Target.OUT]
    assert len(stores) == len(res) == 3 * len(tiles)
    t0 = [s for s in stores if s.dram < c.y_addr + Wo]   # tile 0: channels 0-3, row 0
    assert [(s.col, s.inner, s.outer, s.dram - c.y_addr, s.dram_stride) for s in t0] == [
        (0, 2, 4, 0, Ho * Wo), (1, 2, 4, 2, Ho * Wo), (2, 1, 4, 4, Ho * Wo)]
    assert all(s.chan == 0 and s.buf_stride == s.inner for s in stores)
    # The command list reproduces the plan's engine transactions exactly.
    mem = Memory(list(c.image()) + [(c.y_addr, bytes(c.y_len))])
    trace = execute(cfg, mem, c.cmd_addr, c.cmd_len, c.y_addr, c.y_len).tiles()
    for t, p in zip(trace, tiles, strict=True):
        assert t.cmd == p.cmd
        assert t.reads == p.reads
        assert sorted(t.writes) == sorted(p.writes)
        assert sorted(t.out_writes) == sorted(p.out_writes)


def test_strided_1x1_layer_gathers_activations():
    """A 1x1 stride-2 layer loads only the pixels it reads: one single-item transfer per
    used pixel, every second row and column, and runs at stride 1 on the engine."""
    cfg = small_config(rows=2, cols=2)
    args = make_layer(shape(3, 7, 8, 4, 1, stride=2, pad=0), 1, 0.0, seed=8)
    c = compile_layer(cfg, args, band_rows=2)
    assert c.plan.subsample == 2 and c.shape == (4, 4, 4)
    acts = [cmd for cmd in c.commands if cmd.op == Op.LOAD and cmd.target == Target.ACT]
    CW, item = 2, 2                      # 3 channels in 2-lane words of 2 bytes
    assert len(acts) == sum(CW * t.cmd["hb"] for t in c.plan.tiles) == 2 * CW * 2
    assert all((a.inner, a.outer, a.dram_stride, a.buf_stride) == (1, 4, 2 * item, 1)
               for a in acts)
    x0 = c.regions["x"][0]
    # Tile 1 (output rows 2, 3) reads input rows 4 and 6 of both word planes.
    rows = [(a.dram - x0) // (8 * item) for a in acts[2 * CW:4 * CW]]
    assert rows == [4, 6, 7 + 4, 7 + 6]
    assert c.load_bytes < CW * 7 * 8 * item + 4096   # far less than the whole map twice
    mem = Memory(list(c.image()) + [(c.y_addr, bytes(c.y_len))])
    trace = execute(cfg, mem, c.cmd_addr, c.cmd_len, c.y_addr, c.y_len).tiles()
    for t, p in zip(trace, c.plan.tiles, strict=True):
        assert t.cmd == p.cmd and t.cmd["stride"] == 1
        assert sorted(t.writes) == sorted(p.writes)
    hw = ModelAccel(cfg)
    vec = dict(args, y=gated_conv(**args).y)
    run = asyncio.run(Driver(cfg, hw, hw.mem).run_layer(vec, band_rows=2))
    np.testing.assert_array_equal(run.y, vec["y"])


def test_few_channel_layer_is_folded_by_the_host():
    """C=2 on 4 lanes: the host lays out the im2col input (18 channels) and the engine runs a
    1x1 layer, bit-exact."""
    cfg = small_config(rows=4, cols=2)
    args = make_layer(shape(2, 7, 6, 3, 3, stride=2), 1, 0.0, seed=9, relu=True)
    c = compile_layer(cfg, args)
    assert c.plan.folded and c.shape == (3, 4, 3)
    assert len(c.regions["x"][1]) == 5 * 4 * 3 * 4    # ceil(18/4) words x Ho x Wo, 4 bytes
    hw = ModelAccel(cfg)
    run = asyncio.run(Driver(cfg, hw, hw.mem).run_layer(dict(args, y=gated_conv(**args).y)))
    np.testing.assert_array_equal(run.y, gated_conv(**args).y)


def test_one_list_image_for_all_band_sizes():
    c = compile_layer(CFG, LAYER, band_rows=4)   # Ho=6: bands of 4 and 2 output rows
    assert len({(t.cmd["hb"], t.cmd["w"]) for t in c.plan.tiles}) == 2
    assert [k for k in c.regions if k.startswith("list")] == ["list"]
    lists = [cmd for cmd in c.commands if cmd.op == Op.LOAD and cmd.target == Target.LIST]
    assert [cmd.bank for cmd in lists] == [0, 1]


@pytest.mark.parametrize("stride,residual", [(1, True), (2, False)])
def test_column_strips_compile_and_run(stride, residual):
    """A map too wide for one band row: column strips, each band loaded as one transfer from
    its own block, stored one output row per STORE; the command list reproduces the plan
    exactly."""
    cfg = small_config(rows=2, cols=2, act_depth=32)
    args = make_layer(shape(4, 6, 19, 4, 3, stride=stride), 2, 0.5, seed=4, residual=residual)
    c = compile_layer(cfg, args, double_out=True)
    assert len({t.ox0 for t in c.plan.tiles}) > 1
    mem = Memory(list(c.image()) + [(c.y_addr, bytes(c.y_len))])
    trace = execute(cfg, mem, c.cmd_addr, c.cmd_len, c.y_addr, c.y_len).tiles()
    for t, p in zip(trace, c.plan.tiles, strict=True):
        assert t.cmd == p.cmd
        assert sorted(t.writes) == sorted(p.writes)
        assert sorted(t.out_writes) == sorted(p.out_writes)
        assert sorted(t.reads) == sorted(p.reads)
    hw = ModelAccel(cfg)
    ref = gated_conv(**args)
    run = asyncio.run(Driver(cfg, hw, hw.mem).run_layer(dict(args, y=ref.y), double_out=True))
    np.testing.assert_array_equal(run.y, ref.y)


def test_compile_accepts_vectors_dict():
    vec = make_vectors(shape(4, 5, 5, 4, 3), 2, 0.5, seed=1, residual=True)
    c = compile_layer(CFG, vec)
    mem = Memory(c.image())
    mem.add(c.y_addr, c.y_len)
    trace = execute(CFG, mem, c.cmd_addr, c.cmd_len, c.y_addr, c.y_len)
    assert len(trace.tiles()) == len(c.plan.tiles)


def test_packed_regions_run_bit_exact():
    """``region_align`` packs the regions (a board RAM's layout); the layer runs the same."""
    vec = make_vectors(shape(4, 5, 5, 4, 3), 2, 0.5, seed=3, residual=True)
    paged = compile_layer(CFG, vec, base_addr=0)
    packed = compile_layer(CFG, vec, base_addr=0x40, region_align=32)
    spans = sorted([(a, a + len(b)) for a, b in packed.regions.values()]
                   + [(packed.y_addr, packed.y_addr + packed.y_len)])
    assert all(a % 32 == 0 for a, _ in spans) and spans[0][0] == 0x40
    assert all(end <= nxt for (_, end), (nxt, _) in zip(spans, spans[1:], strict=False))
    assert packed.end_addr - 0x40 < 2048 < paged.end_addr
    # Same contents; only the command list's addresses differ.
    assert packed.regions.keys() == paged.regions.keys()
    for name, (_, data) in packed.regions.items():
        assert name == "commands" or bytes(data) == bytes(paged.regions[name][1]), name
    hw = ModelAccel(CFG)
    run = asyncio.run(Driver(CFG, hw, hw.mem).run_compiled(packed))
    np.testing.assert_array_equal(run.y, vec["y"])


def test_compile_errors():
    with pytest.raises(TypeError, match="config must be an AccelConfig, not 'tiny'"):
        compile_layer("tiny", LAYER)
    with pytest.raises(ValueError, match="base_addr must be a non-negative multiple of 4096, "
                                         "not 0x10"):
        compile_layer(CFG, LAYER, base_addr=0x10)
    with pytest.raises(TypeError, match="base_addr must be an integer, not 1.5"):
        compile_layer(CFG, LAYER, base_addr=1.5)
    for bad in (16, 48, 32.0, True):
        with pytest.raises(ValueError, match="region_align must be a power of two of at least "
                                             f"32, not {bad!r}"):
            compile_layer(CFG, LAYER, region_align=bad)
    with pytest.raises(ValueError, match="base_addr must be a non-negative multiple of 64, "
                                         "not 0x20"):
        compile_layer(CFG, LAYER, base_addr=0x20, region_align=64)
    with pytest.raises(TypeError, match="layer must be a dict of vectors or gated_conv arrays, "
                                        "not list"):
        compile_layer(CFG, [LAYER])
    with pytest.raises(ValueError, match="layer must have keys x, not lack them"):
        compile_layer(CFG, {k: v for k, v in LAYER.items() if k != "x"})
    with pytest.raises(ValueError, match="layer image must fit the 32-bit address space"):
        compile_layer(CFG, LAYER, base_addr=(1 << 32) - 4096)
    with pytest.raises(ValueError, match="must fit the weight bank"):
        compile_layer(small_config(weight_depth=16), LAYER)


# Driver against a model accelerator ------------------------------------------------------------

class ModelAccel:
    """Register map + DRAM of an accelerator whose controller is cmdsim and whose engine is the
    RTL in the Amaranth simulator. ``behaviour``: ``"ok"``, ``"hang"`` (never done)."""

    def __init__(self, config, behaviour="ok", hwcfg=None):
        self.config = config
        self.behaviour = behaviour
        self.mem = Memory()
        self.mem.add(0, 1 << 20)
        self.r = {REG["ID"]: MAGIC, REG["VERSION"]: VERSION}
        for name, value in (hwcfg or hwcfg_values(config)).items():
            self.r[REG[name]] = value
        self.status = self.error = 0
        self.counters = {}
        self.log = []

    async def read(self, offset):
        if offset == REG["STATUS"]:
            return self.status
        if offset == REG["ERROR"]:
            return self.error
        for name in counter_names():
            if offset in (REG[f"{name}_LO"], REG[f"{name}_HI"]):
                v = self.counters.get(name.lower(), 0)
                return v & 0xFFFFFFFF if offset == REG[f"{name}_LO"] else v >> 32
        return self.r.get(offset, 0)

    async def write(self, offset, value):
        self.log.append((offset, value))
        if offset == REG["CTRL"]:
            if value & 2:
                self.status = self.error = 0
            if value & 1 and self.behaviour == "ok":
                self._run()
            elif value & 1:
                self.status = 1
            return
        self.r[offset] = value

    def _run(self):
        g = lambda n: self.r.get(REG[n], 0)  # noqa: E731
        try:
            trace = execute(self.config, self.mem, g("CMD_ADDR_LO") | g("CMD_ADDR_HI") << 32,
                            g("CMD_LEN"), g("Y_ADDR_LO") | g("Y_ADDR_HI") << 32, g("Y_LEN"))
        except CommandError as exc:
            self.status, self.error = 0b110, exc.code
            return
        res = run_on_engine(self.config, trace, self.mem)
        c = res.counters
        self.counters = dict(cycles=res.cycles, busy=c["busy"], macs_issued=c["macs"],
                             macs_skipped=c["skipped"], gate_open=c["open"],
                             dram_rd_bytes=trace.read_bytes, dram_wr_bytes=trace.write_bytes,
                             stall_dram=(1 << 33) + 5)   # exercises the _HI half
        self.status = 0b010


def test_driver_runs_layer_bit_exact():
    vec = make_vectors(shape(4, 5, 6, 6, 3), 2, 0.4, seed=5, residual=True, relu=True,
                       fbs_density=0.8)
    hw = ModelAccel(CFG)
    drv = Driver(CFG, hw, hw.mem)
    run = asyncio.run(drv.run_layer(vec, band_rows=2))
    np.testing.assert_array_equal(run.y, vec["y"])
    words, skipped, opens = expected_counts(run.compiled.plan, vec["gate"])
    assert run.counters["macs_issued"] == words * CFG.rows
    assert run.counters["macs_skipped"] == skipped * CFG.rows
    assert run.counters["gate_open"] == opens == int(vec["gate"].sum())
    assert run.counters["stall_dram"] == (1 << 33) + 5
    assert run.cycles == run.counters["cycles"] > 0 and run.error == 0
    # The descriptor is complete before the start pulse, which is the last write of the start.
    written = [off for off, _ in hw.log]
    start = written.index(REG["CTRL"])
    for name in ("CMD_ADDR_LO", "CMD_ADDR_HI", "CMD_LEN", "Y_ADDR_LO", "Y_ADDR_HI", "Y_LEN",
                 "IRQ_EN"):
        assert REG[name] in written[:start]
    assert hw.log[start] == (REG["CTRL"], 1)
    assert hw.r[REG["CMD_LEN"]] == run.compiled.cmd_len


def test_driver_runs_pixel_split_layer_bit_exact():
    vec = make_vectors(shape(4, 5, 6, 6, 1, pad=0), 2, 0.4, seed=6, residual=True)
    hw = ModelAccel(CFG)
    run = asyncio.run(Driver(CFG, hw, hw.mem).run_layer(vec, split="pixel"))
    np.testing.assert_array_equal(run.y, vec["y"])
    assert all(t.cmd["psplit"] for t in run.compiled.plan.tiles)


def test_driver_runs_dealt_pixel_layer_bit_exact():
    # 3 columns on rows of 2 outputs (the step wraps a row), residuals preloaded dealt.
    cfg = small_config(rows=2, cols=3)
    vec = make_vectors(shape(4, 5, 2, 6, 1, pad=0), 2, 0.4, seed=7, residual=True,
                       relu=True)
    hw = ModelAccel(cfg)
    run = asyncio.run(Driver(cfg, hw, hw.mem).run_layer(vec, split="deal", double_out=True))
    np.testing.assert_array_equal(run.y, vec["y"])
    assert all(t.cmd["pdeal"] for t in run.compiled.plan.tiles)


def test_driver_reports_error_status():
    hw = ModelAccel(CFG)
    drv = Driver(CFG, hw, hw.mem)
    c = compile_layer(CFG, LAYER)
    c.y_len -= 1       # the last STORE now leaves the output window
    with pytest.raises(AcceleratorError, match=r"error 4 \(out_of_range\)") as info:
        asyncio.run(drv.run_compiled(c))
    assert info.value.name == "out_of_range"
    asyncio.run(drv.soft_reset())
    assert hw.status == 0


def test_driver_timeout():
    hw = ModelAccel(CFG, behaviour="hang")
    waits = []

    async def wait():
        waits.append(1)

    drv = Driver(CFG, hw, hw.mem, max_polls=5, wait=wait)
    with pytest.raises(AcceleratorTimeout, match="within 5 STATUS polls, not stay busy"):
        asyncio.run(drv.run_layer(LAYER))
    assert len(waits) == 5


def test_driver_refuses_to_start_when_busy():
    hw = ModelAccel(CFG, behaviour="hang")
    drv = Driver(CFG, hw, hw.mem, max_polls=2)
    with pytest.raises(AcceleratorTimeout):
        asyncio.run(drv.run_layer(LAYER))
    with pytest.raises(DriverError, match="must be idle to start a layer, not busy"):
        asyncio.run(drv.run_layer(LAYER))
    asyncio.run(drv.soft_reset())
    assert hw.status == 0


def test_driver_waits_for_the_end_of_an_error():
    """An error flag while still busy (draining) is not the end of the layer."""
    hw = ModelAccel(CFG, behaviour="hang")
    seen = []

    async def wait():
        seen.append(hw.status)
        hw.status = 0b101 if len(seen) < 3 else 0b110   # error while busy, then done
        hw.error = 2

    drv = Driver(CFG, hw, hw.mem, wait=wait)
    with pytest.raises(AcceleratorError, match=r"error 2 \(dram_write\)"):
        asyncio.run(drv.run_layer(LAYER))
    assert len(seen) == 3


def test_driver_poisons_output_window():
    hw = ModelAccel(CFG, behaviour="hang")
    drv = Driver(CFG, hw, hw.mem, fill=0x5A)
    c = compile_layer(CFG, LAYER)
    asyncio.run(drv.load(c))
    assert hw.mem.read(c.y_addr, c.y_len) == b"\x5a" * c.y_len
    assert hw.mem.read(c.cmd_addr, c.cmd_len) == c.cmd_bytes


def test_driver_checks_hardware():
    other = small_config(rows=4)
    hw = ModelAccel(CFG, hwcfg=hwcfg_values(other))
    with pytest.raises(HardwareMismatch, match="HWCFG0 must be 0x01080202 for this "
                                               "configuration, not 0x01080204"):
        asyncio.run(Driver(CFG, hw, hw.mem).run_layer(LAYER))
    hw = ModelAccel(CFG)
    hw.r[REG["ID"]] = 0xDEADBEEF
    with pytest.raises(HardwareMismatch, match="ID must be 0x43474143, not 0xdeadbeef"):
        asyncio.run(Driver(CFG, hw, hw.mem).check_hardware())
    # Hardware without LOAD deal (minor 0) would load the parameter tables wrongly, without
    # wide tiles (minor 1) it would read wide bands from one half, and without STORE deal
    # (minor 2) it would refuse dealt-pixel tiles' write-back, without the rotated deal (minor
    # 3) it would put a dealt tile's residuals and outputs in other columns than its engine
    # computes them. Later minors are compatible.
    hw = ModelAccel(CFG)
    for minor in (0, 1, 2, 3):
        hw.r[REG["VERSION"]] = 0x00010000 | minor
        with pytest.raises(HardwareMismatch,
                           match=f"VERSION minor must be at least 4, not {minor}"):
            asyncio.run(Driver(CFG, hw, hw.mem).check_hardware())
    for minor in (4, 5):
        hw.r[REG["VERSION"]] = 0x00010000 | minor
        asyncio.run(Driver(CFG, hw, hw.mem).check_hardware())


def test_driver_constructor_errors():
    hw = ModelAccel(CFG)
    with pytest.raises(TypeError, match="config must be an AccelConfig"):
        Driver(None, hw, hw.mem)
    with pytest.raises(TypeError, match="mem must have a read\\(\\) method"):
        Driver(CFG, hw, object())
    with pytest.raises(ValueError, match="max_polls must be a positive integer, not 0"):
        Driver(CFG, hw, hw.mem, max_polls=0)
    with pytest.raises(ValueError, match="fill must be a byte value 0..255, not 256"):
        Driver(CFG, hw, hw.mem, fill=256)


def test_golden_reference_is_nontrivial():
    """The layer the driver tests use exercises gating (some gates open, some closed)."""
    ref = gated_conv(**LAYER)
    assert 0 < ref.gate.sum() < ref.gate.size
