"""The one generator configuration: every hardware parameter, validated, with derived sizes.

Controllers, DMA engines and the top level take an :class:`AccelConfig`; leaf datapath blocks (PE,
column) take plain integers derived from it. Variants are made with :func:`dataclasses.replace` or
:meth:`AccelConfig.with_overrides`, which re-run every check.
"""

import dataclasses
import json
from dataclasses import dataclass, fields

__all__ = ["AccelConfig", "PRESETS", "HOSTS", "preset", "parse_overrides"]

HOSTS = ("dma", "mmio")


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _check_int(name, value, lo, hi=None, *, pow2=False):
    if not _is_int(value):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if value < lo or (hi is not None and value > hi):
        span = f"at least {lo}" if hi is None else f"between {lo} and {hi}"
        raise ValueError(f"{name} must be an integer {span}, not {value}")
    if pow2 and value & (value - 1):
        raise ValueError(f"{name} must be a power of two, not {value}")


def _pow2_ceil(n):
    return 1 << max(0, (n - 1).bit_length())


def _check_bool(name, value):
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, not {value!r}")


@dataclass(frozen=True)
class AccelConfig:
    """Generator parameters of one cgaccel instance.

    Parameters
    ----------
    rows : int
        PE rows per column: input channels reduced per cycle by one column.
    cols : int
        Columns: output channels computed concurrently, each column with its own work queue,
        weight bank and output unit.
    act_width, weight_width : int
        Signed activation and weight widths in bits.
    acc_width : int
        Signed accumulator width in bits.
    max_channels : int
        Largest input (C) or output (K) channel count a layer descriptor may name.
    max_kernel : int
        Largest kernel height/width (R, S).
    max_dim : int
        Largest input height/width (H, W).
    act_depth : int
        Words (``rows`` activations each) in one half of a column's double-buffered activation
        buffer.
    weight_depth : int
        Words (``rows`` weights each) in one half of a column's double-buffered weight bank.
    out_depth : int
        Output activations held per column (output/residual bank).
    psum_slots : int
        Work items in flight per column (pipeline plus conditional-path queue).
    axi_data_width, axi_addr_width, axi_id_width : int
        AXI4 master data, address and ID widths.
    max_burst : int
        Longest AXI4 INCR burst issued, in beats.
    max_outstanding : int
        AXI4 bursts in flight per DMA engine (reads awaiting data, writes awaiting B).
    load_lanes : int
        Buffer words a ``LOAD`` writes per cycle into the activation and weight buffers, which
        are split into this many block-RAM banks by address. Loads then keep up with AXI
        beats of ``load_lanes`` words: the late ResNet-18 layers are bound by weight loading,
        not by computing, once their gates skip half the work (``docs/bench.md``).
    max_groups : int
        Largest CGNet channel-group count G (base-path fraction 1/G).
    param_depth : int or None
        Entries in one half of each of a column's parameter tables (bias, threshold,
        multiplier, config): the output channels one tile may give a column. A power of two,
        at least ``min_param_depth`` (``max_channels / cols`` rounded up to a power of two, all
        the channels a channel-split column owns) and at most ``max_channels`` rounded up.
        ``None``: ``min_param_depth``. More entries let pixel-split and dealt tiles, which
        broadcast every channel's parameters to every column, hold more channels
        (``docs/engine.md``, "Dealt pixels"). On an ECP5 each double-buffered table (bias,
        threshold and multiplier 32 bits, config 34 bits) is one 512x36 DP16KD for 2x64 or
        2x128 entries alike, so 8 columns of 512 channels may take 128 entries, twice their
        minimum, at no block-RAM cost (the column keeps its 6-bit shift copy in LUT RAM when
        the depth is above the minimum; iCE40 has no LUT RAM, so iCE40 builds keep ``None``).
    out_word : int
        Output activations per word of the output bank (``W``, a power of two dividing the
        AXI beat bytes and half the output bank). Results and residual preloads are written
        one activation at a time (lane enables), but a channel-split or plain ``STORE`` whose
        bank addresses are word-aligned reads a word (``W`` bytes) a cycle
        (``docs/engine.md``, "Write-back"). 1: byte reads only. On an ECP5 a 2 x 256 x 32-bit
        bank is still two DP16KD, as 2 x 1024 x 8.
    cgnet : bool
        Fine-grained CGNet gating (base path, threshold, conditional path) is built. Without
        it the engine refuses gated tiles and each column's slot table, conditional queue and
        gate decision are left out (a tenth of a one-column engine's LUTs and flip-flops on
        an iCE40, ``docs/synth.md``, "iCE40 UP5K").
    fbs : bool
        FBS output/input channel masks are built.
    deal : bool
        Dealt-pixel tiles are built (``docs/engine.md``, "Dealt pixels"): the tiler may deal
        a gated 1x1 layer's pixels over the columns. Without them the tiler never deals,
        the engine refuses a dealt tile, and each column's dealt walk is left out (about 500
        LUT4 a column on an iCE40, ``docs/synth.md``, "iCE40 UP5K").
    hard_block_regs : bool
        A register on both sides of every block-RAM read and DSP operand that has none: the
        work-list entry leaves through the block RAMs' output registers and then a fabric
        register (one fetch stage more), the output unit's multipliers take a plain copy of
        their operands (one stage more), so that ``cgaccel synth --bram-outreg
        --dsp-inreg`` puts both in the hard blocks (ECP5: a block RAM read without its output
        register leaves 5.8 ns after the clock). About 140 flip-flops a column; ``tiny``
        leaves them out (an iCE40 UP5K has no logic cells to spare, and its block RAMs no
        output register).
    counter_width : int
        Bits of the performance counters (cycles, DRAM bytes and stalls; the engine's counters
        are read as per-layer differences of this width). They wrap at ``2**counter_width``;
        the bits above it read 0 in the ``_HI`` registers. 32 bits hold 71 s of cycles at 60
        MHz: enough for a layer on a small FPGA, and half the flip-flops and carry chains.
    host : str
        How the host reaches the engine. ``"dma"``: the top (:class:`cgaccel.top.Top`) has the
        command-list controller and AXI4 read and write DMA engines to DRAM; the host writes
        a layer to DRAM and starts it. ``"mmio"``: the top
        (:class:`cgaccel.direct.DirectTop`) is the engine behind an AXI4-Lite register
        window; the host runs the command list itself and hands the engine each buffer write,
        tile and write-back read (:mod:`cgaccel.direct_driver`). For a small FPGA without
        DRAM (an iCE40 UP5K holds the engine, not the controller and DMA engines as well,
        ``docs/synth.md``). Needs ``load_lanes`` 1 and a write-back read of at most 32 bits
        (``max(cols, out_word) * act_width``).
    """

    rows: int = 8
    cols: int = 8
    act_width: int = 8
    weight_width: int = 8
    acc_width: int = 32
    max_channels: int = 512
    max_kernel: int = 7
    max_dim: int = 256
    act_depth: int = 1024
    weight_depth: int = 1024
    out_depth: int = 2048
    psum_slots: int = 16
    axi_data_width: int = 64
    axi_addr_width: int = 32
    axi_id_width: int = 4
    max_burst: int = 16
    max_outstanding: int = 4
    load_lanes: int = 1
    max_groups: int = 8
    param_depth: int | None = None
    out_word: int = 4
    cgnet: bool = True
    fbs: bool = True
    deal: bool = True
    hard_block_regs: bool = True
    counter_width: int = 64
    host: str = "dma"

    def __post_init__(self):
        _check_int("Array rows", self.rows, 1, 64)
        _check_int("Array cols", self.cols, 1, 64)
        _check_int("Activation width", self.act_width, 2, 16)
        _check_int("Weight width", self.weight_width, 2, 16)
        _check_int("Accumulator width", self.acc_width, 8, 48)
        # One product plus growth over the largest reduction must not wrap.
        need = self.act_width + self.weight_width
        if self.acc_width < need:
            raise ValueError(f"Accumulator width must be at least act_width + weight_width "
                             f"({need}), not {self.acc_width}")
        _check_int("Max channels", self.max_channels, 1, 65535)
        _check_int("Max kernel", self.max_kernel, 1, 15)
        _check_int("Max dim", self.max_dim, 1, 4096)
        _check_int("Activation buffer depth", self.act_depth, 16, 1 << 20, pow2=True)
        _check_int("Weight buffer depth", self.weight_depth, 16, 1 << 20, pow2=True)
        _check_int("Output buffer depth", self.out_depth, 16, 1 << 20, pow2=True)
        _check_int("Psum slots", self.psum_slots, 4, 256, pow2=True)
        _check_int("AXI data width", self.axi_data_width, 32, 1024, pow2=True)
        _check_int("AXI address width", self.axi_addr_width, 16, 64)
        _check_int("AXI ID width", self.axi_id_width, 1, 16)
        _check_int("Max burst", self.max_burst, 1, 256)
        if self.max_burst * self.axi_data_width // 8 > 4096:
            raise ValueError(f"Max burst must fit in 4 KiB ({4096 * 8 // self.axi_data_width} "
                             f"beats at {self.axi_data_width} bits), not {self.max_burst}")
        _check_int("Max outstanding reads", self.max_outstanding, 1, 1 << self.axi_id_width)
        _check_int("Load lanes", self.load_lanes, 1, 8, pow2=True)
        word = max(self.act_word_width, self.weight_word_width)
        word = 8 << max(0, (-(-word // 8) - 1).bit_length())
        if self.load_lanes > 1 and self.load_lanes * word > self.axi_data_width:
            raise ValueError(f"Load lanes must be at most {max(1, self.axi_data_width // word)} "
                             f"({self.axi_data_width}-bit beats of {word}-bit buffer words), "
                             f"not {self.load_lanes}")
        _check_int("Max groups", self.max_groups, 1, 64)
        if self.param_depth is not None:
            # At least what a channel-split column owns of a ``max_channels`` layer, so that
            # a larger table never cuts channel-split tiles; more than a tile can hold
            # (``max_channels``) would never be written.
            _check_int("Parameter table depth", self.param_depth, self.min_param_depth,
                       _pow2_ceil(max(2, self.max_channels)), pow2=True)
        _check_int("Output word", self.out_word, 1,
                   min(self.axi_data_width // 8, self.out_depth // 2), pow2=True)
        _check_bool("CGNet gating", self.cgnet)
        _check_bool("FBS channel skipping", self.fbs)
        _check_bool("Dealt pixels", self.deal)
        _check_bool("Hard-block registers", self.hard_block_regs)
        _check_int("Counter width", self.counter_width, 32, 64)
        if not isinstance(self.host, str):
            raise TypeError(f"Host interface must be a string, not {self.host!r}")
        if self.host not in HOSTS:
            raise ValueError(f"Host interface must be one of {', '.join(HOSTS)}, "
                             f"not {self.host!r}")
        if self.host == "mmio":
            if self.load_lanes != 1:
                raise ValueError(f"Load lanes must be 1 with host='mmio' (one buffer word a "
                                 f"register write), not {self.load_lanes}")
            rd = max(self.cols, self.out_word) * self.act_width
            if rd > 32:
                raise ValueError(f"Write-back read width (max(cols, out_word) * act_width) "
                                 f"must be at most 32 bits with host='mmio' (one register), "
                                 f"not {rd}")

    # Derived sizes -------------------------------------------------------------------------

    @property
    def macs(self):
        """Multiply-accumulate units in the array."""
        return self.rows * self.cols

    @property
    def act_word_width(self):
        """Bits in one activation-buffer word (``rows`` activations)."""
        return self.rows * self.act_width

    @property
    def weight_word_width(self):
        """Bits in one weight-bank word (``rows`` weights)."""
        return self.rows * self.weight_width

    @property
    def axi_bytes(self):
        """Bytes per AXI4 data beat."""
        return self.axi_data_width // 8

    @property
    def channel_bits(self):
        """Bits to hold a channel count up to ``max_channels``."""
        return self.max_channels.bit_length()

    @property
    def min_param_depth(self):
        """Smallest ``param_depth``: ``max_channels / cols`` rounded up to a power of two (and
        at least 2)."""
        return _pow2_ceil(max(2, -(-self.max_channels // self.cols)))

    @property
    def param_entries(self):
        """Entries per half of a parameter table: ``param_depth``, or its minimum when
        ``None``."""
        return self.min_param_depth if self.param_depth is None else self.param_depth

    @property
    def dim_bits(self):
        """Bits to hold a spatial size up to ``max_dim``."""
        return self.max_dim.bit_length()

    @property
    def onchip_bytes(self):
        """Bytes of on-chip buffering (both halves of every double buffer)."""
        per_col = (2 * self.act_depth * self.act_word_width // 8
                   + 2 * self.weight_depth * self.weight_word_width // 8
                   + self.out_depth * self.act_width // 8)
        return per_col * self.cols

    # Variants and export -------------------------------------------------------------------

    def with_overrides(self, **overrides):
        """Return a copy with ``overrides`` applied (checked like the constructor)."""
        names = {f.name for f in fields(self)}
        for key in overrides:
            if key not in names:
                raise ValueError(f"Config parameter must be one of {', '.join(sorted(names))}, "
                                 f"not {key!r}")
        return dataclasses.replace(self, **overrides)

    def to_dict(self):
        """Parameters and derived sizes as a JSON-ready dict."""
        d = dataclasses.asdict(self)
        for name in ("macs", "act_word_width", "weight_word_width", "axi_bytes", "channel_bits",
                     "dim_bits", "onchip_bytes", "param_entries"):
            d[name] = getattr(self, name)
        return d

    def to_json(self):
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"


PRESETS = {
    # The iCE40 UP5K build (iCEBreaker; docs/synth.md, "iCE40 UP5K"): one column of 4 MACs (4
    # of the 8 DSPs, the output unit's requantization the other 4), 256-word buffers, and the
    # engine behind an AXI4-Lite window (host="mmio"): the host runs the command list, as the
    # board has no DRAM for a controller and DMA engines to read. Dense, FBS and statically
    # pruned (Gator) layers; CGNet's fine-grained gating (about 1,400 more logic cells) and
    # word reads of the output bank (300) do not fit beside it, nor do dealt pixels (one
    # column has nothing to deal them to). The board design takes 97% of the logic cells.
    "tiny": AccelConfig(rows=4, cols=1, max_channels=64, max_kernel=3, max_dim=32,
                        act_depth=256, weight_depth=256, out_depth=256, psum_slots=4,
                        axi_data_width=32, max_outstanding=2, max_groups=2, out_word=1,
                        cgnet=False, deal=False, hard_block_regs=False, counter_width=32,
                        host="mmio"),
    # The smallest preset with the command-list controller and DMA engines: 4 MACs as 2
    # columns of 2 rows, 512-word buffers, 32-bit counters. It does not fit an iCE40 UP5K
    # (about 20,000 LUT4 and 87 block RAMs against 5,280 / 30).
    "small": AccelConfig(rows=2, cols=2, max_channels=128, max_kernel=3, max_dim=64,
                         act_depth=512, weight_depth=512, out_depth=512, psum_slots=8,
                         axi_data_width=64, max_burst=16, max_outstanding=2, max_groups=4,
                         counter_width=32),
    # Routes on a Lattice ECP5-85F (docs/synth.md): 64 MACs as 4 columns of 16 rows, with
    # 512-word buffers (8,192 activations a half, as 8 x 1024). The same MACs as 8 columns of
    # 8 rows take 60,500 LUTs (72%) and do not route there, each column bringing its own
    # buffers, tables, slots and output unit; nor do 4 x 16 with 1024-word buffers (160 block
    # RAMs). 128-bit AXI (the width of an ECP5 x16 DDR3 controller's user port at a quarter of
    # the memory clock); a 16-row word is one beat, so one word loaded per cycle keeps up.
    "default": AccelConfig(rows=16, cols=4, act_depth=512, weight_depth=512,
                           axi_data_width=128),
    # ASIC-sized.
    "large": AccelConfig(rows=16, cols=16, act_depth=4096, weight_depth=4096, out_depth=8192,
                         psum_slots=32, axi_data_width=128, max_outstanding=8),
}


def preset(name):
    """Return the named preset configuration."""
    if not isinstance(name, str):
        raise TypeError(f"Preset name must be a string, not {name!r}")
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"Preset must be one of {', '.join(PRESETS)}, not {name!r}") from None


def _parse_value(text):
    low = text.lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    if low == "none":           # a derived size (``param_depth``)
        return None
    try:
        return int(text, 0)
    except ValueError:
        return text


def parse_overrides(items):
    """Parse ``["rows=4", "fbs=false"]`` into a dict of typed values."""
    out = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"Override must be key=value, not {item!r}")
        out[key.strip()] = _parse_value(value.strip())
    return out
