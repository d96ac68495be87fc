"""Host-side tiling: turn one layer (golden-model arrays) into engine transactions.

:func:`plan_layer` splits a layer into tiles (output-channel tiles of ``kt`` channels times
output-row bands) that fit the engine's buffers, and for every tile lists the buffer writes
(:class:`~cgaccel.engine.geometry.Target`), the tile command and the write-back reads with the
output element each read returns. The same code drives the RTL in the simulator
(:mod:`cgaccel.engine.sim`) and, later, the DMA front end.

Buffer layouts (per column, within the bank half given by the tile's ``bank``):

* activations: ``addr = cw * plane + iy * W + ix`` holding channels ``cw*rows .. +rows-1`` of
  band row ``iy`` (input row ``y0 + iy``), column ``ix``, where ``plane`` is the largest
  band's ``Hb * W`` (``LayerPlan.plane``); broadcast to every column;
* weights: column ``j``'s local channel ``i`` (``k = k0 + j + cols*i``) at
  ``addr = (i * R*S + r*S + s) * CW + cw``;
* work list (broadcast): for every group ``g``, its base-path words then its conditional-path
  words; an entry is ``(cw * plane, cw, lane mask)``; FBS-masked input channels are cleared
  from the lane masks and words left with no lane are not listed at all;
* parameters: bias, thr, mult and ``cfg = {shift, omask, list start/mid/end}`` at ``i``;
* output bank: ``addr = i * P + p`` with ``p = oy * Wo + ox`` within the tile, or with
  ``double_out`` ``bank * out_depth/2 + i * P + p`` (one half per tile); residuals are
  preloaded there by ``OUT`` writes and the write-back reads ``(col, addr)``. Pixel splits
  place them differently (:func:`output_places`).

The engine does not split the input-channel reduction: a whole ``C`` must fit a column's
buffers. :func:`plan_layer` raises ValueError when it cannot.
"""

import math
from dataclasses import dataclass, field

import numpy as np

from .geometry import Geometry, Target

__all__ = ["TilePlan", "LayerPlan", "plan_layer", "valid_taps", "expected_counts",
           "output_places", "choose_split", "fold_taps", "SPLITS", "WIDES", "WIDE_MIN_KTILES"]


