"""Host driver: compile a layer into a DRAM image and a command list, and run it on the hardware.

Two halves:

* :func:`compile_layer` is pure host software. It tiles the layer with
  :func:`cgaccel.engine.tiling.plan_layer`, lays the tensors out in DRAM (4 KiB aligned regions,
  see ``docs/driver.md``) and emits the command list (:mod:`cgaccel.commands`) whose execution
  writes exactly the engine buffer transactions the plan lists (checked by
  :mod:`cgaccel.cmdsim` in the tests).
* :class:`Driver` programs one accelerator through two small abstract interfaces, so the same code
  drives a cocotb simulation (``cocotbext-axi`` adapters in ``sim/e2e``) and a board:

  - ``regs``: ``await regs.read(offset) -> int`` and ``await regs.write(offset, value)`` on the
    32-bit register map of :mod:`cgaccel.regs`;
  - ``mem``: ``mem.write(addr, data)`` and ``mem.read(addr, n) -> bytes`` on DRAM (either may be
    a coroutine function).
"""

import asyncio
import dataclasses
import inspect
from dataclasses import dataclass, field

import numpy as np

from .commands import COMMAND_BYTES, Command, Op, encode
from .config import AccelConfig
from .engine.geometry import Geometry, Target
from .engine.tiling import fold_taps, plan_layer
from .model.vectors import INPUT_KEYS, OPTIONAL_KEYS
from .regs import ERRORS, MAGIC, VERSION, counter_names, hwcfg_values, register_map

__all__ = ["REGION_ALIGN", "LAYOUT_OPTIONS", "CompiledLayer", "compile_layer", "pack_tile",
           "unpack_tile",
           "Driver", "LayerRun", "DriverError", "HardwareMismatch", "AcceleratorError",
           "AcceleratorTimeout", "REG"]

REGION_ALIGN = 4096
#: :func:`compile_layer`'s layout options, as bench cases name them.
LAYOUT_OPTIONS = ("k_tile", "band_rows", "double_out", "split", "wide", "region_align")
REG = {r.name: r.offset for r in register_map()}
ERROR_NAMES = {code: name for name, code in ERRORS.items()}


