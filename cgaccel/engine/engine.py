"""Compute engine top: ``cols`` decoupled output-channel columns behind simple streams.

Ports (all ``amaranth.lib.stream`` streams follow the four transfer rules):

``i_wr`` (buffer writes, :meth:`Geometry.write_layout`)
    ``target`` (:class:`~cgaccel.engine.geometry.Target`), ``col``, ``bcast`` (all columns),
    ``bank`` (buffer half), ``addr``, ``data`` (``OUT`` writes ignore ``bank``: their address
    is a full output-bank address), ``more``: an ``ACT``/``WGT`` write carries ``1 + more``
    consecutive words (at most ``load_lanes``, word ``i`` at ``addr + i``; other targets
    take one item and need ``more = 0``). ``ready`` is low while the write would hit the half of a
    tile (or the output-bank region) that is accepted and not finished by every column, and
    for ``ACT`` writes (to either half) while an accepted, unfinished tile is ``wide``.
``i_cmd`` (tile commands, :meth:`Geometry.tile_layout`)
    The tile runs on buffer half ``bank`` (activations, weights, list, parameters). With
    ``obuf = 1`` its outputs also go to half ``bank`` of the output bank (address
    ``bank * out_depth/2 + i*P + p``) and it is accepted while no other command for that half
    is in flight, so the next tile can be queued while the current one computes: columns that
    finish the current tile early start the next one at once, and the host reads one tile back
    while the next computes. With ``obuf = 0`` the tile uses the whole output bank (address
    ``i*P + p``) and runs alone (accepted only when nothing is in flight). With ``wide = 1`` its
    activation band spans both halves (word ``a`` in half ``a >> act_bits``; at most
    ``2 * act_depth`` words, one word plane ``hb * w`` at most ``act_depth``), so consecutive
    tiles on the same band share it; everything else stays in half ``bank``.
``o_done`` (one entry per command, in command order)
    ``error`` is set when the command was impossible (nothing was computed).
``i_rd`` / ``o_rd`` (write-back)
    ``i_rd`` names a column and an output-bank address; ``o_rd`` (``max(cols, out_word) *
    act_width`` bits)
    returns the value there in its low ``act_width`` bits (the other bits are unspecified),
    in order, four cycles after the request at the earliest, one per cycle. With ``row`` set
    every column reads the address and ``o_rd`` returns all of them, column ``j``'s value in
    bits ``j * act_width`` on: the ``cols`` consecutive bytes of a dealt tile's output row
    in one read. With ``word`` (not ``row``) the named column returns the ``out_word``
    values of the output-bank word holding ``addr`` (address ``addr & ~(out_word - 1)`` in
    the low bits): a channel-split STORE's ``out_word`` consecutive DRAM bytes in one read.
    Held off while a tile that writes there is in flight.

Counters (free-running since reset, ``counter_width`` bits: the config's, at most 48; the tops
read per-layer differences modulo ``2**config.counter_width``, so wider ones would only hold
bits nobody reads): ``cnt_busy`` (cycles at least one
column computes), ``cnt_wait`` (cycles after the first command with no column computing: the
loader has not delivered the next tile), ``cnt_col_idle`` (column-cycles a column has no tile
while another computes), ``cnt_macs`` (``rows`` times words issued), ``cnt_skipped`` (MACs of
conditional work skipped by closed gates), ``cnt_open`` (gates opened).

``Engine(config, collision_check=True)`` (simulation only) builds the columns with
``collision_check`` and adds ``cnt_collide``: cycles in which some column read a buffer or
table address written in the same cycle (its data then arrives inverted, see
:data:`cgaccel.rtl.NO_RW_CHECK`).
"""

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from ..rtl import LOCAL_COPY
from .column import WRITEBACK_LATENCY, Column
from .geometry import Geometry, Target
from .intake import IntakeCheck
from .pe import _discard, shift_add

__all__ = ["Engine", "read_latency"]


