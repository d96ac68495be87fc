"""Widths, depths and packed formats shared by the engine RTL and the host tiling helper.

Everything here is derived from an :class:`~cgaccel.config.AccelConfig`, so the hardware and the
host-side packing (:mod:`cgaccel.engine.tiling`) cannot drift apart. Pure Python except the
Amaranth layouts, which are only built on request.

Buffer write port targets (``Target``)
--------------------------------------
======  =========  ====================================================================
value   name       word written (one per transaction, ``addr`` within one bank half)
======  =========  ====================================================================
0       ACT        ``rows`` activations, lane ``l`` in bits ``[l*aw, (l+1)*aw)`` (a ``wide``
                   tile's band word ``a`` is at ``bank = a >> act_bits``, ``addr`` its low bits)
1       WGT        ``rows`` weights, same lane packing
2       LIST       work-list entry ``{cw_off, cw, lane_mask}`` (see :meth:`pack_list`)
3       BIAS       int32 bias of one column-local output channel
4       THR        int32 gate threshold
5       MULT       requant multiplier (1 .. 2**31-1)
6       CFG        ``{shift, omask, list_start, list_mid, list_end}`` (:meth:`pack_cfg`)
7       OUT        one int8 residual into the output bank (not banked: ``addr`` is the full
                   output-bank address; double-buffered tiles put their half in its MSB)
======  =========  ====================================================================
"""

from dataclasses import dataclass
from enum import IntEnum

__all__ = ["Target", "Geometry"]


class Target(IntEnum):
    ACT = 0
    WGT = 1
    LIST = 2
    BIAS = 3
    THR = 4
    MULT = 5
    CFG = 6
    OUT = 7


def _bits(n):
    """Bits needed to index ``n`` entries (at least 1)."""
    return max(1, (n - 1).bit_length())


def _pow2_ceil(n):
    return 1 << max(0, (n - 1).bit_length())