def _ceil_div(a, b):
    return -(-a // b)


@dataclass
class TilePlan:
    """One tile: its buffer writes, its command and its write-back reads.

    Members
    -------
    bank : int
    cmd : dict
        Tile-command fields (``Geometry.tile_layout``).
    writes : list of tuple
        ``(target, col, bcast, bank, addr, data)`` for ACT/WGT/LIST/BIAS/THR/MULT/CFG.
    out_writes : list of tuple
        Residual preloads (``Target.OUT``) into output half ``bank``; must follow the
        write-back of the previous tile that used the same half.
    reads : list of (col, addr)
        Write-back reads (output half ``bank``, in the address MSB).
    dest : ndarray [n, 3]
        ``(k, oy, ox)`` of the output element returned by each read.
    k0, kt, oy0, ho, ox0, wo : int
        Output channels ``[k0, k0+kt)``, output rows ``[oy0, oy0+ho)`` and output columns
        ``[ox0, ox0+wo)`` of the tile (all of them unless the layer is tiled in width).
    load_act, load_wgt, load_list : bool
        False when the tile's buffer half still holds its activation band / its channels'
        weights and parameters / the work list of its band size from the half's previous tile:
        ``writes`` then leaves them out (``plan_layer`` orders tiles so that the larger of
        activations and weights is reused). A ``wide`` tile's band is in both halves, so
        ``load_act`` compares with the previous tile.
    wide : bool
        Tile command ``wide``: the band spans both activation halves (see :func:`plan_layer`).
    """

    bank: int
    cmd: dict
    writes: list
    out_writes: list
    reads: list
    dest: np.ndarray
    k0: int
    kt: int
    oy0: int
    ho: int
    ox0: int = 0
    wo: int = None
    load_act: bool = True
    load_wgt: bool = True
    load_list: bool = True
    wide: bool = False


@dataclass
class LayerPlan:
    """A tiled layer.

    Members
    -------
    tiles : list of TilePlan
    shape : (K, Ho, Wo)
    segments : list of (base_words, cond_words) per output channel (list entries per tap)
    taps : ndarray [Ho, Wo]
        Valid (non-padding) taps of every output pixel.
    gated : bool
    omask : ndarray [K] of bool
    subsample : int
        A strided 1x1 layer (no padding) is planned on ``x[:, ::s, ::s]`` at stride 1: its
        bands hold input rows ``y0*s, (y0+1)*s, ...``, columns ``0, s, 2s, ...`` (``s`` here,
        1 otherwise).
    folded : bool
        The layer's taps were folded into its channels (:func:`fold_taps`): the plan is the
        1x1 layer on the im2col input.
    plane : int
        Activation words per word plane in a buffer half (``cw * plane + iy * w + ix``): the
        largest band's ``hb * w``, so that one work list serves every band of the layer.
    wide : bool
        The tiles are ``wide`` (their bands span both activation halves).
    """

    tiles: list
    shape: tuple
    segments: list = field(repr=False)
    taps: np.ndarray = field(repr=False)
    gated: bool = False
    omask: np.ndarray = field(default=None, repr=False)
    subsample: int = 1
    folded: bool = False
    plane: int = 0
    wide: bool = False

    def assemble(self, values):
        """Place the write-back values (one list per tile, in read order) into ``y``."""
        y = np.zeros(self.shape, dtype=np.int8)
        for tile, vals in zip(self.tiles, values, strict=True):
            d = tile.dest
            y[d[:, 0], d[:, 1], d[:, 2]] = np.asarray(vals, dtype=np.int64).astype(np.int8)
        return y


def valid_taps(H, W, R, S, stride, pad):
    """Kernel taps of every output pixel that fall inside the image (not on padding)."""
    Ho = (H + 2 * pad - R) // stride + 1
    Wo = (W + 2 * pad - S) // stride + 1
    ys = np.arange(Ho)[:, None] * stride - pad + np.arange(R)[None, :]
    xs = np.arange(Wo)[:, None] * stride - pad + np.arange(S)[None, :]
    ny = ((ys >= 0) & (ys < H)).sum(axis=1)
    nx = ((xs >= 0) & (xs < W)).sum(axis=1)
    return np.outer(ny, nx).astype(np.int64)


def expected_counts(plan, gate):
    """Words the engine must issue, conditional words it must skip and gates it must open.

    Derived from the plan's work lists and the golden model's gate map: base words for every
    unmasked item, conditional words where the gate opened, skipped words where it closed.
    Returns ``(words, skipped_words, opens)``.
    """
    K = plan.shape[0]
    words = skipped = opens = 0
    for k in range(K):
        if not plan.omask[k]:
            continue
        nb, nc = plan.segments[k]
        t = plan.taps
        if plan.gated:
            g = gate[k].astype(bool)
            words += int((t * nb).sum() + (t[g] * nc).sum())
            skipped += int((t[~g] * nc).sum())
            opens += int(g.sum())
        else:
            words += int((t * nb).sum())
    return words, skipped, opens


def fold_taps(config, x, w, stride, pad, groups=1, imask=None):
    """Fold a few-channel layer's kernel taps into its channels when that issues fewer words.

    A layer with ``C <= rows/2`` input channels (ResNet's first layer: C = 3) fills ``C`` of
    the ``rows`` lanes of every word. Laid out im2col-style (``x'[(c*R + r)*S + s, oy, ox] =
    x_padded[c, oy*stride + r, ox*stride + s]``, ``w'[k, (c*R + r)*S + s]``) it becomes a 1x1
    stride-1 layer with ``C*R*S`` channels: ``ceil(C*R*S/rows)`` words per output pixel
    instead of ``R*S*ceil(C/rows)`` (4 instead of 9 for C = 3, 3x3, 8 lanes). The host lays out
    ``x'`` in DRAM (``R*S`` times the input bytes). Dense layers without input masks only.

    Returns ``(x, w, stride, pad, folded)``.
    """
    C = x.shape[0]
    K, _, R, S = w.shape
    rows = config.rows
    if (groups != 1 or imask is not None or R * S == 1 or 2 * C > rows
            or C * R * S > config.max_channels
            or _ceil_div(C * R * S, rows) >= R * S * _ceil_div(C, rows)):
        return x, w, stride, pad, False
    H, W = x.shape[1:]
    Ho = (H + 2 * pad - R) // stride + 1
    Wo = (W + 2 * pad - S) // stride + 1
    xp = np.zeros((C, H + 2 * pad, W + 2 * pad), dtype=np.asarray(x).dtype)
    xp[:, pad:pad + H, pad:pad + W] = x
    xf = np.empty((C * R * S, Ho, Wo), dtype=xp.dtype)
    for c in range(C):
        for r in range(R):
            for s_ in range(S):
                xf[(c * R + r) * S + s_] = xp[c, r:r + stride * (Ho - 1) + 1:stride,
                                              s_:s_ + stride * (Wo - 1) + 1:stride]
    wf = np.asarray(w).reshape(K, C * R * S, 1, 1)
    return xf, wf, 1, 0, True


def output_places(kt, P, cols, pc, pixel, deal=False):
    """Where a tile's outputs live: ``(col, k, addr, p)`` in write-back order.

    ``k`` is the tile-local channel, ``p`` the tile-local output pixel and ``addr`` the
    output-bank address (without the half). Channel split: column ``k % cols`` at
    ``(k // cols) * P + p``. Pixel split: column ``j`` holds pixels ``[j*pc, j*pc + n_j)`` of
    every channel at ``k * n_j + (p - j*pc)``. Dealt pixels (``deal``, with ``pixel``):
    column ``(p - k) % cols`` holds pixel ``p`` of channel ``k`` at ``k * pc + p // cols``
    (rotated a column per channel: gates open on objects, so a fixed ``p % cols`` gives the
    columns under an object more conditional work); the write-back reads channel by channel,
    pixel by pixel (one dealt STORE per tile, outer iteration ``k``).
    """
    out = []
    if pixel and deal:
        for k in range(kt):
            out += [((p - k) % cols, k, k * pc + p // cols, p) for p in range(P)]
    elif pixel:
        for j in range(cols):
            lo = j * pc
            n = max(0, min(P, lo + pc) - lo)
            for k in range(kt):
                out += [(j, k, k * n + q, lo + q) for q in range(n)]
    else:
        for j in range(cols):
            for i, k in enumerate(range(j, kt, cols)):
                out += [(j, k, i * P + p, p) for p in range(P)]
    return out


def choose_split(config, K, Ho, Wo, groups, taps=1, band=None, kt=None, cw=None):
    """The split ``plan_layer(split="auto")`` uses: ``"pixel"``, ``"deal"`` or ``"channel"``.

    Static (the host does not know the gates), from the layer's shape: ``taps`` kernel taps
    (``R*S``), ``band`` output rows and ``kt`` output channels per tile (default: all), ``cw``
    activation words per pixel (default: unknown).

    Pixel split for dense layers whose ``K`` leaves columns without a channel and whose map
    divides more evenly over the columns (pruned layers: K=13 on 8 columns idles 19% of the
    column-cycles with a channel split, 9% with a pixel split). Gated layers never take it:
    open gates cluster in space (the object), so contiguous pixel chunks get very different
    conditional work (measured: 20-26% idle column-cycles against 1-12%).

    Dealt pixels for gated 1x1 layers where the channel split leaves the columns few
    channels to even out their gates, measured in the cycle model (G=4, 30% open gates):
    at least 8 columns with at most 16 channels each per tile (on 2 or 4 columns the dealt
    runs were within +-2% of the channel split and mostly slower; with 32 channels a column,
    ImageNet ``layer3.0.downsample``, 0.950 -> 0.955 only); at least 4 row bands (on layers
    of one or two tiles the last tile's uneven pixel chunks cost more than dealing saved);
    at least 4 pixels per column per tile, dividing over the columns to within 5%; and
    ``Wo`` not a multiple of ``cols`` (else column ``j`` gets whole output columns
    ``x = j mod cols``, where the gates cluster again: CIFAR ``layer2.0.downsample`` at half
    size, 8x8 outputs on 8 columns: gated compute 1,006 -> 1,155 cycles).
    :func:`plan_layer` also keeps the channel split unless the dealt tiles are its tiles
    (same channels per tile, same bands): dealt tiles broadcast weights and parameters, so
    they hold at most ``param_depth`` channels, and more tiles load more (ImageNet
    ``layer2.0.downsample`` with 64-entry tables: 0.911 -> 0.955 compute efficiency but
    133,476 -> 140,264 cycles start to done; with ``default``'s 128 entries its dealt tiles
    are the channel split's: 0.9505, 132,714 cycles, so it is dealt).

    ``Wo`` a multiple of ``cols`` is dealt all the same where the channel split's write-back
    (one byte a cycle) is at least its dense compute (``cols >= taps * cw``) and a dealt
    STORE reads a row of ``cols`` bytes a cycle (:attr:`Geometry.store_rows
    <cgaccel.engine.geometry.Geometry.store_rows>`): there the write-back paces the layer,
    not the gates (end-to-end model, CIFAR ``layer2.0.downsample`` at full size, 16x16
    outputs: 46,726 -> 22,338 cycles start to done for 16,114 -> 16,607 compute cycles).
    Re-evaluated with word reads (a channel-split STORE reads ``out_word`` = 4 bytes a cycle,
    :meth:`Geometry.store_step <cgaccel.engine.geometry.Geometry.store_step>`), the rule
    stands: the channel split of that layer takes 24,886 cycles start to done (gated
    compute 16,449), the dealt tiles 22,338 (16,738): both have 4 tiles, and the last
    tile's write-back (2,048 word reads against 1,024 row reads) is not hidden.
    """
    cols = config.cols
    band = Ho if band is None else band
    kt = K if kt is None else kt
    P = band * Wo
    by_channel = K / (cols * _ceil_div(K, cols))
    by_pixel = P / (cols * _ceil_div(P, cols))
    if groups > 1:
        wb_bound = (cw is not None and cols >= taps * cw
                    and Geometry(config).store_rows)
        if (config.deal and taps == 1 and cols >= 8 and _ceil_div(kt, cols) <= 16
                and _ceil_div(Ho, band) >= 4 and P >= 4 * cols and by_pixel >= 0.95
                and (math.gcd(Wo, cols) < cols or wb_bound)):
            return "deal"
        return "channel"
    if K % cols == 0 or P < cols:
        return "channel"
    return "pixel" if by_pixel > by_channel else "channel"


def _word_entries(chans, rows):
    """Group channel indices into (word, lane mask) pairs, words ascending."""
    out = {}
    for c in chans:
        out[c // rows] = out.get(c // rows, 0) | (1 << (c % rows))
    return sorted(out.items())


SPLITS = ("channel", "pixel", "deal", "auto")
WIDES = ("auto", True, False)

# ``wide="auto"`` takes wide tiles only with at least this many K tiles per band: the first
# tile of each band waits for the band's load (the previous band's tiles must all finish
# first), so that exposed load must be shared by several tiles (:func:`plan_layer`).
WIDE_MIN_KTILES = 8


def plan_layer(config, x, w, bias, thr, mult, shift, *, stride=1, pad=0, groups=1, relu=False,
               res=None, omask=None, imask=None, k_tile=None, band_rows=None,
               double_out=False, split="auto", fold=True, min_tiles=1, wide="auto"):
    """Split a layer into engine tiles.

    Parameters
    ----------
    config : AccelConfig
    x, w, bias, thr, mult, shift, stride, pad, groups, relu, res, omask, imask
        As :func:`cgaccel.model.layer.gated_conv` (not re-validated beyond what tiling needs;
        run the golden model on the same arrays to check them).
    k_tile : int, optional
        Output channels per tile (default: as many as fit).
    band_rows : int, optional
        Output rows per band (default: as many as fit).
    double_out : bool
        Double-buffer the output bank (tile command ``obuf``): each tile gets half of it, so
        columns run ahead into the next tile and write-back overlaps computation. Default
        off: every tile may use the whole output bank and runs alone.
    split : {"channel", "pixel", "deal", "auto"}
        How a tile's work is dealt to the columns. ``"channel"``: column ``j`` computes
        channels ``j, j+cols, ...`` on every pixel of the tile. ``"pixel"`` (tile command
        ``psplit``): every column computes every channel of the tile on its own chunk of
        ``pc = ceil(P/cols)`` consecutive output pixels; weights and parameters are broadcast,
        so a tile holds at most ``param_depth`` channels. Columns then share the gate-dependent
        work of every channel, which balances them on layers with few channels per column
        (or ``K`` not a multiple of ``cols``). ``"deal"`` (``psplit`` and ``pdeal``): the same,
        but column ``j`` computes pixels ``j, j+cols, j+2*cols, ...``, which spreads open
        gates that cluster in space too. ``"auto"`` picks :func:`choose_split`.
    fold : bool
        Plan a few-channel layer on its im2col input when that issues fewer words and fits
        (:func:`fold_taps`; ``LayerPlan.folded`` says so).
    min_tiles : int
        Cut the layer into at least this many tiles (more row bands) when it has the rows:
        with a double-buffered output bank only the first tile's loads and the last tile's
        write-back are then not hidden behind computation.
    wide : {"auto", True, False}
        Wide tiles (tile command ``wide``): a band spans both halves of the activation
        buffer (up to ``2 * act_depth`` words, one word plane ``hb * w`` at most
        ``act_depth``), written once and shared by the band's K tiles, which run one after
        the other (band outer, K tiles inner); weights, list and parameters stay double
        buffered. The engine holds the next band's activation writes until every tile of
        the band has finished, so that load is not hidden behind computation. ``"auto"``:
        wide where no full-width band fits one half, one fits both, the band has at least
        ``WIDE_MIN_KTILES`` K tiles to share the exposed load, and the weights reloaded for
        every band stay hidden (fewer words written than with column strips, or loads of at
        most a quarter of the dense compute cycles). Wide tiles are never dealt: ``wide=True``
        with ``split="deal"`` raises ValueError, with ``split="auto"`` it never deals, and
        ``"auto"`` keeps dealt tiles narrow.

    Returns
    -------
    LayerPlan

    Raises
    ------
    ValueError
        The layer cannot be mapped on this configuration (the message names the limit).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
    if not any(wide is v or (isinstance(v, str) and wide == v) for v in WIDES):
        raise ValueError(f"wide must be one of auto, True, False, not {wide!r}")
    if split == "deal" and not config.deal:
        raise ValueError("split must be channel, pixel or auto when the configuration has "
                         "no dealt pixels, not 'deal'")
    if split == "deal" and wide is True:
        # Dealt tiles are verified with their band in one half only; the tiler keeps the
        # two flags exclusive.
        raise ValueError("split must be channel, pixel or auto with wide=True, not 'deal'")
    geo = Geometry(config)
    rows, cols = config.rows, config.cols
    C, H, W = x.shape
    K, Cw, R, S = w.shape
    if Cw != C:
        raise ValueError(f"w must have C={C} input channels like x, not {Cw}")
    for name, val, hi in (("C", C, config.max_channels), ("K", K, config.max_channels),
                          ("R", R, config.max_kernel), ("S", S, config.max_kernel),
                          ("H", H, config.max_dim), ("W", W, config.max_dim),
                          ("stride", stride, 15), ("pad", pad, 15),
                          ("groups", groups, config.max_groups)):
        if not 1 <= val <= hi and not (name == "pad" and val == 0):
            raise ValueError(f"{name} must be between 1 and {hi} for this configuration, "
                             f"not {val}")
    if groups > 1 and not config.cgnet:
        raise ValueError(f"groups must be 1 when the configuration has no CGNet gating, "
                         f"not {groups}")
    if C % groups or K % groups:
        raise ValueError(f"groups must divide C={C} and K={K}, not {groups}")
    if (omask is not None or imask is not None) and not config.fbs:
        raise ValueError("omask/imask must be None when the configuration has no FBS, "
                         "not given")
    if fold:
        xf, wf, sf, pf, folded = fold_taps(config, x, w, stride, pad, groups, imask)
        if folded:
            try:
                plan = plan_layer(config, xf, wf, bias, thr, mult, shift, stride=sf, pad=pf,
                                  groups=groups, relu=relu, res=res, omask=omask, imask=imask,
                                  k_tile=k_tile, band_rows=band_rows, double_out=double_out,
                                  split=split, fold=False, min_tiles=min_tiles, wide=wide)
            except ValueError:
                pass    # the im2col rows do not fit the buffers: plan the layer as it is
            else:
                plan.folded = True
                return plan
    folded = False
    # A strided 1x1 convolution reads only every ``stride``-th row and column: the loader
    # gathers those and the engine runs a stride-1 convolution on them, so a band holds
    # stride**2 times more output rows and no skipped pixel is ever loaded.
    subsample = 1
    if R == S == 1 and stride > 1 and pad == 0:
        subsample, stride = stride, 1
        x = x[:, ::subsample, ::subsample]
        C, H, W = x.shape
    Ho = (H + 2 * pad - R) // stride + 1
    Wo = (W + 2 * pad - S) // stride + 1
    if Ho < 1 or Wo < 1:
        raise ValueError(f"output size must be at least 1, not {Ho}x{Wo}")
    if Wo > config.max_dim:
        raise ValueError(f"Wo must be at most {config.max_dim}, not {Wo}")
    om = np.ones(K, bool) if omask is None else np.asarray(omask).astype(bool)
    im = np.ones(C, bool) if imask is None else np.asarray(imask).astype(bool)
    gated = groups > 1
    CW = _ceil_div(C, rows)
    RS = R * S

    # Work-list segments per group (word index, lane mask), base then conditional.
    cg = C // groups
    seg_words = []
    for g in range(groups):
        base = [c for c in range(g * cg, (g + 1) * cg) if im[c]] if gated else \
            [c for c in range(C) if im[c]]
        cond = [c for c in range(C) if im[c] and not g * cg <= c < (g + 1) * cg] if gated \
            else []
        seg_words.append((_word_entries(base, rows), _word_entries(cond, rows)))
    nlist = sum(len(b) + len(c) for b, c in seg_words)
    if nlist > geo.list_depth:
        raise ValueError(f"work list must fit {geo.list_depth} entries, not {nlist}")
    kg = K // groups
    segments = [(len(seg_words[k // kg][0]), len(seg_words[k // kg][1])) for k in range(K)]

    # Tile sizes: full-width bands if any fit (most output channels first, then the tallest
    # band), else the widest column strip that does (the band then holds its halo columns).
    def band_in_rows(ho):
        return min(H, (ho - 1) * stride + R)

    def band_in_cols(wo):
        return min(W, (wo - 1) * stride + S)

    out_cap = config.out_depth // 2 if double_out else config.out_depth
    max_nk = min(config.weight_depth // (RS * CW), geo.param_depth)
    if max_nk < 1:
        raise ValueError(f"one output channel's weights ({RS * CW} words) must fit the weight "
                         f"bank ({config.weight_depth} words), not exceed it")
    auto = split == "auto"
    if auto:
        split = choose_split(config, K, Ho, Wo, groups, R * S, cw=CW)

    def pick(wo_t, pixel, wide=False):
        act_cap = 2 * config.act_depth if wide else config.act_depth
        per = 1 if pixel else cols
        nk_hi = min(max_nk, _ceil_div(K, per))
        if k_tile is not None:
            if not 1 <= k_tile <= min(K, nk_hi * per):
                raise ValueError(f"k_tile must be between 1 and {min(K, nk_hi * per)}, "
                                 f"not {k_tile}")
            nk_options = [_ceil_div(k_tile, per)]
        else:
            nk_options = range(nk_hi, 0, -1)
        for nk in nk_options:
            kt = min(K, nk * per) if k_tile is None else k_tile
            nk = _ceil_div(kt, per)
            ho = Ho
            # Outputs per channel in one column's bank.
            while ho >= 1 and (nk * (_ceil_div(ho * wo_t, cols) if pixel else ho * wo_t)
                               > out_cap
                               or CW * band_in_rows(ho) * band_in_cols(wo_t) > act_cap
                               or band_in_rows(ho) * band_in_cols(wo_t) > config.act_depth):
                ho -= 1
            if band_rows is not None:
                if not 1 <= band_rows <= ho:
                    raise ValueError(f"band_rows must be between 1 and {ho}, not {band_rows}")
                ho = band_rows
            if ho >= 1:
                return kt, ho
        return None

    def strips(wide):
        """The widest column strip that fits: ``(choice, wo)`` or ``(None, None)``."""
        for wo_t in range(Wo - 1, 0, -1):
            ch = pick(wo_t, False, wide)
            if ch is not None:
                return ch, wo_t
        return None, None

    def arrange(choice, wo_max, pixel, wide, deal=False):
        """Bands, tile order ``[(band, (k0, kt))]`` and word-plane size of a tiling."""
        kt_max, ho_max = choice
        # Even bands and strips: 28 columns as 14 + 14, not 20 + 8. A short remainder tile
        # gives each column a few items only, so open gates cannot even out between the
        # columns, and the columns run at most one tile apart (ImageNet layer2.0.conv1:
        # compute efficiency 0.949 -> 0.967 in the cycle model); the tile count is the same.
        wo_max = _ceil_div(Wo, _ceil_div(Wo, wo_max))
        if band_rows is None:
            ho_max = _ceil_div(Ho, _ceil_div(Ho, ho_max))
        if min_tiles > 1 and band_rows is None:
            # A tile's loads overlap the previous tile's compute and its write-back the next
            # one's: only the first load and the last write-back are exposed, so a layer that
            # fits one tile is still cut into a few row bands.
            others = _ceil_div(K, kt_max) * _ceil_div(Wo, wo_max)
            nb = min(Ho, _ceil_div(min_tiles, others))
            ho_max = min(ho_max, _ceil_div(Ho, nb))
        bands = []
        for oy0 in range(0, Ho, ho_max):
            ho = min(ho_max, Ho - oy0)
            y0 = max(0, oy0 * stride - pad)
            y1 = min(H, (oy0 + ho - 1) * stride - pad + R)
            for ox0 in range(0, Wo, wo_max):
                wo = min(wo_max, Wo - ox0)
                x0 = max(0, ox0 * stride - pad)
                x1 = min(W, (ox0 + wo - 1) * stride - pad + S)
                bands.append((oy0, ho, y0, y1, ox0, wo, x0, x1))
        ktiles = [(k0, min(kt_max, K - k0)) for k0 in range(0, K, kt_max)]
        # Tile order: a buffer half keeps what its previous tile (two tiles back) loaded, so
        # the loop over whichever of activations and weights is bigger goes outside: with K
        # tiles outermost, tiles n and n+2 share their weights and parameters and do not load
        # them again. Wide tiles share one band in both halves: band outer, K tiles inner.
        act_words = CW * (y1 - y0) * (x1 - x0)
        wgt_words = _ceil_div(kt_max, 1 if pixel else cols) * RS * CW
        k_outer = (not wide and len(bands) > 2 and len(ktiles) > 1
                   and wgt_words > act_words)
        order = ([(b, k) for k in ktiles for b in bands] if k_outer
                 else [(b, k) for b in bands for k in ktiles])
        if deal and not k_outer and len(ktiles) > 1 and act_words > wgt_words:
            # Dealt pixels broadcast the weights, so a tile holds at most ``param_depth``
            # channels and a band needs several channel tiles; taking the bands in pairs,
            # each pair's channel tiles inner, puts a band in the same half for all its
            # channel tiles, so it is loaded once (ImageNet layer2.0.downsample: the strided
            # band is gathered one word per transfer and took twice the loads). Every other
            # pair takes the channel tiles backwards, so its first tiles find their weights
            # still in the halves.
            order = [(b, k) for i in range(0, len(bands), 2)
                     for k in (ktiles if i % 4 == 0 else ktiles[::-1]) for b in bands[i:i + 2]]
        nrb = _ceil_div(Ho, ho_max)     # row bands; ``bands`` is row-major over strips
        if gated and not deal and not wide and len(ktiles) == 1 and nrb > 2:
            # Interleaved row bands: 0, h, 1, h+1, ... (h = half the bands), so that tiles run
            # back to back cover distant parts of the map. A channel's open gates cluster in
            # space, so a column's load in one band predicts its load in the next, and the
            # columns drift at most one tile apart: with neighbouring bands back to back the
            # busiest column stays the busiest. The loads are the same (every band is loaded
            # once, the weights twice). Cycle model, seeds 0-3 (0 is the bench's), compute
            # efficiency natural -> interleaved order: ImageNet layer1.0.conv1 0.971 -> 0.988
            # (every seed better, start to done too: 875,113 -> 867,246 cycles on seed 0),
            # layer3.0.downsample 0.960 -> 0.971 (seeds 0-5, every seed better; start to
            # done 77,258 -> 75,370 on seed 0 but about 2,000 cycles worse on seeds 1-4),
            # CIFAR layer2.0.downsample 0.954 -> 0.964 (start to done unchanged). Dealt tiles
            # mix the columns' channels already and keep their order (layer2.0.downsample:
            # 0.9505 -> 0.9494 on seed 0, mean of seeds 0-5 0.9574 -> 0.9573). The column
            # strips of a row band stay together, in order (layer1.x has two): interleaving
            # the strips one by one, the end-to-end model missed the RTL's BUSY by 0.24%
            # (sim/e2e strips_exact: 4,118 against 4,108 cycles).
            h = _ceil_div(nrb, 2)
            idx = [i for pair in zip(range(h), range(h, nrb), strict=False) for i in pair]
            idx += [h - 1] if nrb % 2 else []
            ns = len(bands) // nrb
            order = [(bands[i * ns + s], ktiles[0]) for i in idx for s in range(ns)]
        # Every band's word planes are ``plane`` words apart, so the work list (plane
        # offsets) is the same for all of them: each half loads it once.
        plane = max((y1 - y0) * (x1 - x0) for _, _, y0, y1, _, _, x0, x1 in bands)
        return order, plane

    def load_words(order, wide):
        """Activation and weight words a tile order writes (what the half reuse saves)."""
        total = 0
        for n, ((_, _, y0, y1, _, _, x0, x1), (k0, kt)) in enumerate(order):
            aprev = order[n - 1 if wide else n - 2][0] if n >= (1 if wide else 2) else None
            wprev = order[n - 2][1] if n >= 2 else None
            total += CW * (y1 - y0) * (x1 - x0) if aprev != order[n][0] else 0
            total += kt * RS * CW if wprev != (k0, kt) else 0
        return total

    if auto and gated:
        # Dealt pixels only where the tiles stay the channel split's (same channels, same
        # bands: no more loads) and their band deals evenly (see choose_split).
        split = "channel"
        by_chan = pick(Wo, False)
        # Never with wide tiles: a dealt tile reads its band from one half (the two are
        # exclusive, see above).
        if wide is not True and by_chan is not None and pick(Wo, True) == by_chan:
            ho = _ceil_div(Ho, _ceil_div(Ho, by_chan[1]))       # even bands, as below
            if min_tiles > 1 and band_rows is None:
                ho = min(ho, _ceil_div(Ho, min(Ho, _ceil_div(min_tiles,
                                                             _ceil_div(K, by_chan[0])))))
            split = choose_split(config, K, Ho, Wo, groups, R * S, band=ho, kt=by_chan[0],
                                 cw=CW)
    pixel = split in ("pixel", "deal")
    deal = split == "deal"
    choice = pick(Wo, pixel, wide is True)
    wo_max = Wo
    if wide == "auto":
        wide = False
        # Dealt pixels stay in one half (wide tiles are never dealt): such a layer takes
        # column strips below, which keep a channel split.
        if choice is None and not deal:
            # No full-width band fits a half. One that fits both beats column strips when
            # enough K tiles share it (a band boundary is a barrier that the columns cannot
            # drift across, and the band's load is exposed there) and its loads stay hidden:
            # band-outer order reloads the weights for every band, where strips, K tiles
            # outer, keep them. So wide tiles must write fewer words than strips, or load in
            # at most a quarter of the dense compute cycles (gated layers compute about half
            # of them). In the models, weight-bound ImageNet layer4.0.conv1 (loads 0.58 of
            # the dense compute) and layer3.0.conv1 (5 K tiles per band) lose 0.015-0.023
            # compute efficiency and 10% start to done with wide tiles; layer3.x.conv2 (0.15)
            # and layer4.x.conv2 (fewer words) gain.
            wchoice = pick(Wo, pixel, True)
            if wchoice is not None and _ceil_div(K, wchoice[0]) >= WIDE_MIN_KTILES:
                try:
                    nchoice, nwo = strips(False)
                except ValueError:      # band_rows too tall for any strip
                    nchoice = None
                words = load_words(arrange(wchoice, Wo, pixel, True)[0], True)
                dense = K * CW * RS * Ho * Wo / cols
                if (nchoice is None or 4 * words <= dense * config.load_lanes
                        or words < load_words(arrange(nchoice, nwo, False, False)[0], False)):
                    choice, wide = wchoice, True
    if choice is None:
        # Column strips keep a channel split: a strip's rows are not contiguous in DRAM.
        pixel = deal = False
        choice, wo_max = strips(wide)
    if choice is None:
        raise ValueError(f"a band of one output row and column ({CW * band_in_rows(1) * S} "
                         f"activation words) must fit the buffers (act_depth "
                         f"{config.act_depth}, output capacity {out_cap}), not exceed them")
    order, plane = arrange(choice, wo_max, pixel, wide, deal)
    xq = x.astype(np.int64)
    wq = w.astype(np.int64)
    taps = valid_taps(H, W, R, S, stride, pad)
    tiles = []
    for n, ((oy0, ho, y0, y1, ox0, wo, x0, x1), (k0, kt)) in enumerate(order):
        prev = tiles[n - 2] if n >= 2 else None
        # A wide band is in both halves: the previous tile's band is the one loaded.
        aprev = (tiles[n - 1] if n >= 1 else None) if wide else prev
        band = np.zeros((CW * rows, y1 - y0, x1 - x0), dtype=np.int64)
        band[:C] = xq[:, y0:y1, x0:x1]
        tiles.append(_one_tile(
            config, geo, band, wq, bias, thr, mult, shift, om, seg_words, kg, res,
            K=K, C=C, R=R, S=S, CW=CW, k0=k0, kt=kt, oy0=oy0, ho=ho, ox0=ox0, wo=wo, y0=y0,
            x0=x0, stride=stride, pad=pad, gated=gated, relu=relu, pixel=pixel,
            deal=deal, double_out=double_out, out_cap=out_cap, bank=n % 2,
            load_act=aprev is None or ((aprev.oy0, aprev.ho, aprev.ox0, aprev.wo)
                                       != (oy0, ho, ox0, wo)),
            load_wgt=prev is None or (prev.k0, prev.kt) != (k0, kt), load_list=prev is None,
            plane=plane, wide=wide))
    return LayerPlan(tiles=tiles, shape=(K, Ho, Wo), segments=segments, taps=taps,
                     gated=gated, omask=om, subsample=subsample, folded=folded, plane=plane,
                     wide=wide)


def _one_tile(config, geo, band, wq, bias, thr, mult, shift, om, seg_words, kg, res, *, K, C, R,
              S, CW, k0, kt, oy0, ho, ox0, wo, y0, x0, stride, pad, gated, relu, pixel,
              deal, double_out, out_cap, bank, load_act, load_wgt, load_list, plane, wide):
    """One tile: output channels ``k0..``, rows ``oy0..``, columns ``ox0..``, buffer half
    ``bank``. ``load_act``/``load_wgt``/``load_list`` False: the half still holds this band /
    these channels' weights and parameters / the work list of this band size from its previous
    tile, so they are not written again."""
    rows, cols = config.rows, config.cols
    RS = R * S
    hb, wb = band.shape[1:]
    writes = []
    # Activations and the work list (its entries depend on the band size): broadcast.
    if load_act:
        for cw in range(CW):
            for iy in range(hb):
                for ix in range(wb):
                    word = geo.pack_word(band[cw * rows:(cw + 1) * rows, iy, ix],
                                         config.act_width)
                    a = cw * plane + iy * wb + ix
                    if wide:    # the band's own address: its MSB is the half
                        writes.append((Target.ACT, 0, 1, a >> geo.act_bits,
                                       a & (config.act_depth - 1), word))
                    else:
                        writes.append((Target.ACT, 0, 1, bank, a, word))
    seg_pos = []
    pos = 0
    for bwords, cwords in seg_words:
        start = pos
        for cw, mask in bwords + cwords:
            if load_list:
                writes.append((Target.LIST, 0, 1, bank, pos,
                               geo.pack_list(cw * plane, cw, mask)))
            pos += 1
        seg_pos.append((start, start + len(bwords), pos))
    # Weights and parameters: dealt to columns, or broadcast with a pixel split.
    P = ho * wo
    pc = _ceil_div(P, cols) if pixel else 0
    if pixel:
        chans = [(0, 1, i, k0 + i) for i in range(kt)]
    else:
        chans = [(j, 0, i, k0 + kl) for j in range(cols)
                 for i, kl in enumerate(range(j, kt, cols))]
    for col, bc, i, k in (chans if load_wgt else []):
        wk = np.zeros((CW * rows, R, S), dtype=np.int64)
        wk[:C] = wq[k]
        for t in range(RS):
            r, s = divmod(t, S)
            for cw in range(CW):
                word = geo.pack_word(wk[cw * rows:(cw + 1) * rows, r, s],
                                     config.weight_width)
                writes.append((Target.WGT, col, bc, bank, (i * RS + t) * CW + cw, word))
        start, mid, end = seg_pos[k // kg]
        tv = int(thr[k]) if (gated and thr is not None) else 0
        writes += [
            (Target.BIAS, col, bc, bank, i, int(bias[k]) & 0xFFFFFFFF),
            (Target.THR, col, bc, bank, i, tv & 0xFFFFFFFF),
            (Target.MULT, col, bc, bank, i, int(mult[k]) & 0xFFFFFFFF),
            (Target.CFG, col, bc, bank, i,
             geo.pack_cfg(int(shift[k]), bool(om[k]), start, mid, end)),
        ]
    if wide:
        # A wide band's writes wait until the previous band's tiles have finished; the rest
        # goes to this tile's own half, free earlier: written first, so that only the band
        # waits.
        writes = ([w for w in writes if w[0] != Target.ACT]
                  + [w for w in writes if w[0] == Target.ACT])
    # Outputs: column j's bank holds its channels (or its pixel chunk of every
    # channel) one after the other, in the order the column computes them.
    obase = bank * out_cap if double_out else 0  # output half: address MSB
    out_writes, reads, dest = [], [], []
    for j, k, addr, p in output_places(kt, P, cols, pc, pixel, deal):
        oy, ox = divmod(p, wo)
        if res is not None:
            out_writes.append((Target.OUT, j, 0, bank, obase + addr,
                               int(res[k0 + k, oy0 + oy, ox0 + ox]) & 0xFF))
        reads.append((j, obase + addr))
        dest.append((k0 + k, oy0 + oy, ox0 + ox))
    cmd = dict(bank=bank, kt=kt, r=R, s=S, stride=stride, hb=hb, w=wb,
               iy_base=oy0 * stride - pad - y0, pad_l=x0 - (ox0 * stride - pad),
               ho=ho, wo=wo, cw=CW, gated=int(gated), relu=int(bool(relu)),
               residual=int(res is not None), obuf=int(bool(double_out)),
               psplit=int(pixel), pc=pc, wide=int(wide),
               pdeal=int(deal))
    return TilePlan(bank=bank, cmd=cmd, writes=writes, out_writes=out_writes,
                    reads=reads, dest=np.array(dest, dtype=np.int64), k0=k0, kt=kt, oy0=oy0,
                    ho=ho, ox0=ox0, wo=wo, load_act=load_act, load_wgt=load_wgt,
                    load_list=load_list, wide=wide)