def read_latency(config):
    """Cycles from a write-back request taken on ``i_rd`` to its word entering the read FIFO:
    the column's ``WRITEBACK_LATENCY``, after the per-column request registers of an engine
    with more than one column (one column needs none: nothing is far from it, and on the
    iCE40 UP5K, where ``tiny`` has one, the flip-flops would not fit)."""
    return WRITEBACK_LATENCY + int(config.cols > 1)


class Engine(wiring.Component):
    """The compute engine.

    Parameters
    ----------
    config : AccelConfig
    collision_check : bool
        Poison reads that collide with a write and count them (simulation only).

    Raises
    ------
    TypeError
        ``config`` is not an :class:`~cgaccel.config.AccelConfig`.
    """

    max_counter_width = 48

    def __init__(self, config, *, collision_check=False):
        from ..config import AccelConfig
        if not isinstance(config, AccelConfig):
            _discard(self)
            raise TypeError(f"Engine config must be an AccelConfig, not {config!r}")
        self._cfg = config
        self._geo = geo = Geometry(config)
        self._check = bool(collision_check)
        self.counter_width = cw = min(self.max_counter_width, config.counter_width)
        super().__init__({
            "i_wr": In(stream.Signature(geo.write_layout())),
            "i_cmd": In(stream.Signature(geo.tile_layout())),
            "o_done": Out(stream.Signature(data.StructLayout({"error": 1}))),
            "i_rd": In(stream.Signature(geo.read_layout())),
            "o_rd": Out(stream.Signature(geo.read_width)),
            "busy": Out(1),
            "cnt_busy": Out(cw), "cnt_wait": Out(cw), "cnt_col_idle": Out(cw),
            "cnt_macs": Out(cw), "cnt_skipped": Out(cw), "cnt_open": Out(cw),
            **({"cnt_collide": Out(cw)} if collision_check else {}),
        })

    @property
    def config(self):
        return self._cfg

    @property
    def geometry(self):
        return self._geo

    def elaborate(self, platform):
        m = Module()
        cfg, geo = self._cfg, self._geo
        cols = [Column(cfg, j, collision_check=self._check) for j in range(cfg.cols)]
        for j, c in enumerate(cols):
            m.submodules[f"col{j}"] = c
        tl = geo.tile_layout()
        allcols = (1 << cfg.cols) - 1

        remaining = [Signal(cfg.cols, name=f"remaining{b}") for b in range(2)]
        inflight = Signal(2)   # accepted, o_done not yet taken
        ofull = Signal(2)      # that tile uses the whole output bank (obuf = 0)
        awide = Signal(2)      # that tile's activation band spans both halves (wide = 1)
        busy_half = Signal(2)  # some column has not finished the half's tile
        m.d.comb += busy_half.eq(Cat(remaining[0].any(), remaining[1].any()))

        # Command records in command order: {bank, error}; o_done pops the head.
        # Two bits by four entries: flip-flops on purpose (asynchronous read, no block RAM).
        recs = SyncFIFO(width=2, depth=4)
        m.submodules.recs = recs
        head_bank = recs.r_data[0]
        head_err = recs.r_data[1]
        m.d.comb += [
            self.o_done.valid.eq(recs.r_rdy & (head_err | ~busy_half.bit_select(head_bank, 1))),
            self.o_done.payload.error.eq(head_err),
            recs.r_en.eq(self.o_done.valid & self.o_done.ready),
        ]

        # Command intake: field checks, size checks (``IntakeCheck``, a product bit per cycle),
        # queue.
        cmd = Signal(tl)
        m.submodules.sizes = sizes = IntakeCheck(cfg)

        def nk_of(c):
            # Channels per column: all of them when the tile is split by pixels.
            if cfg.cols & (cfg.cols - 1) == 0:
                nk_cols = (c.kt + cfg.cols - 1) >> (cfg.cols.bit_length() - 1)
            else:
                nk_cols = (c.kt + cfg.cols - 1) // cfg.cols
            return Mux(c.psplit, c.kt, nk_cols)
        # Registered as the command is taken (from its payload): the size checks start at a
        # flip-flop.
        nk_in = Signal(nk_of(cmd).shape())
        m.d.comb += [sizes.cmd.eq(cmd), sizes.nk.eq(nk_in)]
        started = Signal()
        # ``start``: CHECK with a good command; a flip-flop, set in SIZE's last cycle and
        # cleared after one cycle, with a copy for each column (``LOCAL_COPY``).
        start = Signal()
        start_c = [Signal(name=f"start_c{j}", attrs=LOCAL_COPY) for j in range(cfg.cols)]
        bad = Signal()
        bad_fld = Signal()
        bad_par = Signal()
        m.d.sync += [start.eq(0), *(c.eq(0) for c in start_c)]
        intake = Signal()  # SIZE or CHECK, as a flip-flop
        done_clr = Signal(2)
        set_inflight = Signal(2)
        m.d.comb += done_clr.eq(Mux(self.o_done.valid & self.o_done.ready & ~head_err,
                                    Mux(head_bank, 0b10, 0b01), 0))
        inflight_next = Signal(2)
        m.d.comb += inflight_next.eq((inflight & ~done_clr) | set_inflight)
        m.d.sync += inflight.eq(inflight_next)
        # Stored in CHECK (below); their next values feed the flip-flops that replace the
        # command and write ``ready`` decodes.
        ofull_next = Signal(2)
        awide_next = Signal(2)
        m.d.comb += [ofull_next.eq(ofull), awide_next.eq(awide)]
        m.d.sync += [ofull.eq(ofull_next), awide.eq(awide_next)]
        # ``i_cmd.ready`` from flip-flops loaded with their next values: for each half, a
        # double-buffered command for it would be taken (``rdy_half``), and a single-buffered
        # one would (``rdy_alone``). Decoded from ``inflight``, ``ofull`` and the record
        # FIFO's level, it ran on through the command's bank and the intake's enables.
        recs_room = Signal()
        rec_in = recs.w_en & recs.w_rdy
        rec_out = recs.r_en & recs.r_rdy
        m.d.comb += recs_room.eq(recs.level + rec_in - rec_out != recs.depth)
        rdy_half = Signal(2, init=0b11)
        rdy_alone = Signal(init=1)
        other_full = (inflight_next & ofull_next).any()
        m.d.sync += [
            rdy_half.eq(~inflight_next & recs_room.replicate(2) & (~other_full).replicate(2)),
            rdy_alone.eq(~inflight_next.any() & recs_room),
        ]

        with m.FSM() as fsm:
            with m.State("IDLE"):
                # A single-buffered output tile (obuf = 0) runs alone: it is accepted only when
                # nothing is in flight and blocks further commands until its o_done is taken.
                m.d.comb += self.i_cmd.ready.eq(
                    Mux(self.i_cmd.payload.obuf,
                        rdy_half.bit_select(self.i_cmd.payload.bank, 1), rdy_alone))
                with m.If(self.i_cmd.valid & self.i_cmd.ready):
                    m.d.comb += sizes.start.eq(1)
                    m.d.sync += [cmd.eq(self.i_cmd.payload), started.eq(1), intake.eq(1),
                                 nk_in.eq(nk_of(self.i_cmd.payload))]
                    m.next = "SIZE"
            with m.State("SIZE"):
                d = cmd
                fld = ((d.r == 0) | (d.s == 0) | (d.r > cfg.max_kernel) | (d.s > cfg.max_kernel)
                       | (d.stride == 0) | (d.ho == 0) | (d.wo == 0) | (d.kt == 0)
                       | (d.kt > cfg.max_channels) | (d.cw == 0) | (d.cw > geo.max_words)
                       | (d.hb == 0) | (d.w == 0))
                if not cfg.cgnet:
                    fld = fld | d.gated
                if not cfg.deal:
                    fld = fld | (d.psplit & d.pdeal)
                # Registered in every SIZE cycle: SIZE lasts ``intake_cycles`` (> 1), so they
                # hold the command's checks by its last cycle.
                m.d.sync += [bad_fld.eq(fld), bad_par.eq(nk_in > geo.param_depth)]
                with m.If(sizes.last):
                    # The verdict and ``start`` as flip-flops for CHECK (its only cycle):
                    # read there through the size flags' OR, ``start`` was a path from
                    # the intake's registers across the engine to each column's queue.
                    verdict = bad_fld | bad_par | sizes.bad
                    m.d.sync += [bad.eq(verdict), start.eq(~verdict),
                                 *(c.eq(~verdict) for c in start_c)]
                    m.next = "CHECK"
            with m.State("CHECK"):
                m.d.sync += intake.eq(0)
                d = cmd
                m.d.comb += [recs.w_en.eq(1), recs.w_data.eq(Cat(d.bank, bad))]
                with m.If(~bad):
                    m.d.comb += set_inflight.eq(Mux(d.bank, 0b10, 0b01))
                # The columns store the command, ``sizes.scw`` and ``sizes.rscw`` with
                # ``start`` (a flip-flop), each its own copy (see ``Column``).
                m.d.comb += [ofull_next.bit_select(d.bank, 1).eq(~d.obuf),
                             awide_next.bit_select(d.bank, 1).eq(d.wide)]
                m.next = "IDLE"

        # Columns: queue on start, report when finished.
        busy_next = Signal(2)
        for b in range(2):
            fins = Cat(c.fin & (c.fin_bank == b) for c in cols)
            nxt = Mux(start & (cmd.bank == b), allcols, remaining[b] & ~fins)
            m.d.sync += remaining[b].eq(nxt)
            m.d.comb += busy_next[b].eq(nxt.any())
        for c, c_start in zip(cols, start_c, strict=True):
            m.d.comb += [c.start.eq(c_start), c.start_bank.eq(cmd.bank), c.desc.eq(cmd),
                         c.scw.eq(sizes.scw), c.rscw.eq(sizes.rscw)]

        # A half is in use from intake until every column finished its tile. ``in_use`` is a
        # flip-flop loaded with its next value, so the buffer-write and read ``ready`` start
        # at flip-flops: from ``remaining`` through its reduction they ran on into the
        # controller's LOAD (the routed ECP5 critical path of ``default``'s top).
        in_use = Signal(2)
        in_use_next = Signal(2)
        intake_next = Signal()
        taken = fsm.ongoing("IDLE") & self.i_cmd.valid & self.i_cmd.ready
        cmd_next = Signal(tl)
        m.d.comb += [
            intake_next.eq(Mux(fsm.ongoing("IDLE"), self.i_cmd.valid & self.i_cmd.ready,
                               ~fsm.ongoing("CHECK"))),
            cmd_next.eq(Mux(taken, self.i_cmd.payload, cmd)),
            in_use_next.eq(busy_next | Mux(intake_next, Mux(cmd_next.bank, 0b10, 0b01), 0)),
        ]
        m.d.sync += in_use.eq(in_use_next)
        m.d.comb += self.busy.eq(busy_half.any() | intake | inflight.any())

        # Buffer writes: decode, register, broadcast to every addressed column.
        wr = self.i_wr.payload
        # Output-bank writes (residual preloads) and reads use full addresses: a half is busy
        # while its double-buffered tile is in flight; all of it while a single-buffered one is.
        # ``out_all`` and ``act_all`` (below) are flip-flops loaded with their next values,
        # like ``in_use``: the reductions sat in front of the write and read ``ready``.
        def all_flag(name, flags_next, field_next):
            flag = Signal(name=name)
            m.d.sync += flag.eq((in_use_next & flags_next).any() | (intake_next & field_next))
            return flag

        out_all = all_flag("out_all", ofull_next, ~cmd_next.obuf)
        ob1 = geo.out_bits - 1
        out_blocked = Signal()
        m.d.comb += out_blocked.eq(out_all | in_use.bit_select(wr.addr[ob1], 1))
        # Activation writes (either half) wait while a wide tile, which reads both halves, is
        # in flight: the next band's load follows the last tile of the current one.
        act_all = all_flag("act_all", awide_next, cmd_next.wide)
        m.d.comb += self.i_wr.ready.eq(
            Mux(wr.target == Target.OUT, ~out_blocked,
                ~in_use.bit_select(wr.bank, 1) & ~((wr.target == Target.ACT) & act_all)))
        take = self.i_wr.valid & self.i_wr.ready
        # The accepted write is registered twice on its way to the columns: once as taken
        # (``w``, next to the write slice), then once per column (``q``, ``LOCAL_COPY``), each
        # copy feeding only its column, which registers it again. One register for all four
        # columns, straight into the columns' copies in the four quarters of the die, was the
        # routed critical path of ``default``'s ECP5 top at seeds 1 and 2 (10.8-15.5 ns of
        # wire, no logic); the per-column copies straight from the slice shared its output
        # multiplexer, one LUT whose output ran to all four (``wr_slice.head`` -> ``q0_data``,
        # 7 ns of wire after it: the critical path of stop 58's figure of record). Now the
        # multiplexer reaches one register beside it, and the way to a column is two
        # register-to-register wires. A tile's first buffer read is still two cycles after
        # the last write before its command reaches its column; output reads wait for the
        # output-bank writes in flight (``out_wr_pend`` below).
        # One column takes the write as it is taken and registers it once itself: on the
        # iCE40 UP5K, where ``tiny`` has one column, a flip-flop loaded from another takes a
        # logic cell of its own, and the board design fills 97% of them.
        fields = ("target", "bank", "addr", "data", "more")
        if cfg.cols > 1:
            w_en = Signal()
            w = {f: Signal.like(getattr(wr, f), name=f"w_{f}", reset_less=True)
                 for f in (*fields, "col", "bcast")}
            m.d.sync += [w_en.eq(take), *(w[f].eq(getattr(wr, f)) for f in w)]
            for j, c in enumerate(cols):
                q_en = Signal(name=f"q{j}_en", attrs=LOCAL_COPY)
                q = {f: Signal.like(getattr(c, f"wr_{f}"), name=f"q{j}_{f}", attrs=LOCAL_COPY,
                                    reset_less=True)
                     for f in fields}
                m.d.sync += [q_en.eq(w_en & (w["bcast"] | (w["col"] == j))),
                             *(q[f].eq(w[f]) for f in fields)]
                m.d.comb += [c.wr_en.eq(q_en),
                             *(getattr(c, f"wr_{f}").eq(q[f]) for f in fields)]
        else:
            c, = cols
            m.d.comb += [c.wr_en.eq(take), *(getattr(c, f"wr_{f}").eq(getattr(wr, f))
                                              for f in fields)]
        # An output-bank write taken in cycle t is in the bank from cycle t + 4 (``w``, ``q``,
        # the column's own copy, the block RAM's write); a read taken in cycle t + 3 reads
        # the bank in t + 4 (its registered request). With one column the write is there
        # from t + 2 and a read reads at once. Reads wait while such a write is younger.
        out_wr_pend = Signal(2)
        m.d.sync += out_wr_pend.eq(Cat(take & (wr.target == Target.OUT), out_wr_pend[0]))

        # Write-back reads: one request per cycle. Each column registers its word (a block
        # RAM's 5.8 ns clock-to-out on ECP5 reaches one flip-flop in its own column), the
        # engine selects the lanes from those registers, and the result always enters a
        # small FIFO: a read is accepted only while the FIFO has room for it and every read
        # still in flight (``rd_credit``, flip-flops), so nothing in the pipeline ever has to
        # stall and ``i_rd.ready`` does not depend on ``o_rd.ready``. The block RAM ->
        # column -> engine multiplexers -> output register path was the routed ECP5 critical
        # path. ``read_latency`` (4: the columns' request registers, then the column's
        # ``WRITEBACK_LATENCY``; 3 with one column) cycles from a request to the FIFO, one
        # more to ``o_rd``; one read a cycle (``read_latency + 2`` credits cover the request
        # -> pop -> credit loop).
        rd = self.i_rd.payload
        aw8 = cfg.act_width
        ow = cfg.out_word
        lgw = (ow - 1).bit_length()
        # The direct host (``host="mmio"``) takes one read per register access: two entries.
        lat = read_latency(cfg)
        depth = lat + 2 if cfg.host == "dma" else 2
        m.submodules.rd_fifo = rd_fifo = SyncFIFO(width=geo.read_width, depth=depth)
        # ``o_rd.valid`` is the FIFO's ``r_rdy`` (``level != 0``) as a flip-flop loaded with
        # its next value, equal to it at every cycle: the decode of the FIFO's level in front of
        # the controller's STORE packing (``pack_full``, ``n_data``, ``st_left``) was the first
        # level of a routed ECP5 critical path of ``default``'s top.
        rd_nonempty = Signal()
        rd_pushed = rd_fifo.w_en & rd_fifo.w_rdy
        rd_popped = rd_fifo.r_en & rd_fifo.r_rdy
        m.d.sync += rd_nonempty.eq((rd_fifo.level + rd_pushed - rd_popped) != 0)
        m.d.comb += [self.o_rd.valid.eq(rd_nonempty), self.o_rd.payload.eq(rd_fifo.r_data),
                     rd_fifo.r_en.eq(self.o_rd.ready)]
        rd_credit = Signal(range(depth + 1))    # reads accepted and not yet taken from o_rd
        rd_room = Signal(init=1)                # ``rd_credit < depth``, as a flip-flop
        accept = self.i_rd.valid & self.i_rd.ready
        pop = self.o_rd.valid & self.o_rd.ready
        m.d.comb += self.i_rd.ready.eq(~out_all & ~in_use.bit_select(rd.addr[ob1], 1) & rd_room
                                       & ~out_wr_pend.any())
        credit_next = rd_credit + accept - pop
        m.d.sync += [rd_credit.eq(credit_next), rd_room.eq(credit_next < depth)]
        # Stage k: ``k`` cycles after the request; in the last the columns' ``rd_data``
        # registers hold the word.
        stages = []
        for k in range(1, lat + 1):
            st = {"valid": Signal(name=f"rd{k}_valid"), "col": Signal(geo.col_bits,
                                                                     name=f"rd{k}_col"),
                  "row": Signal(name=f"rd{k}_row"), "word": Signal(name=f"rd{k}_word"),
                  "lane": Signal(max(1, lgw), name=f"rd{k}_lane")}
            stages.append(st)
        s1, last = stages[0], stages[-1]
        m.d.sync += [s1["valid"].eq(accept), s1["col"].eq(rd.col), s1["row"].eq(rd.row),
                     s1["word"].eq(rd.word & ~rd.row)]
        if ow > 1:
            m.d.sync += s1["lane"].eq(rd.addr[:lgw])
        for prev, st in zip(stages, stages[1:], strict=False):
            m.d.sync += [st[key].eq(prev[key]) for key in prev]
        m.d.comb += [rd_fifo.w_en.eq(last["valid"])]
        rd_col, rd_row, rd_word, rd_lane = last["col"], last["row"], last["word"], last["lane"]
        # A row read enables every column's port at the same address; its result is the
        # columns' outputs side by side, each column's lane of its word (the registered low
        # address bits select it). A single read puts the named column's value in lane 0; a
        # word read puts the named column's whole word in lanes 0 .. out_word - 1 (one mux on
        # registered selects). Lanes a read leaves unspecified carry whatever is cheapest.
        one = Signal(ow * aw8)
        # Each of several columns takes the request from registers of its own
        # (``LOCAL_COPY``): from the read slice's output multiplexer in the die's middle
        # straight into a column's block RAM address was a routed ECP5 path of ``default``'s
        # top (``i_rd`` -> ``out_mem``, one LUT, up to 9.5 ns). One cycle of the read latency.
        for j, c in enumerate(cols):
            en = accept & (rd.row | (rd.col == j))
            if cfg.cols > 1:
                c_en = Signal(name=f"rd_en_c{j}", attrs=LOCAL_COPY)
                c_addr = Signal.like(c.rd_addr, name=f"rd_addr_c{j}", attrs=LOCAL_COPY,
                                     reset_less=True)
                m.d.sync += [c_en.eq(en), c_addr.eq(rd.addr)]
                m.d.comb += [c.rd_en.eq(c_en), c.rd_addr.eq(c_addr)]
            else:
                m.d.comb += [c.rd_en.eq(en), c.rd_addr.eq(rd.addr)]
            with m.If(rd_col == j):
                m.d.comb += one.eq(c.rd_data)

        def lane(word):
            return word.word_select(rd_lane, aw8) if ow > 1 else word

        lanes = []
        for i in range(max(cfg.cols, ow)):
            col_lane = lane(cols[i].rd_data) if i < cfg.cols else None
            one_lane = one.word_select(i, aw8) if i < ow else None
            if i == 0:
                v = Mux(rd_word, one_lane, Mux(rd_row, col_lane, lane(one)))
            elif col_lane is None:
                v = one_lane
            elif one_lane is None:
                v = col_lane
            else:
                v = Mux(rd_word, one_lane, col_lane)
            sig = Signal(aw8, name=f"rd_lane{i}")
            m.d.comb += sig.eq(v)
            lanes.append(sig)
        m.d.comb += rd_fifo.w_data.eq(Cat(*lanes))

        # Counters.
        in_run = Signal()
        m.d.comb += in_run.eq(Cat(c.busy for c in cols).any())
        # The event counters take the columns' per-cycle figures through registers (the
        # columns' own, then sums of pairs, then the total): the gate decision and the column
        # sum stay off the wide counter adders' paths, and no adder reaches across more than
        # two columns' quarters of the die (four columns' registers into one sum were a
        # routed ECP5 path of ``default``'s top at every seed, ``skips_c0`` -> ``skips_sum``,
        # 10.5-11 ns). The counts lag the work by three cycles (four with more than two
        # columns), long before a tile's last output is written and ``busy`` falls.
        def staged(name, values):
            level = [Signal.like(v, name=f"{name}_c{j}") for j, v in enumerate(values)]
            m.d.sync += [r.eq(v) for r, v in zip(level, values, strict=True)]
            depth = 0
            while len(level) > 2:
                pairs = [sum(level[j:j + 2]) for j in range(0, len(level), 2)]
                nxt = [Signal(p.shape(), name=f"{name}_p{depth}_{j}")
                       for j, p in enumerate(pairs)]
                m.d.sync += [r.eq(p) for r, p in zip(nxt, pairs, strict=True)]
                level, depth = nxt, depth + 1
            total = sum(level)
            out = Signal(total.shape(), name=f"{name}_sum")
            m.d.sync += out.eq(total)
            return out

        words = staged("words", [c.cnt_word for c in cols])
        skips = staged("skips", [c.cnt_skip for c in cols])
        opens = staged("opens", [c.cnt_open for c in cols])
        macs_inc = Signal(range(cfg.rows * cfg.cols + 1))
        skip_inc = Signal(skips.shape().width + cfg.rows.bit_length())
        m.d.sync += [macs_inc.eq(shift_add(words, cfg.rows)),
                     skip_inc.eq(shift_add(skips, cfg.rows))]
        opens_d = Signal.like(opens)
        m.d.sync += opens_d.eq(opens)
        idle_cols = sum(~c.busy for c in cols)
        m.d.sync += [
            self.cnt_macs.eq(self.cnt_macs + macs_inc),
            self.cnt_skipped.eq(self.cnt_skipped + skip_inc),
            self.cnt_open.eq(self.cnt_open + opens_d),
        ]
        with m.If(in_run):
            m.d.sync += [self.cnt_busy.eq(self.cnt_busy + 1),
                         self.cnt_col_idle.eq(self.cnt_col_idle + idle_cols)]
        with m.Elif(started):
            m.d.sync += self.cnt_wait.eq(self.cnt_wait + 1)
        if self._check:
            with m.If(Cat(c.cnt_collide for c in cols).any()):
                m.d.sync += self.cnt_collide.eq(self.cnt_collide + 1)
        return m