def _ceil_div(a, b):
    return -(-a // b)


def _align(n, a=REGION_ALIGN):
    return _ceil_div(n, a) * a


def _item_log2(bits):
    """log2 of the power-of-two byte count that holds ``bits`` bits."""
    nbytes = _ceil_div(bits, 8)
    return max(0, (nbytes - 1).bit_length())


# Tile command packing ----------------------------------------------------------------------------

def _tile_fields(config):
    from amaranth.hdl import Shape
    out = []
    for name, fld in Geometry(config).tile_layout():
        shape = Shape.cast(fld.shape)
        out.append((name, fld.offset, shape.width, shape.signed))
    return out


def pack_tile(config, cmd):
    """Pack a tile-command dict LSB first in ``Geometry.tile_layout()`` field order.

    Raises
    ------
    ValueError
        A field does not fit its width, a field is missing, or the command exceeds 128 bits.
    """
    fields = _tile_fields(config)
    total = max(off + width for _, off, width, _ in fields)
    if total > 128:
        raise ValueError(f"tile command must fit the 128 bits of a RUN command, not {total}")
    missing = {name for name, *_ in fields} - set(cmd)
    if missing:
        raise ValueError(f"tile command must have fields {sorted(missing)}, not omit them")
    value = 0
    for name, off, width, signed in fields:
        v = int(cmd[name])
        lo, hi = (-(1 << (width - 1)), 1 << (width - 1)) if signed else (0, 1 << width)
        if not lo <= v < hi:
            raise ValueError(f"tile command field {name} must fit {width} "
                             f"{'signed' if signed else 'unsigned'} bits, not {v}")
        value |= (v & ((1 << width) - 1)) << off
    return value


def unpack_tile(config, value):
    """The inverse of :func:`pack_tile`: a dict of integers (signed fields sign-extended)."""
    out = {}
    for name, off, width, signed in _tile_fields(config):
        v = (value >> off) & ((1 << width) - 1)
        if signed and v >> (width - 1):
            v -= 1 << width
        out[name] = v
    return out


# Compilation -------------------------------------------------------------------------------------

@dataclass
class CompiledLayer:
    """A layer ready to run: DRAM image, command list and output window.

    Members
    -------
    config : AccelConfig
    plan : LayerPlan
        The tiling the commands implement.
    regions : dict
        ``name -> (address, bytes)`` of every DRAM region the host writes before starting,
        including ``"commands"``; the output region ``"y"`` is listed in ``y_addr``/``y_len``.
    commands : list of Command
    cmd_addr : int
        Address of the command list (``CMD_ADDR``).
    y_addr, y_len : int
        The output window (``Y_ADDR``/``Y_LEN``): ``y`` as ``[K][Ho][Wo]`` int8.
    shape : (K, Ho, Wo)
    load_bytes, store_bytes : int
        DRAM bytes the LOAD commands read and the STORE commands write.
    """

    config: AccelConfig
    plan: object = field(repr=False)
    regions: dict = field(repr=False)
    commands: list = field(repr=False)
    cmd_addr: int
    y_addr: int
    y_len: int
    shape: tuple
    load_bytes: int
    store_bytes: int

    @property
    def cmd_bytes(self):
        """The encoded command list."""
        return b"".join(encode(c) for c in self.commands)

    @property
    def cmd_len(self):
        return len(self.commands) * COMMAND_BYTES

    @property
    def end_addr(self):
        """First byte after every region (output window included)."""
        ends = [a + len(b) for a, b in self.regions.values()] + [self.y_addr + self.y_len]
        return max(ends)

    def image(self):
        """``[(address, bytes)]`` the host writes to DRAM before starting the layer."""
        return sorted(self.regions.values(), key=lambda r: r[0])

    def decode_y(self, data):
        """``y`` ``[K, Ho, Wo]`` int8 from the ``y_len`` bytes read at ``y_addr``."""
        if len(data) != self.y_len:
            raise ValueError(f"output bytes must be {self.y_len} long, not {len(data)}")
        return np.frombuffer(bytes(data), dtype=np.int8).reshape(self.shape).copy()


def _layer_arrays(layer):
    if not isinstance(layer, dict):
        raise TypeError(f"layer must be a dict of vectors or gated_conv arrays, "
                        f"not {type(layer).__name__}")
    missing = [k for k in INPUT_KEYS if k not in layer and k != "thr"]
    if missing:
        raise ValueError(f"layer must have keys {', '.join(missing)}, not lack them")
    out = {k: layer[k] for k in INPUT_KEYS + OPTIONAL_KEYS if k in layer}
    out.setdefault("thr", None)
    for key in ("stride", "pad", "groups"):
        out[key] = int(out[key])
    out["relu"] = bool(out["relu"])
    return out


def _words_table(tensor, width, rows):
    """Pack ``tensor[..., C]`` along the last axis into ``ceil(C/rows)`` words per position.

    Returns ``(bytes, item_log2)`` with each word little-endian in a power-of-two byte count.
    """
    lead = tensor.shape[:-1]
    C = tensor.shape[-1]
    CW = _ceil_div(C, rows)
    padded = np.zeros(lead + (CW * rows,), dtype=np.int64)
    padded[..., :C] = tensor
    lanes = padded.reshape(lead + (CW, rows)) & ((1 << width) - 1)
    log2 = _item_log2(rows * width)
    nbytes = 1 << log2
    if width % 8 == 0:
        # Byte-aligned lanes: the packed word is the lanes' little-endian bytes, zero padded.
        dt = {1: "<u1", 2: "<u2"}[width // 8]
        words = lanes.astype(dt).view(np.uint8).reshape(-1, rows * width // 8)
        padded = np.zeros((words.shape[0], nbytes), dtype=np.uint8)
        padded[:, :words.shape[1]] = words
        return padded.tobytes(), log2
    flat = lanes.reshape(-1, rows)
    out = bytearray()
    for lane_vals in flat:
        word = 0
        for lane, v in enumerate(lane_vals):
            word |= int(v) << (lane * width)
        out += word.to_bytes(nbytes, "little")
    return bytes(out), log2


def _work_list(C, rows, groups, imask):
    """Per-group ``(base entries, conditional entries)`` of ``(word, lane mask)``, as the engine's
    work list orders them (base path = the group's own channels, FBS-masked channels dropped)."""
    im = np.ones(C, bool) if imask is None else np.asarray(imask).astype(bool)
    gated = groups > 1
    cg = C // groups

    def entries(chans):
        words = {}
        for c in chans:
            words[c // rows] = words.get(c // rows, 0) | 1 << (c % rows)
        return sorted(words.items())

    out = []
    for g in range(groups):
        own = [c for c in range(g * cg, (g + 1) * cg) if im[c]]
        if gated:
            other = [c for c in range(C) if im[c] and not g * cg <= c < (g + 1) * cg]
            out.append((entries(own), entries(other)))
        else:
            out.append((entries([c for c in range(C) if im[c]]), []))
    return out


def compile_layer(config, layer, *, base_addr=0x10000, k_tile=None, band_rows=None,
                  double_out=False, split="auto", min_tiles=1, wide="auto",
                  region_align=REGION_ALIGN):
    """Compile one layer into a DRAM image and a command list.

    Parameters
    ----------
    config : AccelConfig
    layer : dict
        A vectors dict (:func:`cgaccel.model.vectors.load_vectors`; ``gate``/``y`` are ignored)
        or the keyword arguments of :func:`cgaccel.model.layer.gated_conv`.
    base_addr : int
        First DRAM byte the layer may use (a multiple of ``region_align``).
    region_align : int
        Alignment of each DRAM region (command list, tensors, tables, output window): a power
        of two of at least 32 (``CMD_ADDR``'s alignment) and the AXI bus width in bytes. The
        default, 4096, starts every region on a page; a small board RAM wants them packed.
    k_tile, band_rows : int, optional
        Tiling overrides passed to :func:`~cgaccel.engine.tiling.plan_layer`.
    double_out : bool
        Double-buffered output bank (``plan_layer``'s option, tile command ``obuf``): tile
        ``t+1`` may start before tile ``t`` is written back, so the write-back of a tile moves
        one tile later in the list.
    split : {"channel", "pixel", "deal", "auto"}
        How tiles deal work to columns (``plan_layer``'s option): with ``"pixel"`` weights and
        parameters are broadcast and every column's pixel chunk is stored by its own STORE;
        with ``"deal"`` (dealt pixels) likewise broadcast, and each tile is stored by one
        ``deal`` STORE (and its residuals preloaded by one ``deal`` LOAD).
    min_tiles : int
        ``plan_layer``'s option: cut a layer that fits fewer tiles into more row bands. With
        ``double_out`` more tiles hide more of the loads and the write-back behind
        computation, but each buffer half then needs its own copy of the weights; the
        end-to-end model (:mod:`cgaccel.bench.e2e_model`) predicts which wins per layer
        (``docs/bench.md``).
    wide : {"auto", True, False}
        ``plan_layer``'s option: bands that span both activation halves (tile command
        ``wide``). A wide band's LOAD is cut where its buffer addresses cross into the
        second half (at most three LOADs per band instead of one).

    Returns
    -------
    CompiledLayer

    Raises
    ------
    TypeError, ValueError
        Bad arguments, a layer the configuration cannot map (from ``plan_layer``), or an image
        that does not fit the AXI address space.
    """
    if not isinstance(config, AccelConfig):
        raise TypeError(f"config must be an AccelConfig, not {config!r}")
    if not isinstance(base_addr, int) or isinstance(base_addr, bool):
        raise TypeError(f"base_addr must be an integer, not {base_addr!r}")
    lo = max(COMMAND_BYTES, config.axi_bytes)
    if (not isinstance(region_align, int) or isinstance(region_align, bool)
            or region_align < lo or region_align & (region_align - 1)):
        raise ValueError(f"region_align must be a power of two of at least {lo}, "
                         f"not {region_align!r}")
    if base_addr < 0 or base_addr % region_align:
        raise ValueError(f"base_addr must be a non-negative multiple of {region_align}, "
                         f"not {base_addr:#x}")
    args = _layer_arrays(layer)
    plan = plan_layer(config, **args, k_tile=k_tile, band_rows=band_rows,
                      double_out=double_out, split=split, min_tiles=min_tiles, wide=wide)
    if plan.folded:
        # A few-channel layer runs as a 1x1 layer on its im2col input, which the host lays out.
        x_, w_, st_, pad_, _ = fold_taps(config, np.asarray(args["x"]), np.asarray(args["w"]),
                                         args["stride"], args["pad"], args["groups"],
                                         args.get("imask"))
        args.update(x=x_, w=w_, stride=st_, pad=pad_)
    geo = Geometry(config)
    rows = config.rows
    x, w = np.asarray(args["x"]), np.asarray(args["w"])
    C, H, W = x.shape
    K, _, R, S = w.shape
    _, Ho, Wo = plan.shape
    CW = _ceil_div(C, rows)
    RS = R * S
    groups = args["groups"]
    gated = groups > 1
    kg = K // groups

    # Region contents -------------------------------------------------------------------------
    act, act_log2 = _words_table(x.astype(np.int64).transpose(1, 2, 0), config.act_width,
                                 rows)                               # [H][W][CW] words
    # [H][W][CW] words -> [CW][H][W] words.
    act_item = 1 << act_log2
    act = np.frombuffer(act, dtype=np.uint8).reshape(H, W, CW, act_item).transpose(2, 0, 1, 3)
    # Column strips (a band row wider than a buffer half): each distinct band of them is
    # also stored as its own [CW][hb][wb] block, so that a tile's band is one LOAD (one
    # transfer when its planes fill ``plane``) instead of CW LOADs of hb transfers of wb
    # words: command and
    # transfer overhead bounded the ImageNet 7x7 layers (docs/bench.md). DRAM traffic is
    # the same; only the image grows.
    sub = plan.subsample

    def band_key(t):
        cmd = t.cmd
        return (t.oy0 * cmd["stride"] - args["pad"] - cmd["iy_base"], cmd["hb"],
                t.ox0 * cmd["stride"] - args["pad"] + cmd["pad_l"], cmd["w"])

    band_off, xs = {}, []
    for key in sorted({band_key(t) for t in plan.tiles if sub == 1 and t.cmd["w"] != W}):
        y0, hb, x0, wb = key
        band_off[key] = sum(len(b) for b in xs)
        xs.append(np.ascontiguousarray(act[:, y0:y0 + hb, x0:x0 + wb]).tobytes())
    xs = b"".join(xs)
    act = act.tobytes()
    wgt, wgt_log2 = _words_table(w.astype(np.int64).transpose(0, 2, 3, 1),
                                 config.weight_width, rows)          # [K][R][S][CW] words
    wgt_item = 1 << wgt_log2

    def int32_table(vals):
        return (np.asarray(vals, dtype=np.int64) & 0xFFFFFFFF).astype("<u4").tobytes()

    bias = int32_table(args["bias"])
    # Dense layers: the engine is given threshold 0 (unused), as plan_layer does.
    thr = int32_table(args["thr"] if gated and args["thr"] is not None else np.zeros(K))
    mult = int32_table(args["mult"])

    seg = _work_list(C, rows, groups, args.get("imask"))
    seg_pos, pos = [], 0
    for b, c in seg:
        seg_pos.append((pos, pos + len(b), pos + len(b) + len(c)))
        pos += len(b) + len(c)
    om = np.ones(K, bool) if args.get("omask") is None else np.asarray(args["omask"]).astype(bool)
    cfg_log2 = _item_log2(geo.cfg_width)
    cfg = b"".join(geo.pack_cfg(int(args["shift"][k]), bool(om[k]), *seg_pos[k // kg])
                   .to_bytes(1 << cfg_log2, "little") for k in range(K))
    list_log2 = _item_log2(geo.list_width)
    # One work list for every band: entries hold the word-plane offset cw * plane.
    plane = plan.plane
    work_list = b"".join(geo.pack_list(cw * plane, cw, mask).to_bytes(1 << list_log2, "little")
                         for b, c in seg for cw, mask in b + c)
    has_res = args.get("res") is not None
    res = np.asarray(args["res"]).astype(np.int8).tobytes() if has_res else b""
    # With a double-buffered output bank each tile owns the half ``bank`` (address MSB).
    out_half = config.out_depth // 2 if double_out else 0

    def out_parts(t):
        """Output transfers of a tile: ``(col, chan, deal, buf_addr, buf_stride, inner, dram
        offset)`` for ``outer = kt`` channels (``y`` and ``res`` are ``[K][Ho][Wo]``)."""
        wo = Wo if t.wo is None else t.wo
        P = t.ho * wo
        off = t.k0 * Ho * Wo + t.oy0 * Wo + t.ox0
        base = t.bank * out_half
        if wo != Wo:    # a column strip: its rows are not contiguous in DRAM
            return [(0, 1, 0, base + oy * wo, P, wo, off + oy * Wo) for oy in range(t.ho)]
        if not t.cmd["psplit"]:
            return [(0, 1, 0, base, P, P, off)]
        pc = t.cmd["pc"]
        if t.cmd["pdeal"]:
            # Dealt pixels: byte p of channel i is column p % cols's at i*pc + p // cols,
            # so one dealt transfer per channel covers the tile's contiguous bytes.
            return [(0, 0, 1, base, pc, P, off)]
        return [(j, 0, 0, base, n, n, off + j * pc) for j in range(config.cols)
                if (n := min(P, j * pc + pc) - j * pc) > 0]

    def load(target, bank, log2, inner, outer, dram, dram_stride, buf_stride, *, chan=False,
             deal=False, buf_addr=0):
        return Command(op=Op.LOAD, target=int(target), bcast=int(not (chan or deal)),
                       bank=bank, chan=int(chan), deal=int(deal), item_log2=log2, col=0,
                       buf_addr=buf_addr,
                       buf_stride=buf_stride, inner=inner, outer=outer, dram=dram,
                       dram_stride=dram_stride)

    def act_loads(t, place):
        if not t.wide:
            return band_loads(t, place)
        # A wide band's word ``a`` is in half ``a >> act_bits``: cut each LOAD where its
        # buffer addresses cross into the second half (iterations wholly in one half stay
        # together, a straddling iteration is split in two).
        depth = config.act_depth
        out = []
        for c in band_loads(t, place):
            item = 1 << c.item_log2
            runs = []       # [half, first iteration, count] or (half, n, m0, m1) pieces
            for n in range(c.outer):
                lo = c.buf_addr + n * c.buf_stride
                hi = lo + c.inner - 1
                if lo // depth == hi // depth:
                    h = lo // depth
                    if runs and isinstance(runs[-1], list) and runs[-1][0] == h:
                        runs[-1][2] += 1
                    else:
                        runs.append([h, n, 1])
                else:
                    cut = depth - lo
                    runs += [(0, n, 0, cut), (1, n, cut, c.inner)]
            for r in runs:
                if isinstance(r, list):
                    h, n0, cnt = r
                    out.append(dataclasses.replace(
                        c, bank=h, buf_addr=c.buf_addr + n0 * c.buf_stride - h * depth,
                        outer=cnt, dram=c.dram + n0 * c.dram_stride))
                else:
                    h, n, m0, m1 = r
                    out.append(dataclasses.replace(
                        c, bank=h, buf_addr=c.buf_addr + n * c.buf_stride + m0 - h * depth,
                        inner=m1 - m0, outer=1, buf_stride=0,
                        dram=c.dram + n * c.dram_stride + m0 * item, dram_stride=0))
        return out

    def band_loads(t, place):
        cmd = t.cmd
        hb, bank, wb = cmd["hb"], t.bank, cmd["w"]
        # First input row and column of the band (the tile command keeps them relative).
        y0 = t.oy0 * cmd["stride"] - args["pad"] - cmd["iy_base"]
        x0 = t.ox0 * cmd["stride"] - args["pad"] + cmd["pad_l"]
        if sub == 1 and wb == W:
            return [load(Target.ACT, bank, act_log2, hb * W, CW, place["x"] + y0 * W * act_item,
                         H * W * act_item, plane)]
        if sub == 1:    # a column strip, from its band's own block
            if hb * wb == plane:    # planes back to back: one transfer
                return [load(Target.ACT, bank, act_log2, CW * plane, 1,
                             place["xs"] + band_off[band_key(t)], 0, 0)]
            return [load(Target.ACT, bank, act_log2, hb * wb, CW,
                         place["xs"] + band_off[band_key(t)], hb * wb * act_item, plane)]
        # Strided 1x1 layer: gather every sub-th pixel of every sub-th row, one item each.
        return [load(Target.ACT, bank, act_log2, 1, wb,
                     place["x"] + ((cw * H + (y0 + iy) * sub) * W + x0 * sub) * act_item,
                     sub * act_item, 1, buf_addr=cw * plane + iy * wb)
                for cw in range(CW) for iy in range(hb)]

    def tile_loads(t, place):
        cmd = t.cmd
        bank = t.bank
        k0, kt = t.k0, t.kt
        nlist = len(work_list) >> list_log2
        # Channels are dealt to columns, or broadcast to all of them with a pixel split.
        dealt = not cmd["psplit"]
        # A buffer half keeps what its previous tile loaded (TilePlan.load_act/load_wgt/
        # load_list).
        acts = act_loads(t, place) if t.load_act else []
        if t.load_list:
            acts.append(load(Target.LIST, bank, list_log2, nlist, 1, place["list"], 0, 0))
        # Dealt channels: one transfer per channel to its column. Broadcast (pixel split):
        # the kt channels' weights are contiguous in DRAM and in the buffer, one transfer.
        wgts = [
            load(Target.WGT, bank, wgt_log2, RS * CW, kt, place["w"] + k0 * RS * CW * wgt_item,
                 RS * CW * wgt_item, RS * CW, chan=True) if dealt else
            load(Target.WGT, bank, wgt_log2, kt * RS * CW, 1,
                 place["w"] + k0 * RS * CW * wgt_item, 0, 0),
        ] + [
            # One item per channel, one transfer of kt items. Dealt: item n to column n % cols
            # at slot n // cols as the weights (``deal``); a pixel split broadcasts channel n
            # to slot n of every column.
            load(target, bank, log2, kt, 1, place[name] + (k0 << log2), 0, 1, deal=dealt)
            for target, name, log2 in ((Target.BIAS, "bias", 2), (Target.THR, "thr", 2),
                                       (Target.MULT, "mult", 2),
                                       (Target.CFG, "cfg", cfg_log2))
        ]
        wgts = wgts if t.load_wgt else []
        if t.wide:
            # The band waits for the previous band's tiles (the engine holds activation
            # writes while a wide tile runs); the rest goes to this tile's free half first.
            return ([c for c in acts if c.target != Target.ACT] + wgts
                    + [c for c in acts if c.target == Target.ACT])
        return acts + wgts

    def res_loads(t, place):
        return [Command(op=Op.LOAD, target=int(Target.OUT), bank=t.bank, chan=chan, col=col,
                        deal=deal, buf_addr=addr, buf_stride=stride, inner=inner, outer=t.kt,
                        dram=place["res"] + off, dram_stride=Ho * Wo)
                for col, chan, deal, addr, stride, inner, off in out_parts(t)]

    def stores(t, y_addr):
        return [Command(op=Op.STORE, chan=chan, col=col, deal=deal, buf_addr=addr,
                        buf_stride=stride, inner=inner, outer=t.kt, dram=y_addr + off,
                        dram_stride=Ho * Wo)
                for col, chan, deal, addr, stride, inner, off in out_parts(t)]

    def build(place, y_addr):
        # Loads of tile t+1 go to the other bank while tile t runs. The residual preload and
        # the RUN of tile t+1 overwrite the output bank (half) of tile t (t-1 with a
        # double-buffered output bank), so that tile's STOREs must come first; the engine
        # holds a STORE until its tile is done.
        back = 2 if double_out else 1
        commands = []
        tiles = plan.tiles
        for n, t in enumerate(tiles):
            commands += tile_loads(t, place)
            if n >= back:
                commands += stores(tiles[n - back], y_addr)
            if has_res:
                commands += res_loads(t, place)
            commands.append(Command(op=Op.RUN, tile=pack_tile(config, t.cmd)))
        for t in tiles[max(0, len(tiles) - back):]:
            commands += stores(t, y_addr)
        commands.append(Command(op=Op.END))
        return commands

    # Region placement: the command list comes first, so count its commands once.
    names = ["commands", "x", "xs", "w", "bias", "thr", "mult", "cfg", "list"]
    n_cmds = len(build(dict.fromkeys(names + ["res"], 0), 0))
    contents = [("commands", b"\0" * (n_cmds * COMMAND_BYTES)), ("x", act), ("w", wgt),
                ("bias", bias), ("thr", thr), ("mult", mult), ("cfg", cfg)]
    if xs:
        contents.insert(2, ("xs", xs))
    contents.append(("list", work_list))
    if has_res:
        contents.append(("res", res))
    addr = base_addr
    place = {}
    for name, data in contents:
        place[name] = addr
        addr = _align(addr + max(1, len(data)), region_align)
    y_addr, y_len = addr, K * Ho * Wo
    end = y_addr + y_len
    if end > 1 << config.axi_addr_width:
        raise ValueError(f"layer image must fit the {config.axi_addr_width}-bit address space, "
                         f"not end at {end:#x}")
    commands = build(place, y_addr)
    assert len(commands) == n_cmds
    contents[0] = ("commands", b"".join(encode(c) for c in commands))

    regions = {name: (place[name], data) for name, data in contents if data}
    load_bytes = sum(c.outer * (c.inner << c.item_log2) for c in commands if c.op == Op.LOAD)
    store_bytes = sum(c.outer * c.inner for c in commands if c.op == Op.STORE)
    return CompiledLayer(config=config, plan=plan, regions=regions, commands=commands,
                         cmd_addr=place["commands"], y_addr=y_addr, y_len=y_len,
                         shape=(K, Ho, Wo), load_bytes=load_bytes, store_bytes=store_bytes)


# Driver ------------------------------------------------------------------------------------------

class DriverError(RuntimeError):
    """Base of every error the driver raises about the hardware."""


class HardwareMismatch(DriverError):
    """ID, VERSION or HWCFG registers do not match the configuration the driver was given."""


class AcceleratorError(DriverError):
    """The accelerator stopped a layer with an error status.

    Members
    -------
    code : int
        ``ERROR.code``.
    name : str
        Its name in :data:`cgaccel.regs.ERRORS` (``"unknown"`` if not listed).
    counters : dict
        Counter values read after the error.
    """

    def __init__(self, code, counters=None):
        self.code = code
        self.name = ERROR_NAMES.get(code, "unknown")
        self.counters = counters or {}
        super().__init__(f"accelerator stopped with error {code} ({self.name})")


class AcceleratorTimeout(DriverError):
    """The layer did not finish within the driver's poll limit."""


@dataclass
class LayerRun:
    """Result of :meth:`Driver.run_layer`.

    Members
    -------
    y : ndarray [K, Ho, Wo] int8
    counters : dict
        Every 64-bit counter of :func:`cgaccel.regs.counter_names`, lower-case names.
    cycles : int
        The ``CYCLES`` counter.
    error : int
        ``ERROR.code`` (0: :meth:`Driver.run_layer` raises on any other value).
    compiled : CompiledLayer
    polls : int
        STATUS reads until done.
    """

    y: np.ndarray
    counters: dict
    cycles: int
    error: int
    compiled: CompiledLayer = field(repr=False)
    polls: int = 0


def check_driver_args(config, buses, max_polls, fill):
    """The checks a driver's constructor makes: ``buses`` maps names to objects that must have
    ``read()`` and ``write()`` methods."""
    if not isinstance(config, AccelConfig):
        raise TypeError(f"config must be an AccelConfig, not {config!r}")
    for name, obj in buses.items():
        for meth in ("read", "write"):
            if not callable(getattr(obj, meth, None)):
                raise TypeError(f"{name} must have a {meth}() method, not {obj!r}")
    if not isinstance(max_polls, int) or max_polls < 1:
        raise ValueError(f"max_polls must be a positive integer, not {max_polls!r}")
    if not isinstance(fill, int) or not 0 <= fill <= 255:
        raise ValueError(f"fill must be a byte value 0..255, not {fill!r}")


async def check_version_and_hwcfg(read, config):
    """VERSION (same major, at least this minor) and HWCFG0/1 against ``config``, through
    ``await read(name)``; both register maps have them.

    Raises
    ------
    HardwareMismatch
    """
    version = await read("VERSION")
    if version >> 16 != VERSION >> 16:
        raise HardwareMismatch(f"VERSION major must be {VERSION >> 16}, not {version >> 16}")
    if version & 0xFFFF < VERSION & 0xFFFF:
        raise HardwareMismatch(f"VERSION minor must be at least {VERSION & 0xFFFF}, "
                               f"not {version & 0xFFFF}")
    for name, want in hwcfg_values(config).items():
        got = await read(name)
        if got != want:
            raise HardwareMismatch(f"{name} must be {want:#010x} for this configuration, "
                                   f"not {got:#010x}")


async def _maybe_await(value):
    if inspect.isawaitable(value):
        return await value
    return value


class Driver:
    """Runs compiled layers on one accelerator.

    Parameters
    ----------
    config : AccelConfig
        The configuration the hardware was generated with (checked against ``HWCFG``).
    regs : object
        ``async read(offset) -> int`` and ``async write(offset, value)``.
    mem : object
        ``write(addr, data)`` and ``read(addr, n) -> bytes`` (plain or coroutine functions).
    base_addr : int
        Where layers are placed in DRAM (see :func:`compile_layer`).
    wait : coroutine function, optional
        Awaited between STATUS polls (e.g. some clock cycles in a simulation); by default
        ``asyncio.sleep(0)``.
    max_polls : int
        STATUS reads before :class:`AcceleratorTimeout`.
    fill : int
        Byte written over the output window before a layer, so that a store the hardware never
        made cannot pass as a result.
    """

    def __init__(self, config, regs, mem, *, base_addr=0x10000, wait=None, max_polls=100000,
                 fill=0xA5):
        check_driver_args(config, {"regs": regs, "mem": mem}, max_polls, fill)
        self.config = config
        self.regs = regs
        self.mem = mem
        self.base_addr = base_addr
        self.wait = wait
        self.max_polls = max_polls
        self.fill = fill

    async def read(self, name):
        return int(await self.regs.read(REG[name]))

    async def write(self, name, value):
        await self.regs.write(REG[name], int(value) & 0xFFFFFFFF)

    async def check_hardware(self):
        """Check ID, VERSION (same major, at least this minor: the commands the driver emits
        exist) and HWCFG0/1 against the configuration.

        Raises
        ------
        HardwareMismatch
        """
        ident = await self.read("ID")
        if ident != MAGIC:
            raise HardwareMismatch(f"ID must be {MAGIC:#010x}, not {ident:#010x}")
        await check_version_and_hwcfg(self.read, self.config)

    async def read_counters(self):
        """Every counter (``_LO`` first: it latches ``_HI``), lower-case names. Counters of
        ``config.counter_width`` bits read 0 above it, so one read serves every width."""
        out = {}
        for name in counter_names():
            lo = await self.read(f"{name}_LO")
            hi = await self.read(f"{name}_HI")
            out[name.lower()] = lo | hi << 32
        return out

    async def soft_reset(self):
        """Abort any layer and return to idle with a clear status."""
        await self.write("CTRL", 2)

    async def load(self, compiled):
        """Write the image, the command list and the poisoned output window to DRAM."""
        for addr, data in compiled.image():
            await _maybe_await(self.mem.write(addr, data))
        await _maybe_await(self.mem.write(compiled.y_addr, bytes([self.fill]) * compiled.y_len))

    async def start(self, compiled, *, irq=True):
        """Program the descriptor registers and pulse ``CTRL.start``.

        Raises
        ------
        DriverError
            The accelerator is still busy with a layer (a start would be refused).
        """
        status = await self.read("STATUS")
        if status & 1:
            raise DriverError(f"accelerator must be idle to start a layer, not busy "
                              f"(STATUS {status:#x}); soft_reset() aborts the running layer")
        await self.write("CMD_ADDR_LO", compiled.cmd_addr)
        await self.write("CMD_ADDR_HI", compiled.cmd_addr >> 32)
        await self.write("CMD_LEN", compiled.cmd_len)
        await self.write("Y_ADDR_LO", compiled.y_addr)
        await self.write("Y_ADDR_HI", compiled.y_addr >> 32)
        await self.write("Y_LEN", compiled.y_len)
        await self.write("IRQ", 1)
        await self.write("IRQ_EN", int(irq))
        await self.write("CTRL", 1)

    async def wait_done(self):
        """Poll STATUS until done or error; return ``(ERROR.code, polls)``.

        Raises
        ------
        AcceleratorTimeout
            STATUS never showed done within ``max_polls`` reads.
        """
        for polls in range(1, self.max_polls + 1):
            status = await self.read("STATUS")
            # Finished: done, or an error with the layer no longer busy (an error flag seen
            # while the hardware still drains is not the end yet).
            if status & 0b010 or (status & 0b100 and not status & 0b001):
                code = await self.read("ERROR")
                await self.write("IRQ", 1)
                if status & 0b100 and code == 0:
                    code = -1   # error flag without a code: still an error
                return code, polls
            if self.wait is not None:
                await self.wait()
            else:
                await asyncio.sleep(0)
        raise AcceleratorTimeout(f"layer must finish within {self.max_polls} STATUS polls, "
                                 f"not stay busy (STATUS {status:#x})")

    async def run_compiled(self, compiled, *, check=True):
        """Run an already compiled layer; see :meth:`run_layer`."""
        if check:
            await self.check_hardware()
        await self.load(compiled)
        await self.start(compiled)
        code, polls = await self.wait_done()
        counters = await self.read_counters()
        if code:
            raise AcceleratorError(code, counters)
        data = await _maybe_await(self.mem.read(compiled.y_addr, compiled.y_len))
        return LayerRun(y=compiled.decode_y(data), counters=counters, cycles=counters["cycles"],
                        error=code, compiled=compiled, polls=polls)

    async def run_layer(self, vectors, *, k_tile=None, band_rows=None, double_out=False,
                        split="auto", wide="auto"):
        """Compile ``vectors`` (tiling options as :func:`compile_layer`), run the layer and read
        ``y`` back.

        Raises
        ------
        HardwareMismatch
            The hardware is not the configuration given.
        AcceleratorError
            The layer stopped with an error status (code and name in the exception).
        AcceleratorTimeout
            The layer did not finish in time.
        """
        compiled = compile_layer(self.config, vectors, base_addr=self.base_addr, k_tile=k_tile,
                                 band_rows=band_rows, double_out=double_out, split=split,
                                 wide=wide)
        return await self.run_compiled(compiled)
