"""Controller: fetches the host's command list from DRAM and drives the DMA engines and the engine.

The command format and semantics are in :mod:`cgaccel.commands`. One command executes at a time,
but a ``RUN`` only hands the tile to the engine, so the loads that follow it (into the other
buffer bank) overlap the tile; the engine itself holds off what must wait (writes to the bank in
use, write-back reads and residual preloads while a tile runs).
"""

from contextlib import contextmanager

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .commands import COMMAND_BYTES, Op
from .dma.common import command_layout, read_beat_layout, write_beat_layout
from .engine.geometry import Geometry, Target
from .regs import ERRORS
from .rtl import LOCAL_COPY
from .stream import SkidBuffer

__all__ = ["Controller"]

LEN_WIDTH = 24


class Controller(wiring.Component):
    """Command-list processor.

    Members
    -------
    start, soft_reset : ``In(1)``
        One-cycle pulses from ``CTRL``. A start while busy is ignored; a soft reset stops the
        layer (DMA engines drain, a running tile ends) and returns to idle with status clear.
    cmd_addr, y_addr : ``In(64)``; cmd_len, y_len : ``In(32)``
        The descriptor registers.
    busy, done : ``Out(1)``
        ``done`` stays high from the end of a layer until the next start or soft reset.
    error_code : ``Out(8)``
        :data:`cgaccel.regs.ERRORS` code of the last layer (0 = none).
    finished : ``Out(1)``
        One-cycle pulse when a layer ends (with or without error): the interrupt source.
    rd_cmd, rd_data, rd_error, wr_cmd, wr_data, wr_done, wr_error, dma_abort, dma_busy
        To the read and write DMA engines (:mod:`cgaccel.dma`).
    eng_wr, eng_cmd, eng_done, eng_rd, eng_rd_data, eng_busy
        To the engine's ``i_wr``, ``i_cmd``, ``o_done``, ``i_rd``, ``o_rd`` and ``busy``.

    Parameters
    ----------
    config : AccelConfig
    """

    def __init__(self, config):
        self._cfg = config
        self._geo = geo = Geometry(config)
        aw = config.axi_addr_width
        dw = config.axi_data_width
        tile_bits = geo.tile_layout().size
        if tile_bits > 128:
            raise ValueError(f"Tile command must fit 128 bits of a RUN command, not {tile_bits}")
        # LOAD splits beats into items and never joins beats, so every buffer item (padded to
        # a power-of-two byte count) must fit one beat.
        item_bits = 8 << max(0, (-(-geo.data_width // 8) - 1).bit_length())
        if item_bits > dw:
            raise ValueError(f"AXI data width must be at least the widest buffer item "
                             f"({item_bits} bits for this array), not {dw}")
        super().__init__({
            "start": In(1), "soft_reset": In(1),
            "cmd_addr": In(64), "cmd_len": In(32), "y_addr": In(64), "y_len": In(32),
            "busy": Out(1), "done": Out(1), "error_code": Out(8), "finished": Out(1),
            "rd_cmd": Out(stream.Signature(command_layout(aw, LEN_WIDTH))),
            "rd_data": In(stream.Signature(read_beat_layout(dw))),
            "rd_error": In(1),
            "wr_cmd": Out(stream.Signature(command_layout(aw, LEN_WIDTH))),
            "wr_data": Out(stream.Signature(write_beat_layout(dw))),
            "wr_done": In(1),
            "wr_error": In(1),
            "dma_abort": Out(1),
            "dma_busy": In(1),
            "eng_wr": Out(stream.Signature(geo.write_layout())),
            "eng_cmd": Out(stream.Signature(geo.tile_layout())),
            "eng_done": In(stream.Signature(data.StructLayout({"error": 1}))),
            "eng_rd": Out(stream.Signature(geo.read_layout())),
            "eng_rd_data": In(stream.Signature(geo.read_width)),
            "eng_busy": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, geo = self._cfg, self._geo
        aw = cfg.axi_addr_width
        beat_bytes = cfg.axi_bytes
        beat_bits = beat_bytes * 8
        beat_log2 = beat_bytes.bit_length() - 1
        cols = cfg.cols

        # Decoded command ---------------------------------------------------------------------
        words = Signal(8 * 32)
        w = [words[32 * i:32 * (i + 1)] for i in range(8)]
        # Words 1-4, the engine's tile command, in a copy of their own (``LOCAL_COPY``, equal
        # to them at every cycle: written by the same beats), placed by the engine's intake
        # while ``words`` stays by the controller's decode (one register fanned out to both
        # put long wires in front of the decode's adders: ``words`` -> ``st_end``).
        eng_words = Signal(4 * 32, attrs=LOCAL_COPY)
        target = w[0][4:7]
        bcast = w[0][7]
        bank = w[0][8]
        chan = w[0][9]
        item_log2 = w[0][10:13]
        deal = w[0][13]
        col_field = w[0][16:32]
        buf_addr, buf_stride, inner, outer = w[1], w[2], w[3], w[4]
        # Registers hold what the config can use, not the command format's full 64-bit DRAM
        # addresses: ``aw`` address bits (the DMA commands carry no more) and, for the range
        # checks, whether the dropped high bits are zero.
        dram = w[5] if aw >= 32 else w[5][:aw]
        dram_high = Signal()    # ``dram >= 1 << aw``: outside the AXI address space
        m.d.comb += dram_high.eq(Cat(w[5], w[6])[aw:].any() if aw < 64 else 0)
        if aw > 32:
            dram = Cat(w[5], w[6][:aw - 32])
        dram_stride = w[7]
        ab = geo.addr_bits      # engine buffer address bits: buffer addresses wrap there
        ob = geo.out_bits

        pc = Signal(aw)
        # Commands left in the list: a count-down to zero instead of a 64-bit ``pc >= end``
        # compare, which was the routed critical path into the read DMA's command checks.
        n_left = Signal(32 - 5)
        error = Signal(8)
        m.d.comb += self.error_code.eq(error)

        # Engine done tracking: runs handed over minus done entries seen.
        runs = Signal(16)
        run_issued = Signal()
        m.d.comb += self.eng_done.ready.eq(1)
        eng_failed = Signal()
        got_done = self.eng_done.valid
        # A handed-over run is counted a cycle late, from a register: the handshake (the FSM
        # state and the engine's combinational ``i_cmd.ready``) in front of the 16-bit adder
        # was the routed ECP5 critical path. ``runs`` is only read in END and ABORT, reached
        # at least two cycles after a RUN, so the lag changes no decision.
        run_issued_q = Signal()
        m.d.sync += [run_issued_q.eq(run_issued), runs.eq(runs + run_issued_q - got_done)]
        with m.If(got_done & self.eng_done.payload.error):
            m.d.sync += eng_failed.eq(1)

        fault = Signal(8)
        m.d.comb += fault.eq(Mux(self.rd_error, ERRORS["dram_read"],
                                 Mux(self.wr_error, ERRORS["dram_write"],
                                     Mux(eng_failed, ERRORS["shape"], 0))))

        # Transfer counters shared by LOAD and STORE --------------------------------------------
        # DMA commands still to issue, counted down from ``outer``: ``!= 0`` is an OR tree,
        # where ``issued < outer`` was a 32-bit comparator in front of the DMA's command checks
        # and request queue (the routed ECP5 critical path).
        n_todo = Signal(32)
        dram_next = Signal(aw)      # address of the next DMA command
        # Outer iterations still to move, read requests still to issue and DMA writes still
        # to complete, all counted down from ``outer`` like ``n_todo``: a test for zero (or
        # one) instead of a 32-bit compare with ``outer``.
        n_data = Signal(32)
        # Those counts' tests for zero (and ``n_data``'s for one) as flip-flops set with them
        # (``load``, ``count_down``): a 32-bit OR tree in front of ``valid`` outputs and state
        # changes was a level or two on most of the controller's paths. Exact at every cycle.
        is_zero, is_one = {}, {}

        def flags(cnt, one=False):
            is_zero[cnt.name] = Signal(init=1, name=f"{cnt.name}_zero")
            if one:
                is_one[cnt.name] = Signal(name=f"{cnt.name}_one")

        def load(cnt, value, zero=None, one=None):
            # ``zero`` / ``one``: ``value == 0`` / ``== 1`` when already known (flip-flops).
            stmts = [cnt.eq(value), is_zero[cnt.name].eq(value == 0 if zero is None else zero)]
            if cnt.name in is_one:
                stmts.append(is_one[cnt.name].eq(value == 1 if one is None else one))
            return stmts

        def count_down(cnt):
            stmts = [cnt.eq(cnt - 1), is_zero[cnt.name].eq(cnt == 1)]
            if cnt.name in is_one:
                stmts.append(is_one[cnt.name].eq(cnt == 2))
            return stmts

        flags(n_todo)
        flags(n_data, one=True)
        flags(n_left)
        # Item (LOAD) or byte (STORE) within the iteration: ``inner`` is checked below
        # ``1 << LEN_WIDTH`` before either starts.
        idx = Signal(LEN_WIDTH)
        col = Signal(range(max(2, cols)))
        base = Signal(ab)
        drow = Signal(ab)           # ``deal``: the item's row in its column (item // cols)
        # The write's buffer address, ``base + Mux(deal, drow, idx)``, kept as a register
        # stepped with them: the engine's write ``ready`` tests the address's half, and the
        # adder in front of it ran on into the read DMA's beat handshake (the routed ECP5
        # critical path, 16.8 ns with the floorplan).
        waddr = Signal(ab)
        # ``deal`` rotates a column per outer iteration (item ``j`` of iteration ``t`` is
        # column ``(j - t) % cols``'s, so that spatially clustered work spreads over the
        # columns, see ``output_places``): the iteration's first column ``(-t) % cols`` and
        # the item's place in its row (``j % cols``, which steps the row at ``cols - 1``).
        col0 = Signal(range(max(2, cols)))
        dk = Signal(range(max(2, cols)))
        xfer_len = Signal(LEN_WIDTH + 1)
        m.d.comb += xfer_len.eq(inner << item_log2)
        # The same, registered, for the DMA read commands: the words are stable from DECODE
        # on, so it is valid from LOAD's first cycle, and the variable shift is no longer in
        # front of the DMA reader's command checks.
        xfer_len_q = Signal.like(xfer_len)
        m.d.sync += xfer_len_q.eq(xfer_len)

        # LOAD data path: beat register split into items.
        beat = Signal(beat_bits)
        beat_full = Signal()
        offset = Signal(range(beat_bytes + 1))
        item = Signal(geo.wr_data_width)
        mask = Signal(beat_bits)    # an item's bits, ``(1 << (8 << item_log2)) - 1`` (below)
        shifted = Signal(beat_bits)
        # Bytes of the beat not yet written (its ``count`` less ``offset``), kept as its own
        # register, and one item's bytes registered from the command words (stable from
        # DECODE on, so valid from LOAD's first cycle): the test "this write drains the
        # beat" is then a small compare of flip-flops. As ``offset + (n << item_log2) >=
        # count`` it ran from the command words through two adders into the read
        # DMA's ``ready`` and the beat registers' enables (the routed ECP5 critical path).
        beat_rem = Signal(range(beat_bytes + 1))
        item_bytes_q = Signal(range(beat_bytes + 1))
        m.d.sync += item_bytes_q.eq(Mux(item_log2 <= beat_log2, 1 << item_log2, 0))
        # The same for the iteration's last item with one item per write: ``idx == inner - 1``
        # (LOAD runs with ``1 <= inner < 1 << LEN_WIDTH``), not ``idx + 1 == inner``, whose
        # adder fed the same ``ready`` (the next critical path). The next ``ld_last``
        # (``idx + 1 == inner - 1``) without the adder: ``idx`` equal to a registered
        # ``inner - 2``, when ``inner - 1`` is not 0.
        inner_m2_q = Signal(LEN_WIDTH)
        inner_m1_nz = Signal()
        m.d.sync += [inner_m2_q.eq(inner - 2), inner_m1_nz.eq((inner - 1)[:LEN_WIDTH] != 0)]
        # And that equality itself as a flip-flop, ``ld_last``, set with ``idx`` (the compare
        # in front of the read slice's enables was the next path).
        ld_last = Signal()
        # ``beat_rem <= item_bytes_q`` (one item per write: the write drains the beat) as a
        # flip-flop too, set with ``beat_rem``.
        beat_one = Signal()
        # Several activation/weight words per write (``load_lanes``): as many as are left in
        # the beat and in the iteration, so that loads keep up with beats of several words.
        lanes = cfg.load_lanes
        more = Signal(max(1, (lanes - 1).bit_length()))
        n_items = Signal(range(lanes + 1))     # items this write
        if lanes > 1:
            lb = lanes.bit_length()
            multi = Signal()    # an ACT/WGT item of the size of the engine's lane layout
            m.d.comb += multi.eq(
                ((target == Target.ACT)
                 & (item_log2 == (geo.act_item_bits // 8).bit_length() - 1))
                | ((target == Target.WGT)
                   & (item_log2 == (geo.wgt_item_bits // 8).bit_length() - 1)))
            left_beat = Signal(range(beat_bytes + 1))
            m.d.comb += left_beat.eq(beat_rem >> item_log2)
            left_iter = Signal(LEN_WIDTH)
            m.d.comb += left_iter.eq(inner - idx)
            nb = Mux(left_beat >= lanes, lanes, left_beat[:lb])
            ni = Mux(left_iter >= lanes, lanes, left_iter[:lb])
            m.d.comb += [n_items.eq(Mux(multi, Mux(nb < ni, nb, ni), 1)),
                         more.eq(n_items - 1)]
        else:
            m.d.comb += n_items.eq(1)
        m.d.comb += item.eq(Mux(more != 0, shifted, shifted & mask))
        wr = self.eng_wr.payload
        m.d.comb += [
            # ``deal`` steps the column per item and the row per wrap of the columns (it
            # excludes ``chan``/``bcast``, checked at DECODE, and ACT/WGT, so it writes one
            # item at a time).
            wr.target.eq(target), wr.bank.eq(bank), wr.addr.eq(waddr),
            wr.data.eq(item), wr.col.eq(Mux(chan | deal, col, col_field)),
            wr.bcast.eq(~chan & bcast), wr.more.eq(more),
        ]

        # STORE data path: bytes packed into beats. A dealt STORE reads whole rows (all
        # columns at one address: ``cols`` consecutive DRAM bytes) when a row fits a beat a
        # whole number of times: every iteration starts a beat at byte 0, so each row lands
        # at a multiple of ``cols`` and never straddles two beats. Any other STORE reads
        # output-bank words (``out_word`` bytes of one column) when its first bank address
        # and ``buf_stride`` are multiples of ``out_word`` (``st_word``, from DECODE): every
        # iteration starts at a word and at byte 0 of a beat, and ``out_word`` divides the
        # beat, so each word lands at a multiple of ``out_word``. Otherwise byte by byte.
        rows = geo.store_rows
        ow = cfg.out_word
        lgw = (ow - 1).bit_length()
        st_word = Signal()
        aw8 = cfg.act_width
        pack = Signal(beat_bits)
        pack_full = Signal()
        rq_n = Signal(32)           # read requests: iterations left
        flags(rq_n)
        rq_zero = [Signal(init=1, name=f"rq_n_zero_c{g}", attrs=LOCAL_COPY) for g in range(4)]
        rq_col = Signal(range(max(2, cols)))
        rq_base = Signal(ob)
        rq_addr = Signal(ob)        # the request's bank address, stepped as ``waddr``
        rq_col0 = Signal(range(max(2, cols)))   # ``deal``: as ``col0`` and ``dk`` (LOAD)
        rq_k = Signal(range(max(2, cols)))
        # ``deal`` with row reads: the row (columns 0..cols-1) of iteration ``t`` goes to the
        # beat rotated by ``t % cols`` (DRAM byte ``q`` of the row is column ``(q - t) %
        # cols``'s), counted per iteration of the returned data.
        st_rot = Signal(range(max(2, cols)))
        wr_left = Signal(32)
        flags(wr_left)
        m.d.comb += [
            self.eng_rd.payload.col.eq(rq_col),
            self.eng_rd.payload.addr.eq(rq_addr),
            self.eng_rd.payload.row.eq(deal if rows else 0),
            self.eng_rd.payload.word.eq(st_word),
        ]
        # Full beats leave through a register slice (``SkidBuffer``): the packing sees the
        # slice's registered ``ready``, not the write DMA's (its ``in_left`` -> pack ->
        # ``n_data`` was the routed critical path), and the slice holds two beats, so the
        # packing of the next write's first beat goes on while the write DMA takes its next
        # command. Outside STORE the slice is drained and its beats dropped (an aborted
        # STORE's leftovers must not reach the next one).
        m.submodules.wr_skid = wr_skid = SkidBuffer(beat_bits)
        m.d.comb += [wr_skid.i.payload.eq(pack), wr_skid.o.ready.eq(1),
                     self.wr_data.payload.data.eq(wr_skid.o.payload)]
        # Bytes per read: a row of ``cols`` or a word of ``out_word`` (the iteration's last
        # may be shorter), else one.
        # ``idx + rstep >= inner`` ends an iteration, from registers only (off the write DMA
        # -> packing path).
        # A flip-flop loaded from ``deal``'s and ``st_word``'s next values (below), so equal
        # to the function of the two at every cycle: ``deal`` is a command word's bit with
        # a fanout of about a hundred, and the step sat in front of the iteration-end tests.
        rstep = Signal(range(max(cols, ow) + 1), init=1)

        def rstep_of(deal_v, st_word_v):
            return Mux(deal_v, cols if rows else 1, Mux(st_word_v, ow, 1))
        st_word_dec = Signal()      # ``st_word`` as DECODE sets it
        m.d.comb += st_word_dec.eq(~deal & (buf_addr[:lgw] == 0)
                                   & (buf_stride[:lgw] == 0) if ow > 1 else 0)
        # Bytes left in the iteration, counted down from ``inner``, on both sides (requests
        # and returned data): "the iteration ends" is ``left <= rstep``, an OR tree over the
        # high bits and a compare of a few low ones, where ``idx + rstep >= inner`` put a
        # 24-bit adder and comparator in front of the packing's enables (70 MHz alone).
        # Likewise the room left in the beat, ``pack_room``.
        rq_left = Signal(LEN_WIDTH + 1)
        st_left = Signal(LEN_WIDTH + 1)
        pack_room = Signal(range(beat_bytes + 1))
        # The bytes of the slot the next read fills (``rstep`` bytes), and
        # those of a beat's first slot (``rstep > j``, registered: ``rstep`` is stable from
        # DECODE on, and STORE starts three cycles later).
        pack_span = Signal(beat_bytes)
        pack_low = Signal(beat_bytes)
        rsb = max(cols, ow).bit_length()

        # "The iteration ends" (``left <= rstep``) itself as a flip-flop set with each count
        # (``rq_ends``, ``st_ends``): a step of ``rstep`` from a count above it ends the
        # iteration when the count is at most ``2 * rstep``, a test of its high bits' zero
        # flag (``hi_zero``: bits ``rsb + 1`` on, set with the count: an OR tree over 22
        # bits) and a compare of its low ones with ``rstep2``; a reload with ``inner`` ends
        # it when ``inner_ends``. Both registered: ``rstep`` and ``inner`` are stable from
        # DECODE on, and STORE_CHECK2 loads the flags for STORE. (As the compare of the count
        # with ``rstep`` the test was two LUTs in front of every request and packing
        # register, the next families alone: ``rq_left`` -> ``rq_n``, ``rq_base``.)
        hi_zero = {left.name: Signal(init=1, name=f"{left.name}_hi_zero")
                   for left in (rq_left, st_left)}
        rq_ends = Signal()
        st_ends = Signal()
        left_ends = {rq_left.name: rq_ends, st_left.name: st_ends}
        rstep2 = Signal(rsb + 2)
        inner_ends = Signal()
        m.d.sync += rstep2.eq(rstep << 1)

        def left_values(left, reload):
            """The count's next value, high bits' zero flag and end flag."""
            if reload:
                return inner, inner_hi_zero, inner_ends
            return (left - rstep, (left - rstep)[rsb + 1:len(left)] == 0,
                    hi_zero[left.name] & (left[:rsb + 1] <= rstep2))

        def set_left(left, values):
            value, high_zero, end = values
            return [left.eq(value), hi_zero[left.name].eq(high_zero),
                    left_ends[left.name].eq(end)]

        def reload_left(left):
            return set_left(left, left_values(left, True))

        def step_left(left):
            return set_left(left, left_values(left, False))

        rstep_fills = Signal()
        m.d.comb += rstep_fills.eq(rstep == beat_bytes)
        with m.If(self.wr_done):
            m.d.sync += count_down(wr_left)
        # The output window's end and the STORE's end, in ``aw + 1``-bit-wide terms: an
        # address at or above ``1 << aw`` is refused anyway, so only whether the window's
        # base is there (``y_high``) and whether the span got there (``span_big``) is kept.
        y_high = Signal()
        m.d.comb += y_high.eq(self.y_addr[aw:].any() if aw < 64 else 0)
        y_low = self.y_addr[:aw]
        win_end = Signal(max(aw, 32) + 1)
        st_end = Signal(max(aw, LEN_WIDTH) + 2)
        # (outer - 1) * dram_stride by shift-and-add, one bit per cycle: a STORE is checked
        # once, and a 32x32 multiplier would take four DSP blocks of a small FPGA. ``mul_a``
        # and ``span`` saturate into sticky flags at ``1 << aw``.
        span = Signal(aw)
        span_big = Signal()
        mul_a = Signal(aw)
        mul_a_big = Signal()
        mul_b = Signal(32)
        mul_b_zero = Signal(init=1)     # ``mul_b == 0``, as ``is_zero``
        # The range check's verdict as a flip-flop: formed from registers in STORE_CHECK's
        # last cycle (``mul_b == 0``), so STORE_CHECK2's ``error`` enable and next state read
        # one flip-flop. The compares in STORE_CHECK2 itself (DECODE words, ``span_big``,
        # three carry chains -> ``error``'s clock enable) were the routed ECP5 critical path.
        # ``win_end`` comes from DECODE and ``st_end`` grows with ``span`` (started at
        # ``dram + inner`` in DECODE, ``+ mul_a`` whenever ``span`` takes it), so both are
        # registers by then: same states, same cycles.
        bad_range = Signal()
        # Its terms of the window's base alone, set in DECODE (the compare with ``y_addr``'s
        # register, in front of ``bad_range`` with the others, was the next path alone).
        base_bad = Signal()

        resetting = Signal()
        abort_sent = Signal()

        # The FSM one-hot, one flip-flop per state, instead of ``m.FSM()``'s binary state: a
        # state test is then a flip-flop, not a decode of four bits in front of every enable
        # (the decode was the first level of most of the controller's worst paths). Each
        # state picks its successor on its own (``goto``, later calls win as ``m.next``'s),
        # and a state's flip-flop ORs only the states that lead to it, rather than a priority
        # chain over every transition of the FSM. Same transitions, same cycles.
        states = ("IDLE", "FETCH", "FETCH_DATA", "DECODE", "LOAD", "RUN", "STORE_CHECK",
                  "STORE_CHECK2", "STORE", "END", "ABORT", "FINISH")
        state = Signal(data.StructLayout({name: 1 for name in states}), init={"IDLE": 1})
        succ = {name: Signal(len(states), init=1 << i, name=f"succ_{name.lower()}")
                for i, name in enumerate(states)}
        state_next = Signal(len(states))
        m.d.comb += state_next.eq(
            Cat(*(Cat(*(state[src] & succ[src][i] for src in states)).any()
                  for i in range(len(states)))))
        m.d.sync += state.as_value().eq(state_next)
        # LOAD's beat register enable reads the state, ``beat_full``, ``beat_one`` and
        # ``ld_last``: each quarter of ``beat`` reads its own copies (``LOCAL_COPY``, equal to
        # them at every cycle), so no single net fans out to the 128 enables.
        # With one item per write the beat register shifts itself as items leave, so the
        # item is always at bit 0 (``shifted`` is ``beat``) and each quarter reads its own
        # copy of the item size (``log2``, registered: the words are stable from DECODE on).
        # A byte shifter by ``offset`` between ``beat`` and the write payload was 3-4 LUTs
        # in front of the engine's write slice (``offset`` -> ``wr_slice``, a routed ECP5
        # path of ``default``'s top). Several items per write keep the shifter (``offset``,
        # a copy per quarter).
        copied = [("loading", 1), ("beat_full", 1), ("beat_one", 1), ("ld_last", 1),
                  ("offset", offset.shape()) if lanes > 1 else ("log2", 3)]
        beat_c = [{name: Signal(shape, name=f"{name}_c{k}", attrs=LOCAL_COPY)
                   for name, shape in copied}
                  for k in range(min(4, beat_bytes))]
        part = -(-beat_bits // len(beat_c))
        if lanes > 1:
            for k, c in enumerate(beat_c):
                m.d.comb += shifted[k * part:(k + 1) * part].eq(
                    (beat >> (c["offset"] << 3))[k * part:(k + 1) * part])
        else:
            m.d.comb += shifted.eq(beat)
            m.d.sync += [c["log2"].eq(item_log2) for c in beat_c]
        m.d.sync += [c["loading"].eq(state_next[states.index("LOAD")]) for c in beat_c]

        def set_copies(name, value):
            return [c[name].eq(value) for c in beat_c if name in c]
        in_state = []

        @contextmanager
        def when(name):
            with m.If(state[name]):
                in_state.append(name)
                try:
                    yield
                finally:
                    in_state.pop()

        def goto(name):
            m.d.comb += succ[in_state[-1]].eq(1 << states.index(name))

        # ``storing``: the FSM is in STORE, as a flip-flop of its own for the packing below
        # (the state decode shared with every other state's logic, in front of the packing
        # register, was the controller's own critical path out of context).
        storing = Signal()
        # ``pack``'s byte enables read ``storing``, ``pack_full`` and the beat slice's skid
        # flag (its ``i.ready``): each group of ``pack``'s bytes reads its own copies of the
        # three, kept equal to them at every cycle (``LOCAL_COPY``), so that no single net
        # fans out to all of ``pack``'s flip-flops (routing was most of those paths).
        n_copies = min(4, beat_bytes)
        storing_c = [Signal(name=f"storing_c{k}", attrs=LOCAL_COPY) for k in range(n_copies)]
        full_c = [Signal(name=f"pack_full_c{k}", attrs=LOCAL_COPY) for k in range(n_copies)]
        skid_c = [Signal(name=f"skid_full_c{k}", attrs=LOCAL_COPY) for k in range(n_copies)]

        def set_storing(value):
            return [storing.eq(value), *(c.eq(value) for c in storing_c)]

        def set_pack_full(value):
            return [pack_full.eq(value), *(c.eq(value) for c in full_c)]

        def check_abort():
            # Later statements win: a soft reset or a fault overrides the state's own next.
            with m.If(self.soft_reset):
                m.d.sync += [resetting.eq(1), *set_storing(0)]
                goto("ABORT")
            with m.Elif(fault != 0):
                m.d.sync += [error.eq(fault), *set_storing(0)]
                goto("ABORT")

        # DMA command payloads: selected by the state alone, not under the conditions that
        # raise ``valid`` (``n_left``/``n_todo != 0``), which put those counters in front of
        # the DMA decode stage's adders (the routed critical path after the DMA changes). A
        # payload without ``valid`` is ignored, so this changes no transfer. FETCH's flag
        # in more copies (``LOCAL_COPY``, equal to it at every cycle): one for the ``pc`` and
        # ``n_left`` enables, and one for each quarter of these payload multiplexers (the read
        # address's halves, the length's), so that none waits on the others' wires: one copy
        # fanned out to all of them was in front of the read DMA's decode checks (a routed
        # ECP5 critical path of ``default``'s top, into ``rdma.cmd_dec``).
        fetching = [Signal(name=f"fetching_c{k}", attrs=LOCAL_COPY) for k in range(4)]
        fetch_en = Signal(attrs=LOCAL_COPY)
        m.d.sync += [*(c.eq(state_next[states.index("FETCH")]) for c in fetching),
                     fetch_en.eq(state_next[states.index("FETCH")])]
        rd_len = Signal.like(xfer_len_q)
        # The write length: ``inner`` registered in DECODE, so that the write DMA's decode
        # stage starts at a flip-flop of its own (from ``words``, fanned out across the
        # controller, it was a routed ECP5 path into ``wdma.cmd_dec``). STORE, the only state
        # with ``wr_cmd.valid``, follows DECODE, and ``words`` changes only in FETCH_DATA.
        wr_len = Signal.like(inner, attrs=LOCAL_COPY)
        ha, hl = aw // 2, len(rd_len) // 2
        m.d.comb += [
            self.rd_cmd.payload.addr[:ha].eq(Mux(fetching[0], pc[:ha], dram_next[:ha])),
            self.rd_cmd.payload.addr[ha:].eq(Mux(fetching[1], pc[ha:], dram_next[ha:])),
            rd_len[:hl].eq(Mux(fetching[2], COMMAND_BYTES, xfer_len_q)[:hl]),
            rd_len[hl:].eq(Mux(fetching[3], COMMAND_BYTES, xfer_len_q)[hl:]),
            self.rd_cmd.payload.length.eq(rd_len),
            self.wr_cmd.payload.addr.eq(dram_next),
            self.wr_cmd.payload.length.eq(wr_len),
        ]

        # Command fetch assembly.
        fetch_idx = Signal(range(COMMAND_BYTES // min(beat_bytes, COMMAND_BYTES) + 1))
        step = min(beat_bits, 256)          # command bits per fetched beat
        fetch_we = [Signal(name=f"fetch_we{i}") for i in range(max(1, 256 // step))]
        # ``deal`` (bit 13 of the first word) is written with the first beat, ``st_word`` in
        # DECODE.
        m.d.sync += rstep.eq(rstep_of(Mux(fetch_we[0], self.rd_data.payload.data[13], deal),
                                      Mux(state.DECODE, st_word_dec, st_word)))

        # DECODE's command checks from flip-flops: each test of one command word is a flip-flop
        # equal to that test of the word at every cycle (loaded with the test of the fetched
        # beat's part as the word is written, ``word_test``), and DECODE only combines them.
        # The tests of the words themselves (``xfer_len``'s shift and compare, 32-bit zero
        # tests) in front of DECODE's transition and ``error`` enable were the block's longest
        # paths.
        def word_test(j, test, init, width=1):
            """``test(w[j])`` as a flip-flop; ``init`` is ``test`` of 0 (the reset words)."""
            flag = Signal(width, init=init, attrs=LOCAL_COPY)
            c, lo = j * 32 // step, j * 32 % step
            part = self.rd_data.payload.data[lo:lo + 32]
            m.d.sync += flag.eq(Mux(fetch_we[c], test(part), flag))
            return flag

        def col_bad(v, *modes):
            return ~Cat(*(v[b] for b in modes)).any() & (v[16:32] >= cols)

        bad_w0 = {
            "load_mode": word_test(0, lambda v: (v[9] & v[7]) | (v[13] & (
                v[9] | v[7] | (v[4:7] == Target.ACT) | (v[4:7] == Target.WGT))), 0),
            "store_mode": word_test(0, lambda v: v[7] | (v[4:7] != 0) | (v[13] & v[9]), 0),
            "log2": word_test(0, lambda v: v[10:13] > beat_log2, 0),
            "load_col": word_test(0, lambda v: col_bad(v, 9, 7, 13), 0),
            "store_col": word_test(0, lambda v: col_bad(v, 9, 13), 0),
        }
        inner_zero = word_test(3, lambda v: v == 0, 1)
        # The item mask from flip-flops too: byte ``b`` of it is set when ``b.bit_length() <=
        # item_log2 <= beat_log2``, one flag per threshold. Decoded from the words, it was a
        # routed ECP5 critical path of ``default``'s top, from ``words`` through the write
        # payload into the write slice's registers.
        def mask_test(v, t):
            # (No compare that is constant for the field's width: Verilator's lint refuses it.)
            lg = v[10:13]
            return Cat(*([lg >= t] if t else []), *([lg <= beat_log2] if beat_log2 < 7 else []),
                       Const(1, 1)).all()
        mask_at = [word_test(0, lambda v, t=t: mask_test(v, t), int(t == 0))
                   for t in range(beat_log2 + 1)]
        m.d.comb += mask.eq(Cat(*(mask_at[(i // 8).bit_length()] for i in range(beat_bits))))
        outer_zero = word_test(4, lambda v: v == 0, 1)
        # DECODE's loads of the counters' flags from flip-flops too (``outer == 1``, ``inner
        # == 1``, ``inner``'s high bits zero): as tests of ``words`` they were 3 LUTs after
        # the words' wide nets (``words`` -> ``rq_left_hi_zero``, the next paths alone).
        outer_one = word_test(4, lambda v: v == 1, 0)
        inner_one = word_test(3, lambda v: v == 1, 0)
        inner_hi_zero = word_test(3, lambda v: v[rsb + 1:LEN_WIDTH + 1] == 0, 1)
        m.d.sync += inner_ends.eq(inner_hi_zero & (inner[:rsb + 1] <= rstep))
        # DECODE's own copies of the opcode and item size: the words' flip-flops fan out
        # across the controller, and their wires (3 ns) were in front of the next state.
        dec_op = word_test(0, lambda v: v[0:4], 0, width=4)
        dec_log2 = word_test(0, lambda v: v[10:13], 0, width=3)
        inner_big = word_test(3, lambda v: v[LEN_WIDTH:] != 0, 0)
        # ``xfer_len > 1 << LEN_WIDTH`` for each ``item_log2``, picked by it in DECODE.
        xfer_big = Signal(8)
        for lg in range(8):
            m.d.comb += xfer_big[lg].eq(word_test(
                3, lambda v, lg=lg: (v << lg)[:LEN_WIDTH + 1] > (1 << LEN_WIDTH), 0))
        bad = {
            "load_mode": bad_w0["load_mode"],
            "empty": inner_zero | outer_zero,
            "load_size": (bad_w0["log2"] | xfer_big.bit_select(dec_log2, 1) | inner_big
                          | bad_w0["load_col"]),
            "store_mode": bad_w0["store_mode"],
            "store_size": inner_big | bad_w0["store_col"],
        }

        # Busy in every state but IDLE and FINISH: with one flip-flop per state that is one
        # LUT of two flip-flops. Set state by state, it was an OR of ten that yosys shared
        # with the next-state logic, and ``start`` (through ``busy``) clears the counters.
        m.d.comb += self.busy.eq(~state.IDLE & ~state.FINISH)
        with when("IDLE"):
            with m.If(self.start):
                m.d.sync += [error.eq(0), self.done.eq(0), pc.eq(self.cmd_addr),
                             *load(n_left, self.cmd_len[5:]), eng_failed.eq(0)]
                with m.If((self.cmd_addr[0:5] != 0) | (self.cmd_len[0:5] != 0)
                          | (self.cmd_len == 0)):
                    m.d.sync += error.eq(ERRORS["misaligned"])
                    goto("FINISH")
                with m.Else():
                    goto("FETCH")
            with m.Elif(self.soft_reset):
                m.d.sync += [error.eq(0), self.done.eq(0)]

        with when("FETCH"):
            with m.If(is_zero["n_left"]):
                m.d.sync += error.eq(ERRORS["command"])
                goto("ABORT")
            with m.Else():
                m.d.comb += self.rd_cmd.valid.eq(1)
                with m.If(self.rd_cmd.ready):
                    goto("FETCH_DATA")
            check_abort()
        with m.If(fetch_en & ~is_zero["n_left"] & self.rd_cmd.ready):
            # (``words`` is not cleared: the command's beats overwrite all of it, and a
            # clear enabled by ``rd_cmd.ready`` fanned out to its 256 flip-flops.)
            m.d.sync += [pc.eq(pc + COMMAND_BYTES), *count_down(n_left), fetch_idx.eq(0)]

        # The command words (``words``, ``eng_words``) a 32-bit word at a time, each enabled
        # from its own copies of FETCH_DATA's flag and of ``fetch_idx`` one-hot (``LOCAL_COPY``,
        # equal to them at every cycle): one write enable per beat fanned out to 290
        # flip-flops was 5 ns of wire (the next path alone).
        n_fetch = max(1, 256 // step)
        fetch_c = [Signal(name=f"fetching_data_c{j}", attrs=LOCAL_COPY) for j in range(8)]
        slot_c = [Signal(n_fetch, init=1, name=f"fetch_slot_c{j}", attrs=LOCAL_COPY)
                  for j in range(8)]
        m.d.sync += [c.eq(state_next[states.index("FETCH_DATA")]) for c in fetch_c]
        for j in range(8):
            w_beat, w_lo = j * 32 // step, j * 32 % step
            with m.If(fetch_en & ~is_zero["n_left"] & self.rd_cmd.ready):
                m.d.sync += slot_c[j].eq(1)
            with m.If(fetch_c[j] & self.rd_data.valid):
                m.d.sync += slot_c[j].eq(slot_c[j] << 1)
                with m.If(slot_c[j][w_beat]):
                    w_data = self.rd_data.payload.data[w_lo:w_lo + 32]
                    m.d.sync += words[32 * j:32 * (j + 1)].eq(w_data)
                    if 1 <= j <= 4:
                        m.d.sync += eng_words[32 * (j - 1):32 * j].eq(w_data)

        with when("FETCH_DATA"):
            m.d.comb += [self.rd_data.ready.eq(1)]
            with m.If(self.rd_data.valid):
                with m.Switch(fetch_idx):
                    for i in range(n_fetch):
                        with m.Case(i):
                            m.d.comb += fetch_we[i].eq(1)
                m.d.sync += fetch_idx.eq(fetch_idx + 1)
                with m.If(self.rd_data.payload.last):
                    goto("DECODE")
            check_abort()

        # DECODE's loads (about 500 flip-flops) in four groups, each enabled by its own copy
        # of DECODE's flag (``LOCAL_COPY``, equal to it at every cycle): with the state's
        # flip-flop fanned out to all of them, its wire to the FSM's own next-state logic was
        # 3.7 ns, the controller's worst path alone (ECP5, speed grade 6).
        decoding = [Signal(name=f"decoding_c{k}", attrs=LOCAL_COPY) for k in range(4)]
        m.d.sync += [c.eq(state_next[states.index("DECODE")]) for c in decoding]
        dec_loads = [*load(n_data, outer, outer_zero, outer_one), idx.eq(0), col.eq(0),
                     ld_last.eq(inner_one), *set_copies("ld_last", inner_one),
                     base.eq(buf_addr), waddr.eq(buf_addr), drow.eq(0),
                     col0.eq(0), dk.eq(0), rq_col0.eq(0), rq_k.eq(0), st_rot.eq(0),
                     beat_full.eq(0), *set_copies("beat_full", 0),
                     offset.eq(0), *set_copies("offset", 0),
                     *set_pack_full(0), *load(rq_n, outer, outer_zero),
                     *(z.eq(outer_zero) for z in rq_zero),
                     pack_room.eq(beat_bytes), *reload_left(rq_left), *reload_left(st_left),
                     rq_col.eq(Mux(chan | deal, 0, col_field)),
                     rq_base.eq(buf_addr), rq_addr.eq(buf_addr), *load(wr_left, outer, outer_zero),
                     st_word.eq(st_word_dec),
                     span.eq(0), span_big.eq(0), mul_a.eq(dram_stride),
                     mul_a_big.eq(dram_stride[aw:].any() if aw < 32 else 0),
                     mul_b.eq(outer - 1), mul_b_zero.eq(outer_one),
                     win_end.eq(y_low + self.y_len), st_end.eq(dram + inner),
                     base_bad.eq(dram_high | y_high | (dram < y_low)),
                     wr_len.eq(inner)]
        for k, c in enumerate(decoding):
            with m.If(c):
                m.d.sync += dec_loads[k::len(decoding)]
        # The DMA commands' count and address (``n_todo``, ``dram_next``) in slices, each
        # stepped by its own handshake term, from copies of LOAD's and STORE's flags and of
        # ``n_todo``'s zero test (``LOCAL_COPY``, equal to them at every cycle): one handshake
        # net into all 64 enables was 3.4 ns of wire after two LUTs (the next path alone).
        issuing_ld = [Signal(name=f"issuing_ld_c{k}", attrs=LOCAL_COPY) for k in range(4)]
        issuing_st = [Signal(name=f"issuing_st_c{k}", attrs=LOCAL_COPY) for k in range(4)]
        todo_zero = [Signal(init=1, name=f"n_todo_zero_c{k}", attrs=LOCAL_COPY)
                     for k in range(4)]
        m.d.sync += [*(c.eq(state_next[states.index("LOAD")]) for c in issuing_ld),
                     *(c.eq(state_next[states.index("STORE")]) for c in issuing_st)]
        todo_dec, addr_inc = n_todo - 1, dram_next + dram_stride
        for k in range(4):
            ts = slice(k * 8, (k + 1) * 8)
            ds = slice(k * -(-aw // 4), min(aw, (k + 1) * -(-aw // 4)))
            issue = ~todo_zero[k] & ((issuing_ld[k] & self.rd_cmd.ready)
                                     | (issuing_st[k] & self.wr_cmd.ready))
            flag = [is_zero["n_todo"]] if k == 0 else []
            with m.If(decoding[k]):
                # (``outer_zero`` is ``outer == 0`` as a flip-flop.)
                m.d.sync += [n_todo[ts].eq(outer[ts]), dram_next[ds].eq(dram[ds]),
                             *(f.eq(outer_zero) for f in [todo_zero[k], *flag])]
            with m.Elif(issue):
                m.d.sync += [n_todo[ts].eq(todo_dec[ts]), dram_next[ds].eq(addr_inc[ds]),
                             *(f.eq(n_todo == 1) for f in [todo_zero[k], *flag])]
        with when("DECODE"):
            with m.Switch(dec_op):
                with m.Case(Op.END):
                    goto("END")
                with m.Case(Op.LOAD):
                    # Mode combinations are refused even when nothing would move, as
                    # the reference executor (cmdsim) does. ``deal`` writes one item per
                    # cycle, so not the ACT/WGT items that go several to a write.
                    with m.If(bad["load_mode"]):
                        m.d.sync += error.eq(ERRORS["command"])
                        goto("ABORT")
                    with m.Elif(bad["empty"]):
                        goto("FETCH")
                    with m.Elif(bad["load_size"]):
                        m.d.sync += error.eq(ERRORS["command"])
                        goto("ABORT")
                    with m.Else():
                        goto("LOAD")
                with m.Case(Op.RUN):
                    goto("RUN")
                with m.Case(Op.STORE):
                    with m.If(bad["store_mode"]):
                        m.d.sync += error.eq(ERRORS["command"])
                        goto("ABORT")
                    with m.Elif(bad["empty"]):
                        goto("FETCH")
                    with m.Elif(bad["store_size"]):
                        m.d.sync += error.eq(ERRORS["command"])
                        goto("ABORT")
                    with m.Else():
                        goto("STORE_CHECK")
                with m.Default():
                    m.d.sync += error.eq(ERRORS["command"])
                    goto("ABORT")

        with when("LOAD"):
            # Issue one DMA read per outer iteration.
            with m.If(~is_zero["n_todo"]):
                m.d.comb += self.rd_cmd.valid.eq(1)
            # Split beats into items; the next beat is taken as the last item of the
            # current one leaves, so one write per beat still moves every cycle.
            # (The handshakes read this state's own ``valid`` and ``ready`` terms, not the
            # ports, which other states drive too.)
            hs = beat_full & self.eng_wr.ready
            ends = ld_last if lanes == 1 else (idx + n_items == inner)
            step_bytes = item_bytes_q if lanes == 1 else n_items << item_log2
            drained = hs & ((beat_one if lanes == 1 else beat_rem <= step_bytes) | ends)
            rd_ready = ~beat_full | drained
            m.d.comb += [self.eng_wr.valid.eq(beat_full), self.rd_data.ready.eq(rd_ready)]
            # The column steps per iteration with ``chan`` (its wrap steps ``base``), per
            # item with ``deal`` (every ``cols`` items step the row; every iteration
            # starts again at row 0, ``buf_stride`` on, one column lower: ``col0``).
            step_col = Signal()
            m.d.comb += step_col.eq(hs & Mux(deal, 1, ends & chan))
            with m.If(step_col):
                with m.If(col == cols - 1):
                    m.d.sync += col.eq(0)
                    with m.If(~deal):
                        m.d.sync += base.eq(base + buf_stride)
                with m.Else():
                    m.d.sync += col.eq(col + 1)
            # ``waddr`` as the updates of ``base``, ``drow`` and ``idx`` here leave it: an
            # iteration's end starts at the next ``base``, a dealt row steps it by one,
            # else it moves by the items written.
            with m.If(hs):
                with m.If(ends):
                    nbase = Mux(~chan | (col == cols - 1), base + buf_stride, base)
                    m.d.sync += waddr.eq(nbase)
                with m.Elif(deal):
                    m.d.sync += waddr.eq(waddr + (dk == cols - 1))
                with m.Else():
                    m.d.sync += waddr.eq(waddr + n_items)
            with m.If(hs & deal):
                with m.If(dk == cols - 1):
                    m.d.sync += [dk.eq(0), drow.eq(drow + 1)]
                with m.Else():
                    m.d.sync += dk.eq(dk + 1)
            with m.If(hs):
                m.d.sync += [offset.eq(offset + step_bytes),
                             *set_copies("offset", offset + step_bytes), idx.eq(idx + n_items),
                             beat_rem.eq(beat_rem - step_bytes),
                             beat_one.eq(beat_rem - item_bytes_q <= item_bytes_q),
                             *set_copies("beat_one", beat_rem - item_bytes_q <= item_bytes_q),
                             ld_last.eq(inner_m1_nz & (idx == inner_m2_q)),
                             *set_copies("ld_last", inner_m1_nz & (idx == inner_m2_q))]
                with m.If(drained):
                    m.d.sync += [beat_full.eq(0), *set_copies("beat_full", 0)]
                with m.If(ends):
                    m.d.sync += [*count_down(n_data), idx.eq(0),
                                 ld_last.eq(inner_one),
                                 *set_copies("ld_last", inner_one)]
                    with m.If(~chan):
                        m.d.sync += base.eq(base + buf_stride)
                    with m.If(deal):
                        nxt = Mux(col0 == 0, cols - 1, col0 - 1)
                        m.d.sync += [col.eq(nxt), col0.eq(nxt), drow.eq(0), dk.eq(0)]
                    with m.If(is_one["n_data"]):
                        goto("FETCH")
            with m.If(self.rd_data.valid & rd_ready):
                m.d.sync += [beat_rem.eq(self.rd_data.payload.count),
                             beat_one.eq(self.rd_data.payload.count <= item_bytes_q),
                             *set_copies("beat_one", self.rd_data.payload.count <= item_bytes_q),
                             beat_full.eq(1), *set_copies("beat_full", 1), offset.eq(0),
                             *set_copies("offset", 0)]
                if lanes > 1:
                    m.d.sync += beat.eq(self.rd_data.payload.data)
            check_abort()
        if lanes == 1:
            # ``beat`` a quarter at a time, from the copies. A write that leaves items in
            # the beat shifts it by one item; otherwise (empty, or the write drains it) the
            # next beat is loaded: the select reads flip-flops only, the engine's ``ready``
            # is in the enable alone. (A drained beat with no beat behind it loads what
            # ``rd_data`` holds: ``beat_full`` is low then and that is never written.)
            for k, c in enumerate(beat_c):
                q = slice(k * part, (k + 1) * part)
                keep = c["beat_full"] & ~c["beat_one"] & ~c["ld_last"]
                step = Signal(part, name=f"beat_step_c{k}")
                with m.Switch(c["log2"]):
                    for lg in range(beat_log2 + 1):
                        with m.Case(lg):
                            m.d.comb += step.eq((beat >> (8 << lg))[q])
                with m.If(c["loading"] & Mux(c["beat_full"], self.eng_wr.ready,
                                             self.rd_data.valid)):
                    m.d.sync += beat[q].eq(Mux(keep, step, self.rd_data.payload.data[q]))

        with when("RUN"):
            m.d.comb += [self.eng_cmd.valid.eq(1),
                         self.eng_cmd.payload.eq(eng_words)]
            with m.If(self.eng_cmd.ready):
                m.d.comb += run_issued.eq(1)
                goto("FETCH")
            check_abort()

        with when("STORE_CHECK"):
            with m.If(mul_b_zero):
                goto("STORE_CHECK2")
        # The shift-and-add's registers, enabled by a copy of STORE_CHECK's flag
        # (``LOCAL_COPY``, equal to it at every cycle): the flag's fanout to about 130 enables
        # was the worst path at one seed.
        checking = Signal(attrs=LOCAL_COPY)
        m.d.sync += checking.eq(state_next[states.index("STORE_CHECK")])
        # A step adds ``mul_a`` where ``mul_b[0]`` (so ``mul_b != 0``). That addend,
        # ``Mux(mul_b[0], mul_a, 0)`` (and ``mul_a_big`` likewise), is a register loaded with
        # its next value from DECODE's loads and the step's shifts (``decoding_mul``, a copy of
        # DECODE's flag), so the adders start at flip-flops. The registers step in every
        # STORE_CHECK cycle (with ``mul_b`` zero, ``mul_a`` alone moves, and is not read
        # again before DECODE loads it), so their enable is ``checking`` itself.
        # (``checking & ~mul_b_zero & mul_b[0]`` fanned out to 64 enables, then a gating
        # term in front of the adders' 64 inputs, were the next paths alone.)
        decoding_mul = Signal(attrs=LOCAL_COPY)
        m.d.sync += decoding_mul.eq(state_next[states.index("DECODE")])
        addend = Signal(aw)
        addend_big = Signal()
        add_next = Mux(decoding_mul, ~outer[0], Mux(checking, mul_b[1], mul_b[0]))
        mul_a_next = Mux(decoding_mul, dram_stride[:aw], Mux(checking, mul_a << 1, mul_a))
        big_next = Mux(decoding_mul, dram_stride[aw:].any() if aw < 32 else 0,
                       Mux(checking, mul_a_big | mul_a[aw - 1], mul_a_big))
        m.d.sync += [addend.eq(Mux(add_next, mul_a_next, 0)),
                     addend_big.eq(add_next & big_next)]
        with m.If(checking):
            # ``st_end`` wraps only once ``span`` has: ``span_big`` refuses then.
            total = span + addend
            m.d.sync += [span.eq(total), st_end.eq(st_end + addend),
                         span_big.eq(span_big | addend_big | total[aw]),
                         mul_a.eq(mul_a << 1), mul_b.eq(mul_b >> 1),
                         mul_b_zero.eq(mul_b[1:] == 0),
                         mul_a_big.eq(mul_a_big | mul_a[aw - 1])]
            with m.If(mul_b_zero):
                m.d.sync += bad_range.eq(base_bad | span_big | (st_end > win_end)
                                         | (st_end > (1 << aw)))

        with when("STORE_CHECK2"):
            with m.If(bad_range):
                m.d.sync += error.eq(ERRORS["out_of_range"])
                goto("ABORT")
            with m.Else():
                m.d.sync += [*set_storing(1), pack_span.eq(pack_low), rq_ends.eq(inner_ends),
                             st_ends.eq(inner_ends)]
                goto("STORE")

        with when("STORE"):
            # One DMA write per outer iteration.
            with m.If(~is_zero["n_todo"]):
                m.d.comb += self.wr_cmd.valid.eq(1)
            # Read requests to the engine's output banks (their registers: below).
            with m.If(~is_zero["rq_n"]):
                m.d.comb += self.eng_rd.valid.eq(1)
            with m.If(is_zero["n_data"] & ~pack_full & is_zero["wr_left"]):
                m.d.sync += set_storing(0)
                goto("FETCH")
            check_abort()

        # The read requests' registers in four groups, each stepped by the request handshake
        # formed from its own copies of STORE's flag (``issuing_st``) and of ``rq_n``'s zero
        # test (``rq_zero``, ``LOCAL_COPY``): one handshake net into all of their enables was
        # 3-4 ns of wire (``rq_n``, ``rq_base`` and ``rq_addr``, the next families alone).
        def request_step(names):
            def keep(*stmts):
                return [st for st in stmts if st.lhs.name in names]
            # ``rq_addr`` as ``waddr`` in LOAD.
            with m.If(rq_ends):
                m.d.sync += keep(rq_addr.eq(Mux(deal | ~chan | (rq_col == cols - 1),
                                                rq_base + buf_stride, rq_base)))
            with m.Elif(deal):
                m.d.sync += keep(rq_addr.eq(rq_addr + (1 if rows else (rq_k == cols - 1))))
            with m.Else():
                m.d.sync += keep(rq_addr.eq(rq_addr + rstep))
            with m.If(rq_ends):
                m.d.sync += keep(*count_down(rq_n), *(z.eq(rq_n == 1) for z in rq_zero),
                                 *reload_left(rq_left))
                with m.If(deal):
                    nxt = Mux(rq_col0 == 0, cols - 1, rq_col0 - 1)
                    m.d.sync += keep(rq_col.eq(nxt), rq_col0.eq(nxt), rq_k.eq(0),
                                     rq_base.eq(rq_base + buf_stride))
                with m.Elif(~chan):
                    m.d.sync += keep(rq_base.eq(rq_base + buf_stride))
                with m.Elif(rq_col == cols - 1):
                    m.d.sync += keep(rq_col.eq(0), rq_base.eq(rq_base + buf_stride))
                with m.Else():
                    m.d.sync += keep(rq_col.eq(rq_col + 1))
            with m.Else():
                m.d.sync += keep(*step_left(rq_left))
                # Dealt bytes: byte j of iteration t is column (j - t) % cols's (a row
                # read takes the row's every column, the packing rotates it).
                if not rows:
                    with m.If(deal):
                        with m.If(rq_col == cols - 1):
                            m.d.sync += keep(rq_col.eq(0))
                        with m.Else():
                            m.d.sync += keep(rq_col.eq(rq_col + 1))
                        with m.If(rq_k == cols - 1):
                            m.d.sync += keep(rq_k.eq(0))
                        with m.Else():
                            m.d.sync += keep(rq_k.eq(rq_k + 1))
        rq_groups = [{rq_addr.name}, {rq_n.name, is_zero["rq_n"].name, rq_base.name},
                     {rq_left.name, hi_zero[rq_left.name].name, rq_ends.name},
                     {rq_col.name, rq_col0.name, rq_k.name}]
        for g, names in enumerate(rq_groups):
            with m.If(issuing_st[g] & ~rq_zero[g] & self.eng_rd.ready):
                request_step(names | {rq_zero[g].name})

        with when("END"):
            with m.If((runs == 0) & ~self.eng_busy & ~self.dma_busy):
                goto("FINISH")
            check_abort()

        with when("ABORT"):
            # Stop the DMA engines with one abort pulse (they drain what is in flight and stay
            # busy until then; a held abort would keep them draining) and let a running
            # tile end.
            m.d.comb += [self.dma_abort.eq(~abort_sent),
                         self.rd_data.ready.eq(1), self.eng_rd_data.ready.eq(1)]
            m.d.sync += abort_sent.eq(1)
            with m.If(abort_sent & ~self.dma_busy & ~self.eng_busy & (runs == 0)):
                m.d.sync += abort_sent.eq(0)
                goto("FINISH")

        with when("FINISH"):
            with m.If(resetting):
                m.d.sync += [resetting.eq(0), error.eq(0), self.done.eq(0)]
            with m.Else():
                m.d.comb += self.finished.eq(1)
                m.d.sync += self.done.eq(1)
            goto("IDLE")
        # The slice's skid flag, as ``SkidBuffer`` sets it.
        for c in skid_c:
            with m.If(~wr_skid.o.valid | wr_skid.o.ready):
                m.d.sync += c.eq(0)
            with m.Elif(wr_skid.i.valid & ~c):
                m.d.sync += c.eq(1)
        got = self.eng_rd_data.payload
        # Each column's value in its byte (its low 8 bits, zero-extended when ``act_width``
        # is narrower). A row's bytes past the iteration's end go into the beat too: the write
        # DMA's strobes cover ``inner`` bytes only.
        lw = min(aw8, 8)
        lanes8 = [Cat(got[aw8 * j:aw8 * j + lw], Const(0, 8 - lw)) for j in range(max(cols, ow))]
        # A dealt row rotated by ``st_rot`` (byte q = column (q - st_rot) % cols): a mux per
        # bit of the registered amount, from the engine's read register to the packing
        # register (no ``ready`` depends on it).
        rot8 = lanes8[:cols]
        for b in range((cols - 1).bit_length()):
            rot8 = [Mux(st_rot[b], rot8[(q - (1 << b)) % cols], rot8[q]) for q in range(cols)]
        # STORE counts a returned iteration (``n_data``) a cycle late, from a flip-flop set as
        # the iteration's last byte is packed: the engine's read ``valid`` -> packing handshake
        # -> ``n_data`` and its flags (66 flip-flops) was a routed ECP5 critical path of
        # ``default``'s top. STORE reads ``n_data`` only for its end (``n_data == 0`` with
        # ``pack_full`` low), and that last byte sets ``pack_full`` for the next cycle, the only
        # one in which the count lags: the end comes in the same cycle as before. (LOAD and
        # DECODE, the count's other users, come at least three cycles after STORE.)
        st_counted = Signal()
        m.d.sync += st_counted.eq(0)
        with m.If(st_counted):
            m.d.sync += count_down(n_data)
        with m.If(storing):
            # Pack returned bytes into beats; an iteration's last byte closes its beat. A
            # byte arriving as the full beat leaves starts the next one.
            flush = pack_full & wr_skid.i.ready
            pack_ready = ~pack_full | flush
            m.d.comb += [wr_skid.i.valid.eq(pack_full),
                         self.wr_data.valid.eq(wr_skid.o.valid),
                         wr_skid.o.ready.eq(self.wr_data.ready),
                         self.eng_rd_data.ready.eq(pack_ready)]
        # The packing's registers in four groups (``st_left``'s halves, the slot, the beat's
        # state), each stepped by the flush and the read handshake formed from its own
        # copies of ``storing``, ``pack_full`` and the slice's skid flag: one handshake net
        # into all of their enables was 3-4 ns of wire (``wr_skid`` -> ``st_left``, the next
        # family alone). The sums are formed from registers and only selected by the flush.
        def packing(g):
            g %= n_copies
            flush_g = full_c[g] & ~skid_c[g]
            take_g = storing_c[g] & self.eng_rd_data.valid & (~full_c[g] | ~skid_c[g])
            return storing_c[g] & flush_g, flush_g, take_g
        st_value, st_high_zero, st_end_next = (
            Mux(st_ends, a, b) for a, b in zip(left_values(st_left, True),
                                               left_values(st_left, False), strict=True))
        half = len(st_left) // 2
        _, _, take = packing(0)
        with m.If(take):
            m.d.sync += st_left[:half].eq(st_value[:half])
        _, _, take = packing(1)
        with m.If(take):
            m.d.sync += [st_left[half:].eq(st_value[half:len(st_left)]),
                         hi_zero[st_left.name].eq(st_high_zero), st_ends.eq(st_end_next)]
        flushing, flush, take = packing(2)
        with m.If(flushing):
            m.d.sync += [pack_room.eq(beat_bytes), pack_span.eq(pack_low)]
        with m.If(take):
            m.d.sync += [pack_span.eq(Mux(flush, pack_low << rstep, pack_span << rstep)),
                         pack_room.eq(Mux(flush, beat_bytes - rstep, pack_room - rstep))]
        flushing, flush, take = packing(3)
        with m.If(flushing):
            m.d.sync += set_pack_full(0)
        with m.If(take):
            with m.If(st_ends):
                m.d.sync += [st_counted.eq(1), st_rot.eq(Mux(st_rot == cols - 1, 0, st_rot + 1))]
            with m.If(st_ends | Mux(flush, rstep_fills, pack_room == rstep)):
                m.d.sync += set_pack_full(1)
        # ``pack`` itself, a byte at a time from its group's copies: a read fills the bytes
        # of its slot (``pack_span``), or after a flush those of the first slot (``pack_low``),
        # with a row (``cols``, rotated), a word (``ow``) or one byte; a flush clears the
        # rest. Taken with the flush (``SkidBuffer``'s), a byte past the first slot is
        # written when the beat is not full, so each enable is one LUT of flip-flops and
        # ``valid``, and the value's select reads registered copies of the mode (stable from
        # DECODE on). (A priority of row, word and byte writes at each slot, with the
        # take and flush terms in front, was four LUTs: the controller's most failing family
        # alone.)
        pack_mode = [{"row": Signal(name=f"pack_row_c{k}", attrs=LOCAL_COPY),
                      "word": Signal(name=f"pack_word_c{k}", attrs=LOCAL_COPY)}
                     for k in range(n_copies)]
        # (No compare that is constant for ``rstep``'s width: Verilator's lint refuses it.)
        m.d.sync += [pack_low.eq(Cat(*(rstep > j if j < (1 << len(rstep)) - 1 else Const(0, 1)
                                       for j in range(beat_bytes)))),
                     *(c["row"].eq(deal if rows else 0) for c in pack_mode),
                     *(c["word"].eq(st_word) for c in pack_mode)]
        for i in range(beat_bytes):
            k = i * n_copies // beat_bytes
            flush_k = full_c[k] & ~skid_c[k]
            en = storing_c[k] & self.eng_rd_data.valid & Mux(
                full_c[k], ~skid_c[k] & pack_low[i], pack_span[i])
            val = lanes8[0]
            if ow > 1:
                val = Mux(pack_mode[k]["word"], lanes8[i % ow], val)
            if rows:
                val = Mux(pack_mode[k]["row"], rot8[i % cols], val)
            with m.If(en):
                m.d.sync += pack[8 * i:8 * i + 8].eq(val)
            with m.Elif(storing_c[k] & flush_k):
                m.d.sync += pack[8 * i:8 * i + 8].eq(0)
        return m