def _ceil_div(a, b):
    return -(-a // b)


@dataclass(frozen=True)
class Geometry:
    """Derived engine sizes for one configuration.

    Parameters
    ----------
    config : AccelConfig
    """

    config: object

    # Depths (entries per bank half) and address widths ---------------------------------------
    @property
    def rows(self):
        return self.config.rows

    @property
    def cols(self):
        return self.config.cols

    @property
    def max_words(self):
        """Activation words per pixel for ``max_channels`` input channels."""
        return _ceil_div(self.config.max_channels, self.config.rows)

    @property
    def list_depth(self):
        """Work-list entries per half: every group's base and conditional words."""
        return _pow2_ceil(self.config.max_groups * (self.max_words + 2))

    @property
    def param_depth(self):
        """Parameter entries per half: output channels a column owns in one tile
        (``AccelConfig.param_depth``, by default ``max_channels / cols`` rounded up)."""
        return self.config.param_entries

    @property
    def act_bits(self):
        return _bits(self.config.act_depth)

    @property
    def wgt_bits(self):
        return _bits(self.config.weight_depth)

    @property
    def list_bits(self):
        return _bits(self.list_depth)

    @property
    def param_bits(self):
        return _bits(self.param_depth)

    @property
    def out_bits(self):
        return _bits(self.config.out_depth)

    @property
    def cw_bits(self):
        """Bits of a word index within one pixel (``0 .. max_words-1``)."""
        return _bits(self.max_words)

    @property
    def count_bits(self):
        """Bits of a list position or count (``0 .. list_depth``)."""
        return self.list_bits + 1

    @property
    def col_bits(self):
        return _bits(self.config.cols)

    @property
    def addr_bits(self):
        return max(self.act_bits, self.wgt_bits, self.list_bits, self.param_bits, self.out_bits)

    # Packed words ---------------------------------------------------------------------------
    @property
    def list_off_bits(self):
        """Bits of a work-list entry's activation offset: one more than a half's address, as
        a ``wide`` tile's band spans both halves (offsets up to ``2 * act_depth - 1``)."""
        return self.act_bits + 1

    @property
    def list_width(self):
        return self.list_off_bits + self.cw_bits + self.config.rows

    @property
    def cfg_width(self):
        return 6 + 1 + 3 * self.count_bits

    @property
    def data_width(self):
        c = self.config
        return max(32, c.rows * c.act_width, c.rows * c.weight_width, self.list_width,
                   self.cfg_width)

    @staticmethod
    def item_bits(bits):
        """Bits of a buffer item of ``bits`` bits as a LOAD moves it (a power-of-two bytes)."""
        return 8 << max(0, (-(-bits // 8) - 1).bit_length())

    @property
    def act_item_bits(self):
        return self.item_bits(self.config.rows * self.config.act_width)

    @property
    def wgt_item_bits(self):
        return self.item_bits(self.config.rows * self.config.weight_width)

    @property
    def wr_data_width(self):
        """Data bits of one buffer write: one item, or ``load_lanes`` activation/weight words
        (word ``i`` in bits ``i * item_bits`` up)."""
        lanes = self.config.load_lanes
        return max(self.data_width, lanes * self.act_item_bits, lanes * self.wgt_item_bits)

    def lane_writes(self, writes):
        """Group buffer writes as the loader issues them: runs of consecutive ``ACT``/``WGT``
        words to the same column(s) and half, ``load_lanes`` at most, become one write.

        ``writes``: ``(target, col, bcast, bank, addr, data)`` tuples. Returns dicts of
        :meth:`write_layout` fields (``more`` = words after the first).
        """
        lanes = self.config.load_lanes
        out = []
        for target, col, bcast, bank, addr, word in writes:
            target = int(target)
            if out and lanes > 1 and target in (Target.ACT, Target.WGT):
                last = out[-1]
                if (last["target"] == target and last["col"] == col
                        and last["bcast"] == bcast and last["bank"] == bank
                        and last["more"] + 1 < lanes
                        and last["addr"] + last["more"] + 1 == addr):
                    bits = self.act_item_bits if target == Target.ACT else self.wgt_item_bits
                    last["more"] += 1
                    last["data"] |= word << (bits * last["more"])
                    continue
            out.append({"target": target, "col": col, "bcast": bcast, "bank": bank,
                        "addr": addr, "data": word, "more": 0})
        return out

    def pack_word(self, values, width):
        """Pack ``rows`` signed integers of ``width`` bits, lane 0 in the low bits."""
        if len(values) != self.rows:
            raise ValueError(f"word must have {self.rows} lanes, not {len(values)}")
        out = 0
        mask = (1 << width) - 1
        for lane, v in enumerate(values):
            out |= (int(v) & mask) << (lane * width)
        return out

    def pack_list(self, cw_off, cw, lane_mask):
        """Pack a work-list entry: activation offset of the word, its word index, lane mask.

        The offset may reach into the second half (``wide`` tiles), so it is below
        ``2 * act_depth``."""
        if not 0 <= cw_off < 2 * self.config.act_depth:
            raise ValueError(f"list cw_off must be below {2 * self.config.act_depth}, "
                             f"not {cw_off}")
        if not 0 <= cw < self.max_words:
            raise ValueError(f"list cw must be below {self.max_words}, not {cw}")
        ob = self.list_off_bits
        return cw_off | (cw << ob) | (lane_mask << (ob + self.cw_bits))

    def pack_cfg(self, shift, omask, start, mid, end):
        """Pack a channel's shift, output mask and work-list segment ``[start, mid, end)``."""
        if not 1 <= shift <= 62:
            raise ValueError(f"shift must be between 1 and 62, not {shift}")
        if not 0 <= start <= mid <= end <= self.list_depth:
            raise ValueError(f"list segment must satisfy 0 <= start <= mid <= end <= "
                             f"{self.list_depth}, not {(start, mid, end)}")
        cb = self.count_bits
        return (shift | (int(omask) << 6) | (start << 7) | (mid << (7 + cb))
                | (end << (7 + 2 * cb)))

    # Amaranth layouts (built lazily so the host helper does not need them) ----------------
    def tile_layout(self):
        """Layout of one tile command (see ``docs/engine.md``)."""
        from amaranth import signed
        from amaranth.lib import data
        c = self.config
        db = c.dim_bits
        return data.StructLayout({
            "bank": 1,
            "kt": c.channel_bits,
            "r": 4, "s": 4, "stride": 4,
            "hb": db, "w": db,
            "iy_base": signed(db + 1),
            "pad_l": 4,
            "ho": db, "wo": db,
            "cw": self.cw_bits + 1,
            "gated": 1, "relu": 1, "residual": 1,
            # Last, so older packers that do not know them leave them 0.
            "obuf": 1,
            # Pixel split: every column computes all ``kt`` channels on its own chunk of
            # ``pc`` consecutive output pixels (column ``j``: pixels ``[j*pc, (j+1)*pc)``).
            "psplit": 1, "pc": self.out_bits,
            # Wide band: the activation band spans both halves of the activation buffer
            # (read address = the ``act_bits + 1``-bit word address, its MSB the half);
            # weights, list, parameters and outputs stay in half ``bank``. ACT writes are
            # held off while a wide tile is in flight.
            "wide": 1,
            # With ``psplit``: the pixels are dealt instead (column ``j``: pixels ``j,
            # j + cols, j + 2*cols, ...`` of every channel, the n-th at ``i*pc + n``).
            "pdeal": 1,
        })

    def write_layout(self):
        """Layout of one buffer-write transaction."""
        from amaranth.lib import data
        return data.StructLayout({
            "target": 3,
            "col": self.col_bits,
            "bcast": 1,
            "bank": 1,
            "addr": self.addr_bits,
            "data": self.wr_data_width,
            # Words after the first (ACT/WGT only, at addr + 1, ...): 0 .. load_lanes - 1.
            "more": max(1, (self.config.load_lanes - 1).bit_length()),
        })

    @property
    def store_rows(self):
        """A dealt STORE reads whole rows (``read_layout``'s ``row``: ``cols`` bytes a read).

        When ``cols`` divides the AXI beat: every iteration starts a beat at byte 0, so each
        row lands at a multiple of ``cols`` in one beat. Otherwise byte by byte.
        """
        return self.cols > 1 and self.config.axi_bytes % self.cols == 0

    @property
    def out_word(self):
        """Output activations per output-bank word (``AccelConfig.out_word``, ``W``)."""
        return self.config.out_word

    def store_step(self, deal, buf_addr, buf_stride):
        """Bytes one engine read of a STORE moves (the controller's ``rstep``).

        A dealt STORE reads rows of ``cols`` bytes (:attr:`store_rows`); any other reads a
        word of ``out_word`` bytes when its first bank address and its ``buf_stride`` are
        multiples of ``out_word`` (every iteration then starts at a word), else one byte.
        """
        if deal:
            return self.cols if self.store_rows else 1
        w = self.out_word
        return w if w > 1 and buf_addr % w == 0 and buf_stride % w == 0 else 1

    def read_requests(self, reads, deal, word=False):
        """Write-back ``reads`` ``(col, addr)`` of a tile as the controller requests them.

        Returns ``(col, addr, n)`` tuples: ``n = 0`` a single read, else a row read
        (``read_layout``'s ``row``; ``deal``) or a word read (``word``; ``word`` and not
        ``deal``) whose ``n`` low bytes are the next ``n`` reads. A dealt tile (``deal``, with
        :attr:`store_rows`) reads columns ``c, c + 1, ...`` (mod ``cols``) of one address as
        one row, ``cols`` bytes at most (an iteration's last row may be shorter): the tuple's
        ``col`` is then ``c``, the row's rotation (the row read returns every column, column
        0's in the low bits; read ``i`` of the row is column ``(c + i) % cols``'s). With
        ``word`` (``out_word > 1``) a run of reads of one column at consecutive addresses
        from a multiple of ``out_word`` is one word read, ``out_word`` bytes at most; a read
        that starts no word is single. (The controller decides per STORE,
        :meth:`store_step`; this groups per read.)
        """
        w = self.out_word
        if not deal and word and w > 1:
            out = []
            for c, a in reads:
                if out and out[-1][2] and out[-1][0] == c and out[-1][1] + out[-1][2] == a \
                        and out[-1][2] < w:
                    out[-1] = (c, out[-1][1], out[-1][2] + 1)
                else:
                    out.append((c, a, 1 if a % w == 0 else 0))
            return out
        if not (deal and self.store_rows):
            return [(c, a, 0) for c, a in reads]
        out = []
        for c, a in reads:
            if out and out[-1][1] == a and 0 < out[-1][2] < self.cols:
                if c != (out[-1][0] + out[-1][2]) % self.cols:
                    raise ValueError(f"dealt reads of a row must step the column by one, "
                                     f"not {out[-1][0] + out[-1][2] - 1} -> {c}")
                out[-1] = (out[-1][0], a, out[-1][2] + 1)
            else:
                out.append((c, a, 1))
        return out

    def read_layout(self):
        """Layout of one write-back read request.

        ``col`` and ``addr`` name one output byte; with ``row`` every column reads ``addr``
        (``col`` is ignored) and the engine returns all ``cols`` bytes at once, column 0's
        in the low bits: a dealt STORE's ``cols`` consecutive DRAM bytes. With ``word``
        (and not ``row``) column ``col`` returns the ``out_word`` bytes of the word that
        holds ``addr`` (the address's low bits are ignored), the lowest address's in the low
        bits.
        """
        from amaranth.lib import data
        return data.StructLayout({"col": self.col_bits, "addr": self.out_bits, "row": 1,
                                  "word": 1})

    @property
    def read_width(self):
        """Bits of one write-back read's data (``o_rd``): ``max(cols, out_word)`` bytes."""
        return max(self.cols, self.out_word) * self.config.act_width
