"""One decoupled output-channel column of the compute engine.

A column owns the output channels ``k = k0 + index + cols*i`` of a tile and computes them on its
own: it has private copies of the activation band, its weight bank, a per-channel parameter
table, a work list and an output bank, and it walks its work items ``(i, p)`` at its own pace.

Pipeline (one word of ``rows`` MACs per cycle)::

    item setup (5 stages, FIFO) -> issue -> list read -> list registers (2) -> act/wgt read
        -> operand register -> MacColumn -> accumulate -> gate unit
        -> (conditional-path queue -> issue) or output unit -> output bank

The issue stage prefers conditional work popped from the queue over new base work. An item
that may open its gate holds one of ``psum_slots`` slots from its base issue until it reaches
the output unit, and the queue holds ``psum_slots`` entries, so the tail never stalls.
"""

from types import SimpleNamespace

from amaranth import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..rtl import LOCAL_COPY, NO_RW_CHECK
from .gate_unit import GateUnit
from .geometry import Geometry, Target
from .output_unit import OutputUnit
from .pe import MacColumn, _discard, shift_add

__all__ = ["Column"]

#: The widest memory a sliced table (``banked``) is built from: an ECP5 DP16KD's widest mode
#: with an output register per port.
TABLE_SLICE = 18
#: Cycles from a write-back read (``rd_en``) to its word on ``rd_data``: the block RAMs'
#: read, their output register (``res_q``), the column's ``rd_hold``.
WRITEBACK_LATENCY = 3


def poisoned_read_port(m, mem, wp):
    """A synchronous read port of ``mem`` whose data is inverted after a read of the address
    that ``wp`` writes in the same cycle (and stays so while ``en`` holds it), for simulations
    that check such reads are never used (:data:`cgaccel.rtl.NO_RW_CHECK`).

    Returns ``(port, match)``: an object with the port's ``addr``, ``en`` and ``data``, and a
    signal high in the cycles of such a read.
    """
    rp = mem.read_port()
    match = Signal()
    hit = Signal()
    data = Signal.like(rp.data)
    m.d.comb += [match.eq(wp.en.any() & (wp.addr == rp.addr) & rp.en),
                 data.eq(Mux(hit, ~rp.data, rp.data))]
    with m.If(rp.en):
        m.d.sync += hit.eq(match)
    return SimpleNamespace(addr=rp.addr, en=rp.en, data=data), match


def wrapped_sum_above(m, a, b, t, name):
    """``(a + b) > t`` with the sum wrapped to ``a``'s width (all signed, ``b`` no wider than
    ``a``), as one carry chain beside the sum's own.

    ``e = a + b + ~t`` (= ``a + b - t - 1``, exact) is one carry chain after a row of
    3:2 compressors; with the exact sum ``s = a + b``, whose wrap ``v`` (-1, 0, +1) its top
    two bits give, ``wrap(s) > t`` is ``e >= v * 2**len(a)``, a test of the top bits of ``e``.
    So the decision is sum chain || compressor + chain, then one LUT, instead of the sum's
    chain, then a compare's. Returns the decision (a 1-bit value).
    """
    w = len(a)
    n = max(w, len(b), len(t)) + 3
    x = Signal(signed(n), name=f"{name}_x")
    y = Signal(signed(n), name=f"{name}_y")
    z = Signal(signed(n), name=f"{name}_z")
    ps = Signal(n, name=f"{name}_ps")
    pc = Signal(n, name=f"{name}_pc")
    e = Signal(n, name=f"{name}_e")
    ssum = Signal(signed(w + 1), name=f"{name}_s")
    m.d.comb += [
        x.eq(a), y.eq(b), z.eq(~t),
        ps.eq(x ^ y ^ z),
        pc.eq(Cat(Const(0, 1), ((x & y) | (x & z) | (y & z))[:n - 1])),
        e.eq(ps + pc),
        ssum.eq(a + b),
    ]
    hi = e[w:].as_signed()
    wrap_up = ~ssum[w] & ssum[w - 1]
    wrap_down = ssum[w] & ~ssum[w - 1]
    return Mux(wrap_up, hi >= 1, Mux(wrap_down, hi >= -1, ~e[n - 1]))


class Column(wiring.Component):
    """A column: buffers, work generator, issue stage, PE column, gate unit, output unit.

    Parameters
    ----------
    config : AccelConfig
    index : int
        Column number ``j``: the column computes tile-local channels ``j, j+cols, ...``.

    Members
    -------
    wr_en, wr_target, wr_bank, wr_addr, wr_data, wr_more : In
        Buffer write (already decoded for this column by the engine; registered here):
        ``1 + wr_more`` activation or weight words at ``wr_addr, wr_addr + 1, ...`` (word
        ``i`` in bits ``i * item_bits`` of ``wr_data``; ``wr_more`` < ``load_lanes``), or one
        item of another buffer.
    start, start_bank : In(1)
        Pulse: queue the tile of buffer half ``start_bank`` (at most one per half). Tiles run
        in the order they were queued; the column starts the next one as soon as it has
        finished its part of the previous one, without waiting for the other columns.
        ``start_bank`` is read in the cycle before ``start``.
    desc : In(Geometry.tile_layout())
        The tile command queued by ``start`` (read in the cycle before ``start``).
    scw, rscw : In(_)
        ``S*CW`` and ``R*S*CW`` of that tile (weight-address strides; read in the cycle
        before ``start``).
    busy : Out(1)
        The column has work of a tile in flight.
    fin, fin_bank : Out(1)
        Pulse (from a flip-flop, the cycle after ``busy`` falls): the column finished its
        part of the tile of half ``fin_bank``.
    rd_en, rd_addr : In
        Output-bank read (write-back; the half is the address MSB); ``rd_data`` is valid
        ``WRITEBACK_LATENCY`` (3) cycles later (from a register) and holds until the next
        read's data.
    rd_data : Out(out_word * act_width)
        The output-bank word (``out_word`` activations) holding ``rd_addr``: the activation
        at word address ``a`` in bits ``(a % out_word) * act_width`` on.
    cnt_word, cnt_open : Out(1)
        This cycle a MAC word was issued / a gate opened.
    cnt_skip : Out
        Words of conditional work skipped by a gate that closed this cycle.
    """

    def __init__(self, config, index, *, collision_check=False):
        if not isinstance(index, int) or not 0 <= index < config.cols:
            _discard(self)
            raise ValueError(f"Column index must be an integer in 0..{config.cols - 1}, "
                             f"not {index!r}")
        self._cfg = config
        self._geo = geo = Geometry(config)
        self._index = index
        self._check = bool(collision_check)
        self._tl = geo.tile_layout()
        wb = geo.wgt_bits + 1
        super().__init__({
            "wr_en": In(1), "wr_target": In(3), "wr_bank": In(1),
            "wr_addr": In(geo.addr_bits), "wr_data": In(geo.wr_data_width),
            "wr_more": In(max(1, (config.load_lanes - 1).bit_length())),
            "start": In(1), "start_bank": In(1),
            "desc": In(self._tl), "scw": In(wb), "rscw": In(wb),
            "busy": Out(1), "fin": Out(1), "fin_bank": Out(1),
            "rd_en": In(1), "rd_addr": In(geo.out_bits),
            "rd_data": Out(config.out_word * config.act_width),
            "cnt_word": Out(1), "cnt_open": Out(1),
            "cnt_skip": Out(8 + geo.count_bits),
            **({"cnt_collide": Out(1)} if collision_check else {}),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, geo = self._cfg, self._geo
        rows, aw, ww = cfg.rows, cfg.act_width, cfg.weight_width
        ab, wgb, lb, pb, ob = geo.act_bits, geo.wgt_bits, geo.list_bits, geo.param_bits, \
            geo.out_bits
        cb = geo.count_bits
        oh = ob - 1  # a double-buffered output tile uses one half of the output bank
        nslots = cfg.psum_slots
        sb = max(1, (nslots - 1).bit_length())
        ds = signed(cfg.dim_bits + 6)
        # Taps of an item (at most max_kernel**2: the engine rejects larger kernels) and
        # conditional words of an item (taps times a list segment).
        tb = (cfg.max_kernel ** 2).bit_length()
        nb = tb + cb

        # Tile queue (one entry per buffer half) and the running tile's own copy of its
        # command, so the engine may accept the next command while this column still works.
        q_valid = Signal(2)
        q_bank = Signal(2)
        go = Signal()
        start_i = Signal()
        d = Signal(self._tl)
        bank = Signal()
        scw_l = Signal(geo.wgt_bits + 1)
        rscw_l = Signal(geo.wgt_bits + 1)
        m.d.comb += go.eq(~self.busy & ~start_i & q_valid[0])
        m.d.sync += start_i.eq(go)
        # A copy of ``start_i`` for the walk (``LOCAL_COPY``, equal in every cycle): it heads
        # the next-position select of about 200 walk flip-flops, and as one net with the
        # setup stages' clears it was on a column's routed ECP5 paths (``start_i`` ->
        # ``ff_rem``, ``g_oaddr``, ``g_ob``: one LUT and 7 ns of wire on ``default``'s top).
        start_w = Signal(attrs=LOCAL_COPY)
        m.d.sync += start_w.eq(go)
        # Activation half of the tile's band words below ``act_depth``: its bank, or 0 for a
        # ``wide`` band, whose list offsets carry the half in their MSB. Added to the operand
        # address as its MSB (see "operand fetch"), so no multiplexer is on that path.
        act_hi = Signal()
        # ``deal`` (``d.psplit & d.pdeal``: a dealt-pixel tile) is a flip-flop loaded with
        # ``d``: it selects between the walks, in front of every walk register's enable.
        deal = Signal()
        # The queued tiles' commands are kept here, one per half, stored on ``start``: read
        # from one copy in the engine, the select by ``q_bank`` sat between the engine and
        # the column, and ``q_bank`` -> ``d`` (one LUT, fanout 116, 11.5 ns of wire) was the
        # routed critical path of ``default``'s ECP5 top at seed 1.
        descs = Signal(data.ArrayLayout(self._tl, 2))
        scws = Signal(data.ArrayLayout(self.scw.shape(), 2))
        rscws = Signal(data.ArrayLayout(self.rscw.shape(), 2))
        # The command, its bank and strides as the column's own registers, loaded every
        # cycle (``LOCAL_COPY``, no enable): the engine holds them from the cycle before
        # ``start`` (see ``desc``), so at ``start`` these equal the inputs. A half's entry
        # follows them while the half is not queued here (``held``, flip-flops set on
        # ``start``, cleared on ``go``), so it holds the queued command from ``start`` on and
        # its enable is one local flip-flop. Stored under ``start`` straight from the
        # engine's registers, the wire across the die ran into the entries' enables
        # (``cmd.bank`` -> ``descs``, one LUT and about 8 ns of wire, 82 endpoints failing at
        # 150 MHz on ``default``'s ECP5 top; with the copies alone, ``start`` -> ``descs``).
        # A single column (``tiny``) sits by the engine's registers and stores from them
        # under ``start``: the copies would cost an iCE40 UP5K about 100 logic cells.
        if cfg.cols > 1:
            desc_l = Signal(self._tl, attrs=LOCAL_COPY, reset_less=True)
            start_bank_l = Signal(attrs=LOCAL_COPY, reset_less=True)
            scw_in = Signal.like(self.scw, attrs=LOCAL_COPY, reset_less=True)
            rscw_in = Signal.like(self.rscw, attrs=LOCAL_COPY, reset_less=True)
            m.d.sync += [desc_l.eq(self.desc), start_bank_l.eq(self.start_bank),
                         scw_in.eq(self.scw), rscw_in.eq(self.rscw)]
            held = Signal(2)
            for b in range(2):
                with m.If(~held[b]):
                    m.d.sync += [descs[b].eq(desc_l), scws[b].eq(scw_in),
                                 rscws[b].eq(rscw_in)]
                with m.If(self.start & (start_bank_l == b)):
                    m.d.sync += held[b].eq(1)
                with m.Elif(go & (q_bank[0] == b)):
                    m.d.sync += held[b].eq(0)
        else:
            start_bank_l = self.start_bank
            with m.If(self.start):
                m.d.sync += [descs[start_bank_l].eq(self.desc),
                             scws[start_bank_l].eq(self.scw), rscws[start_bank_l].eq(self.rscw)]
        with m.If(go):
            m.d.sync += [d.eq(descs[q_bank[0]]), bank.eq(q_bank[0]),
                         deal.eq(descs[q_bank[0]].psplit & descs[q_bank[0]].pdeal),
                         act_hi.eq(q_bank[0] & ~descs[q_bank[0]].wide),
                         scw_l.eq(scws[q_bank[0]]), rscw_l.eq(rscws[q_bank[0]])]
            # The engine refuses the tiles of a feature the configuration leaves out; a
            # constant here lets synthesis drop its logic: without CGNet gating the slots,
            # the conditional queue and the gate decision, without dealt pixels the dealt
            # walk (each about a sixth of a column's LUTs).
            if not cfg.cgnet:
                m.d.sync += d.gated.eq(0)
            if not cfg.deal:
                m.d.sync += [d.pdeal.eq(0), deal.eq(0)]
        # Pop on go, push on start (into the first free entry after the pop).
        with m.If(go):
            with m.If(self.start):
                with m.If(q_valid[1]):
                    m.d.sync += [q_bank[0].eq(q_bank[1]), q_bank[1].eq(start_bank_l)]
                with m.Else():
                    m.d.sync += [q_bank[0].eq(start_bank_l), q_valid.eq(0b01)]
            with m.Else():
                m.d.sync += [q_bank[0].eq(q_bank[1]), q_valid.eq(q_valid[1])]
        with m.Elif(self.start):
            with m.If(q_valid[0]):
                m.d.sync += [q_bank[1].eq(start_bank_l), q_valid[1].eq(1)]
            with m.Else():
                m.d.sync += [q_bank[0].eq(start_bank_l), q_valid[0].eq(1)]

        # Buffer writes: registered once more here so the broadcast fan-out is not a long net
        # (``LOCAL_COPY``: yosys would otherwise merge the columns' copies into one register
        # driving every column's block RAMs; on ``default``'s ECP5 block top that net was the
        # routed critical path, 14.5 ns of routing). Only the enable needs a reset.
        wq_en = Signal(attrs=LOCAL_COPY)
        wq_target = Signal(3, attrs=LOCAL_COPY, reset_less=True)
        wq_bank = Signal(attrs=LOCAL_COPY, reset_less=True)
        wq_addr = Signal(geo.addr_bits, attrs=LOCAL_COPY, reset_less=True)
        wq_data = Signal(geo.wr_data_width, attrs=LOCAL_COPY, reset_less=True)
        wq_more = Signal.like(self.wr_more, attrs=LOCAL_COPY, reset_less=True)
        m.d.sync += [wq_en.eq(self.wr_en), wq_target.eq(self.wr_target),
                     wq_bank.eq(self.wr_bank), wq_addr.eq(self.wr_addr),
                     wq_data.eq(self.wr_data), wq_more.eq(self.wr_more)]

        # The buffers and tables below are written only by buffer writes, which the engine
        # holds off a half while a tile uses it (``i_wr.ready``), and read only for a tile:
        # a read never needs the data of a write in the same cycle (``NO_RW_CHECK``). With
        # ``collision_check`` such a read returns its data inverted instead of the old data,
        # and ``cnt_collide`` pulses, so simulations show the data is not used.
        write_ports = {}
        collisions = []

        def read_port(mem):
            if not self._check:
                return mem.read_port()
            rp, match = poisoned_read_port(m, mem, write_ports[id(mem)])
            collisions.append(match)
            return rp

        def write_copy(name, target):
            """The write bus's enable for ``target``, bank and address, registered again for
            the one table or buffer ``name`` (``LOCAL_COPY``): equal in every cycle to
            ``wq_en & (wq_target == target)``, ``wq_bank`` and ``wq_addr``. One copy per
            column drove the address and enable pins of all its block RAMs, spread over the
            column's quarter of the die: a column's ``wq_bank`` -> a ``list_mem`` address
            pin, with no LUT, was the routed ECP5 critical path of ``default``'s top at two
            seeds (12.0-13.8 ns of wire on the one net)."""
            en = Signal(name=f"{name}_wen", attrs=LOCAL_COPY)
            bank = Signal(name=f"{name}_wbank", attrs=LOCAL_COPY, reset_less=True)
            addr = Signal(geo.addr_bits, name=f"{name}_waddr", attrs=LOCAL_COPY,
                          reset_less=True)
            m.d.sync += [en.eq(self.wr_en & (self.wr_target == target)),
                         bank.eq(self.wr_bank), addr.eq(self.wr_addr)]
            return en, bank, addr

        def banked(name, width, depth, target, lsb=0, attrs=None, sliced=False):
            """A table of ``2 * depth`` words: one memory or, ``sliced`` and wider than
            ``TABLE_SLICE`` bits, side by side memories of at most that width (returned as
            a list). For tables read straight into a register: an ECP5 block RAM's output
            register, which ``--bram-outreg`` moves that register into, exists only in its
            18-bit and narrower modes (a 36-bit read leaves through both ports' output
            paths, and yosys maps it with the write port's output enable tied off)."""
            n = -(-width // TABLE_SLICE) if sliced else 1
            step = -(-width // n)
            w_en, w_bank, w_addr = write_copy(name, target)
            mems = []
            for b, lo in enumerate(range(0, width, step)):
                w = min(step, width - lo)
                mem = Memory(shape=w, depth=2 * depth, init=[],
                             attrs={**NO_RW_CHECK, **(attrs or {})})
                m.submodules[name if n == 1 else f"{name}_{b}"] = mem
                wp = write_ports[id(mem)] = mem.write_port()
                abits = (depth - 1).bit_length()
                m.d.comb += [wp.addr.eq(Cat(w_addr[:abits], w_bank)),
                             wp.data.eq(wq_data[lsb + lo:lsb + lo + w]),
                             wp.en.eq(w_en)]
                mems.append(mem)
            return mems[0] if n == 1 else mems

        def table_port(table):
            """One read port of a table from ``banked``: ``addr``, ``en`` and ``data``."""
            if not isinstance(table, list):
                return read_port(table)
            ports = [read_port(mem) for mem in table]
            port = SimpleNamespace(addr=Signal.like(ports[0].addr), en=Signal(init=1),
                                   data=Signal(sum(len(p.data) for p in ports)))
            m.d.comb += [p.addr.eq(port.addr) for p in ports]
            m.d.comb += [p.en.eq(port.en) for p in ports]
            m.d.comb += port.data.eq(Cat(*(p.data for p in ports)))
            return port

        lanes = cfg.load_lanes
        lg = (lanes - 1).bit_length()

        def lane_banked(name, width, depth, target, item_bits):
            """A buffer of ``load_lanes`` memories, word ``a`` in memory ``a % lanes``: a
            multi-word write puts its consecutive words in different memories, one each.

            Returns a function ``read(addr, mask=None) -> data``: the data is valid three
            cycles after the address (a read port, its output register, then a fabric
            register: see "operand fetch"); ``mask`` (one bit per item of ``width //
            rows`` bits, in step with the output register) zeroes the items it clears as
            they enter the fabric register.

            The output register ``{name}_q`` loads every cycle and has no reset, so that
            ``cgaccel synth --bram-outreg`` moves it into the DP16KD's own output register
            (0.9 ns clock-to-out instead of 5.8 ns). The fabric register ``{name}_q2``
            after it takes the wire from the block-RAM rows to the multipliers: with the
            output register alone that wire would start the multiplier's cycle."""
            if lanes == 1:
                mem = banked(name, width, depth, target)
                rp = read_port(mem)

                def read(addr, mask=None):
                    m.d.comb += rp.addr.eq(addr)
                    q = Signal(width, name=f"{name}_q", reset_less=True)
                    q2 = Signal(width, name=f"{name}_q2", reset_less=True)
                    m.d.sync += [q.eq(rp.data), q2.eq(masked(q, mask))]
                    return q2
                return read
            full = Signal(geo.addr_bits + 1, name=f"{name}_wa")
            abits = (depth - 1).bit_length()
            w_en, w_bank, w_addr = write_copy(name, target)
            m.d.comb += full.eq(Cat(w_addr[:abits], w_bank))
            rps = []
            for b in range(lanes):
                mem = Memory(shape=width, depth=2 * depth // lanes, init=[], attrs=NO_RW_CHECK)
                m.submodules[f"{name}{b}"] = mem
                wp = write_ports[id(mem)] = mem.write_port()
                # Word i of the write lands in memory (addr + i) % lanes.
                i = Signal(lg, name=f"{name}{b}_i")
                m.d.comb += [
                    i.eq(b - w_addr[:lg]),
                    wp.addr.eq((full + i)[lg:abits + 1]),
                    wp.data.eq(wq_data.word_select(i, item_bits)[:width]),
                    wp.en.eq(w_en & (i <= wq_more)),
                ]
                rps.append(read_port(mem))

            def read(addr, mask=None):
                sel = Signal(lg, name=f"{name}_sel")
                sel_q = Signal(lg, name=f"{name}_sel_q")
                m.d.sync += [sel.eq(addr[:lg]), sel_q.eq(sel)]
                qs = []
                for b, rp in enumerate(rps):
                    q = Signal(width, name=f"{name}{b}_q", reset_less=True)
                    m.d.comb += rp.addr.eq(addr[lg:])
                    m.d.sync += q.eq(rp.data)
                    qs.append(q)
                # The lane select comes after the output registers (each block RAM feeds
                # its own output register directly), in front of the fabric register.
                q2 = Signal(width, name=f"{name}_q2", reset_less=True)
                m.d.sync += q2.eq(masked(Array(qs)[sel_q], mask))
                return q2
            return read

        def masked(word, mask):
            if mask is None:
                return word
            n = len(mask)
            step = len(word) // n
            return Cat(*(Mux(mask[r], word[r * step:(r + 1) * step], 0) for r in range(n)))

        act_read = lane_banked("act_mem", rows * aw, cfg.act_depth, Target.ACT,
                               geo.act_item_bits)
        wgt_read = lane_banked("wgt_mem", rows * ww, cfg.weight_depth, Target.WGT,
                               geo.wgt_item_bits)
        # Sliced with ``hard_block_regs``: the list entry leaves through the block RAMs'
        # output registers (below), which an ECP5 DP16KD has only in its 18-bit and
        # narrower modes.
        list_mem = banked("list_mem", geo.list_width, geo.list_depth, Target.LIST,
                          sliced=cfg.hard_block_regs)
        bias_mem = banked("bias_mem", 32, geo.param_depth, Target.BIAS, sliced=True)
        thr_mem = banked("thr_mem", 32, geo.param_depth, Target.THR, sliced=True)
        mult_mem = banked("mult_mem", 32, geo.param_depth, Target.MULT, sliced=True)
        # The output stage needs only the shift (bits 0..5 of a CFG word): a narrow copy
        # written by the same CFG writes, so that each memory has a single read port; the
        # generator's copy leaves the shift out. Sliced (``hard_block_regs``), so that S2's
        # registers become the block RAMs' output registers under ``--bram-outreg`` (one
        # block RAM more per column on ``default``: cfg_mem -> S2 was a wire of 7-8 ns with
        # no logic).
        cfg_mem = banked("cfg_mem", geo.cfg_width - 6, geo.param_depth, Target.CFG, lsb=6,
                         sliced=cfg.hard_block_regs)
        # Yosys maps 2 x 64 x 6 bits to LUT RAM on ECP5 but 2 x 128 to a DP16KD, one per
        # column more than ``default`` has spare: keep deeper-than-minimum tables in LUT RAM
        # (32 TRELLIS_DPR16X4; iCE40 has none, so its builds keep the minimum depth).
        shift_mem = banked("shift_mem", 6, geo.param_depth, Target.CFG,
                           attrs=({"ram_style": "distributed"}
                                  if geo.param_depth > cfg.min_param_depth else None))
        # The output bank is two halves (address MSB), so that each has one write port and
        # one synchronous read port (see "output bank ports" below). A row of a half is a
        # word of ``out_word`` activations (element ``a`` in lane ``a % out_word``), so a
        # STORE reads a word a cycle; a write takes one lane. Each lane is a memory of its
        # own (``out_mem{h}_{lane}``): a residual read can meet the write of another lane of
        # the same word, which inside one memory is a read of the address being written (a
        # block RAM returns no defined data then, so yosys built its collision logic, a
        # multiplexer on every bit after the read). Apart, the lane being written is never
        # the lane read (``NO_RW_CHECK``), and the read goes straight into ``res_q``, which
        # ``cgaccel synth --bram-outreg`` moves into the block RAMs' output registers.
        ow = cfg.out_word
        lgw = (ow - 1).bit_length()
        out_mems = [[Memory(shape=aw, depth=cfg.out_depth // 2 // ow, init=[],
                            attrs=NO_RW_CHECK) for _ in range(ow)] for _ in range(2)]
        for h, lane_mems in enumerate(out_mems):
            for k, mem in enumerate(lane_mems):
                m.submodules[f"out_mem{h}" if ow == 1 else f"out_mem{h}_{k}"] = mem

        def cfg_fields(word):
            return {
                "shift": word[0:6], "omask": word[6],
                "start": word[7:7 + cb], "mid": word[7 + cb:7 + 2 * cb],
                "end": word[7 + 2 * cb:7 + 3 * cb],
            }

        # ---------------------------------------------------------------- item setup -----
        # The walk's limits and one-step flags (``lend2``, ``lone``, ...: see ``load``) are
        # computed here, in S4, for both the base and the conditional part, so that loading an
        # item at issue is a multiplexer between registers, without adders or compares.
        item_layout = data.StructLayout({
            "i": pb, "oaddr": ob, "pix": ab, "wt": wgb, "nr2": 5, "ns2": 5, "rone": 1,
            "sone": 1, "start": cb, "mid": cb, "lend2": cb + 1, "lone": 1, "cend2": cb + 1,
            "cone": 1, "omask": 1, "ncw": nb, "empty_b": 1, "empty_c": 1, "need": 1,
        })
        # Two entries only: kept in flip-flops on purpose (``SyncFIFO`` reads asynchronously).
        # A block RAM would hold them in several mostly empty blocks, and the buffered FIFO's
        # extra cycle would lengthen every tile's fill. Two keep up with one item a cycle in
        # and out (the cycle models assume the FIFO never limits, and the RTL comparisons in
        # tests/test_bench_cycle_model.py hold); four cost an iCE40 about 370 more logic cells.
        setup_fifo = SyncFIFO(width=item_layout.size, depth=2)
        m.submodules.setup_fifo = setup_fifo

        gen_active = Signal()
        g_i = Signal(pb + 1)
        g_k = Signal(range(cfg.max_channels + 2 * cfg.cols + 1))
        g_oy = Signal(cfg.dim_bits)
        g_ox = Signal(cfg.dim_bits)
        g_iy = Signal(ds)
        g_ix = Signal(ds)
        g_oaddr = Signal(ob + 1)
        g_wt = Signal(wgb + 1)

        s_valid = [Signal(name=f"s{n}_valid") for n in range(5)]
        s4_out = Signal(item_layout)
        # ``adv`` (the walk and S1-S4 move on: S4 is empty or the FIFO takes it) is a
        # flip-flop loaded with its next value, ``~s4_valid | level != depth`` after this
        # cycle's moves: it enables about 500 flip-flops of the walk and the setup stages,
        # and from the FIFO's level through the comparison it was a column's routed ECP5
        # critical path (the net alone 5.4 ns).
        adv = Signal(init=1)
        s4_next = Signal()
        level_next = Signal.like(setup_fifo.level)
        m.d.comb += [
            s4_next.eq(Mux(start_i, 0, Mux(adv, s_valid[3], s_valid[4]))),
            level_next.eq(setup_fifo.level + (setup_fifo.w_en & setup_fifo.w_rdy)
                          - (setup_fifo.r_en & setup_fifo.r_rdy)),
        ]
        m.d.sync += adv.eq(~s4_next | (level_next != setup_fifo.depth))
        # Copies of ``adv`` (``LOCAL_COPY``, equal to it at every cycle) for the walk and for
        # each setup stage, so that no one net spans all of them: on ``default``'s routed top
        # the wire from ``adv`` to the walk's enables alone was 3 ns (``adv`` -> ``st_ix``).
        adv_c = {k: Signal(init=1, name=f"adv_{k}", attrs=LOCAL_COPY)
                 for k in ("walk", "s1", "s2", "s3", "s4")}
        m.d.sync += [c.eq(~s4_next | (level_next != setup_fifo.depth)) for c in adv_c.values()]
        m.d.comb += [setup_fifo.w_en.eq(s_valid[4] & setup_fifo.w_rdy),
                     setup_fifo.w_data.eq(s4_out.as_value())]
        # The issue decision reads the FIFO's "not empty" and its head's ``need`` from
        # flip-flops kept beside it (``sf_rdy``, ``sf_need`` and the second entry's
        # ``sf_need2``, loaded with their next values): through the FIFO's asynchronous read
        # the head's ``need`` led a column's routed ECP5 paths at 150 MHz (the read address
        # -> entry multiplexer -> slot allocation -> ``n_free`` / ``free`` / ``cur_*``
        # enables, 7 levels). Only these bits: the whole head in a register moved the late
        # read onto the selects of its 220 bits.
        sf_rdy = Signal()
        sf_need = Signal()
        sf_need2 = Signal()
        sf_w = setup_fifo.w_en & setup_fifo.w_rdy
        sf_r = setup_fifo.r_en & setup_fifo.r_rdy
        m.d.sync += sf_rdy.eq(level_next != 0)
        with m.If(sf_w):
            m.d.sync += sf_need2.eq(s4_out.need)
        with m.If(sf_r):
            m.d.sync += sf_need.eq(Mux(setup_fifo.level == 2, sf_need2, s4_out.need))
        with m.Elif(setup_fifo.level == 0):
            m.d.sync += sf_need.eq(s4_out.need)

        # Pixel split (``psplit``): this column computes every channel on output pixels
        # ``[index*pc, (index+1)*pc)``. It first walks to its first pixel (``ff``: rows, then
        # pixels, no multiplier) and keeps that position to restart there for every channel.
        ff = Signal()
        ff_rem = Signal(geo.out_bits + geo.col_bits)
        # ``g_oy >= ho`` in that walk, a flag set with ``g_oy`` (it only grows by one there),
        # and ``ff_rem >= wo``, ``ff_rem != 0``, flags set with ``ff_rem``: as compares they
        # were in front of the walk's enables.
        ff_past = Signal()
        ff_ge = Signal()
        ff_nz = Signal()
        ff_rem0 = Signal.like(ff_rem)
        wo_x2 = Signal(geo.out_bits + geo.col_bits + 1)
        g_n = Signal(geo.out_bits + 1)
        st_oy = Signal.like(g_oy)
        st_ox = Signal.like(g_ox)
        st_iy = Signal.like(g_iy)
        st_ix = Signal.like(g_ix)
        # The walk's end tests compare the counters with limits registered from the tile
        # command (``g_ox + 1 < wo`` as ``g_ox < wo - 1`` ...): no incrementer ahead of each
        # compare on the generator's loop. The limits follow ``d`` a cycle late; the walk
        # starts two cycles after ``d`` is loaded (``go``, then ``start_i``).
        lim = signed(max(cfg.dim_bits, geo.out_bits, cfg.channel_bits) + 3)
        wo1 = Signal(lim)
        ho1 = Signal(lim)
        kt1 = Signal(lim)
        ktc = Signal(lim)
        m.d.sync += [wo1.eq(d.wo - 1), ho1.eq(d.ho - 1), kt1.eq(d.kt - 1),
                     ktc.eq(d.kt - cfg.cols)]
        # The plain walk's end tests (``g_ox == wo - 1``, ``g_oy == ho - 1``, ``g_n == pc - 1``)
        # are flags set with the counters (``g_ox + 1 == wo1`` as ``g_ox == wo2``), so the
        # next position is selected by flip-flops: as compares they headed a column's routed
        # ECP5 critical path (``g_oy`` -> compares -> next-position select -> ``g_oy``). They
        # hold outside dealt tiles (the dealt walk has its own tests), and in a pixel chunk
        # (``psplit``) the saved start ``st_*`` keeps its own copies.
        wo2 = Signal(lim)
        ho2 = Signal(lim)
        pc2 = Signal(lim)
        wo_one = Signal()
        ho_one = Signal()
        pc_one = Signal()
        m.d.sync += [wo2.eq(d.wo - 2), ho2.eq(d.ho - 2), pc2.eq(d.pc - 2),
                     wo_one.eq(d.wo == 1), ho_one.eq(d.ho == 1), pc_one.eq(d.pc == 1)]
        ox_end = Signal()
        oy_end = Signal()
        n_end = Signal()
        st_ox_end = Signal()
        st_oy_end = Signal()
        # Dealt pixels (``psplit`` and ``pdeal``): this column computes pixels ``index,
        # index + cols, ...`` of channel 0 (rotated per channel, see ``next_start``). It
        # walks to pixel ``index`` as above and, meanwhile, divides its step ``cols`` by
        # ``wo`` one row per cycle (``dq_a`` rows and ``dq_b`` pixels): then every next pixel
        # is one addition and one wrap, so 1x1 items (2-8 cycles) never wait for the
        # generator. Channel ``i``'s n-th pixel goes to ``i*pc + n`` (``g_ob`` = ``i*pc``) in
        # every column.
        dq_a = Signal(range(cfg.cols + 1))
        dq_b = Signal(range(cfg.cols + 1))
        st_dx = Signal(ds)      # x step of the input window: dq_b * stride
        st_dxw = Signal(ds)     # the same with a row wrap: (dq_b - wo) * stride
        st_dy = Signal(ds)      # y step: dq_a * stride
        st_dy1 = Signal(ds)     # with a row wrap: (dq_a + 1) * stride
        # ``dq_bw`` = ``dq_b - wo``, kept with ``dq_b``: ``st_dxw`` is one product, not a
        # difference of two (as such a path of 10.4 ns on a column alone), and its sign is the
        # division's test ``dq_b >= wo``.
        dq_bw = Signal(signed(max(cfg.dim_bits, (cfg.cols + 1).bit_length()) + 2))
        m.d.sync += [st_dx.eq(shift_add(dq_b, d.stride)),
                     st_dxw.eq(shift_add(dq_bw, d.stride)),
                     st_dy.eq(shift_add(dq_a, d.stride)),
                     st_dy1.eq(shift_add(dq_a, d.stride) + d.stride)]
        g_ob = Signal(ob + 1)
        # The step's row wrap (``g_ox + dq_b >= wo``) and the channel's end (``g_oy + dq_a +
        # wrap >= ho``) as compares of the counters with limits registered from ``dq_*``
        # (final one cycle before the walk, like ``st_*``), the next position as sums with
        # both possible steps, picked by the wrap: the carry chains are side by side instead
        # of adder -> compare -> adder -> compare -> adder in a row (as such the routed ECP5
        # critical path, ``dq_b`` -> ``gen_active``, 25 logic levels).
        dl_thx = Signal(lim)     # wo - dq_b
        dl_thy0 = Signal(lim)    # ho - dq_a
        dl_thy1 = Signal(lim)    # ho - dq_a - 1
        dl_bx = Signal(lim)      # dq_b - wo
        dq_a1 = Signal(range(cfg.cols + 2))
        m.d.sync += [dl_thx.eq(d.wo - dq_b), dl_thy0.eq(d.ho - dq_a),
                     dl_thy1.eq(d.ho - dq_a - 1), dl_bx.eq(dq_b - d.wo), dq_a1.eq(dq_a + 1)]
        # The wrap and the end test of the dealt walk's current position are flip-flops
        # (``dl_wrap``, ``dl_end``), set with the position: as compares of the counters they
        # selected the next position of every walk register (about 150 flip-flops) and
        # headed a column's routed ECP5 critical path. Stepping, the next position's tests are
        # compares of the current counters with limits less the step (``dl_t*``, registered
        # from ``dq_*`` like ``dl_th*``), picked by the current wrap; restarting, compares of
        # ``st_*``. In any other cycle the position does not change before the next step, so
        # they are the tests of the current counters, against limits formed from ``dq_*``
        # (a cycle fresher than ``dl_th*``: the walk can start the cycle after the division).
        dl_tw = Signal(lim)      # dl_thx - dl_bx: the x wrap after a wrapping step
        dl_tn = Signal(lim)      # dl_thx - dq_b: after a plain one
        dl_t11 = Signal(lim)     # dl_thy1 - dq_a1: the end, wrapping after a wrapping step
        dl_t10 = Signal(lim)     # dl_thy1 - dq_a: wrapping after a plain step
        dl_t01 = Signal(lim)     # dl_thy0 - dq_a1: not wrapping after a wrapping step
        dl_t00 = Signal(lim)     # dl_thy0 - dq_a: not wrapping after a plain step
        m.d.sync += [dl_tw.eq(2 * d.wo - 2 * dq_b), dl_tn.eq(d.wo - 2 * dq_b),
                     dl_t11.eq(d.ho - 2 * dq_a - 2), dl_t10.eq(d.ho - 2 * dq_a - 1),
                     dl_t01.eq(d.ho - 2 * dq_a - 1), dl_t00.eq(d.ho - 2 * dq_a)]
        # The same limits for the current position (``wo - dq_b``, ``ho - dq_a``, ``ho - dq_a -
        # 1``) as registers kept with ``dq_*`` through the division: as differences of ``d``
        # and ``dq_*`` in front of the compares they headed the top's routed ECP5 critical
        # path (``d`` -> ``dl_end``, 16 levels) at stop 36.
        nw_x = Signal(lim)
        nw_y0 = Signal(lim)
        nw_y1 = Signal(lim)
        dl_wrap = Signal()
        dl_end = Signal()
        dl_step = Signal()       # set in a step of the dealt walk below
        dl_restart = Signal()    # set in a channel restart of the dealt walk below
        step_wrap = Signal()
        restart_wrap = Signal()
        now_wrap = Signal()
        m.d.comb += [
            step_wrap.eq(Mux(dl_wrap, g_ox >= dl_tw, g_ox >= dl_tn)),
            restart_wrap.eq(st_ox >= dl_thx),
            now_wrap.eq(g_ox >= nw_x),
        ]
        # The walk's step kind (``wk_*``: which of its six moves the next step makes) is a
        # set of flip-flops loaded with the kind of the next cycle, formed from the next
        # values (``*_n``, their only source) of the flags it is decided by: decided in the
        # cycle of the step, from ``deal``, ``psplit``, ``dl_end``, ``g_none``, ``n_end``,
        # ``ox_end`` and ``oy_end``, it was three LUTs in front of the select of every walk
        # register, the largest family of a column's routed ECP5 paths on ``default``'s top
        # (``oy_end`` -> ``n_end``/``dl_end`` decode -> ``g_iy``, 10.1 ns).
        g_none = Signal()
        dl_end_n = Signal()
        g_none_n = Signal()
        n_end_n = Signal()
        ox_end_n = Signal()
        oy_end_n = Signal()
        m.d.comb += [g_none_n.eq(g_none), n_end_n.eq(n_end), ox_end_n.eq(ox_end),
                     oy_end_n.eq(oy_end)]
        with m.If(dl_step):
            m.d.sync += dl_wrap.eq(step_wrap)
            m.d.comb += dl_end_n.eq(Mux(step_wrap,
                                        Mux(dl_wrap, g_oy >= dl_t11, g_oy >= dl_t10),
                                        Mux(dl_wrap, g_oy >= dl_t01, g_oy >= dl_t00)))
        with m.Elif(dl_restart):
            m.d.sync += dl_wrap.eq(restart_wrap)
            m.d.comb += dl_end_n.eq(Mux(restart_wrap, st_oy >= dl_thy1, st_oy >= dl_thy0))
        with m.Else():
            m.d.sync += dl_wrap.eq(now_wrap)
            m.d.comb += dl_end_n.eq(Mux(now_wrap, g_oy >= nw_y1, g_oy >= nw_y0))

        def next_channel(active):
            m.d.sync += [g_i.eq(g_i + 1), g_wt.eq(g_wt + rscw_l), gen_active.eq(active)]

        # Dealt pixels rotate a column per channel (``output_places``): this column's first
        # pixel of channel ``k`` is ``s_k = (index + k) % cols``, so that the columns under
        # an object (gates open on objects) do not get all of its pixels in every channel.
        # ``st_*`` hold the next channel's start, one pixel on from the current one's (or
        # pixel 0 after ``s = cols - 1``), advanced as a channel starts: the channel after
        # a one-pixel channel starts a cycle later, from registers and compares with the
        # registered limits only. A start at or past the tile's pixel count (tiles with
        # ``P < cols``) is ``st_past``: that channel has no pixel here (``g_none``), the walk
        # passes it in one cycle without an item.
        st_s = Signal(range(max(2, cfg.cols)))
        st_past = Signal()

        # ``ox_e``, ``oy_e``: ``ox == wo1``, ``oy == ho1``, flags kept with the position
        # (``ox_end``, ``oy_end`` in the walk to the first pixel, ``st_ox_end``,
        # ``st_oy_end`` with ``st_*``): as compares they were in front of the enables of the
        # ``st_*`` registers, on the column's routed ECP5 critical path (``d`` -> compares ->
        # ``st_ix`` enable, 12 levels).
        def next_start(ox, oy, ix, iy, s, past, ox_e, oy_e):
            if isinstance(s, int):
                s = Const(s, st_s.shape())
            m.d.sync += [st_ox.eq(ox), st_oy.eq(oy), st_ix.eq(ix), st_iy.eq(iy),
                         st_past.eq(past), st_s.eq(s + 1), st_ox_end.eq(ox_e),
                         st_oy_end.eq(oy_e)]
            with m.If(s == cfg.cols - 1):
                m.d.sync += [st_s.eq(0), st_past.eq(0), st_oy.eq(0), st_ox.eq(0),
                             st_iy.eq(d.iy_base), st_ix.eq(-d.pad_l),
                             st_ox_end.eq(wo_one), st_oy_end.eq(ho_one)]
            with m.Elif(past | (ox_e & oy_e)):
                m.d.sync += st_past.eq(1)
            with m.Elif(ox_e):
                m.d.sync += [st_ox.eq(0), st_ix.eq(-d.pad_l), st_oy.eq(oy + 1),
                             st_iy.eq(iy + d.stride), st_ox_end.eq(wo_one),
                             st_oy_end.eq(oy == ho2)]
            with m.Else():
                m.d.sync += [st_ox.eq(ox + 1), st_ix.eq(ix + d.stride),
                             st_ox_end.eq(ox == wo2)]

        # The flags start at 0, so the first kind is a plain step in x.
        wk = {k: Signal(init=int(k == "x"), name=f"wk_{k}")
              for k in ("restart", "dstep", "pend", "x", "y")}
        m.d.comb += ff_rem0.eq(Mux(d.pdeal, self._index, shift_add(d.pc, self._index)))
        m.d.sync += wo_x2.eq(2 * d.wo)
        with m.If(start_w):
            m.d.sync += [
                g_i.eq(0), g_k.eq(self._index), g_oy.eq(0), g_ox.eq(0),
                g_iy.eq(d.iy_base), g_ix.eq(-d.pad_l), g_oaddr.eq(0), g_wt.eq(0), g_n.eq(0),
                ff_rem.eq(ff_rem0), ff_ge.eq(ff_rem0 >= d.wo), ff_nz.eq(ff_rem0 != 0),
                g_ob.eq(0), dq_a.eq(0), dq_b.eq(cfg.cols), dq_bw.eq(cfg.cols - d.wo),
                nw_x.eq(d.wo - cfg.cols), nw_y0.eq(d.ho), nw_y1.eq(d.ho - 1),
                ff_past.eq(d.ho == 0),
            ]
            # (The registered limits are a cycle late here: from ``d`` itself.)
            m.d.comb += [g_none_n.eq(0), ox_end_n.eq(d.wo == 1), oy_end_n.eq(d.ho == 1),
                         n_end_n.eq(d.pc == 1)]
            with m.If(d.psplit):
                m.d.sync += [gen_active.eq(0), ff.eq(1)]
            with m.Else():
                m.d.sync += gen_active.eq(self._index < d.kt)
        with m.Elif(ff):
            with m.If(dq_bw >= 0):
                m.d.sync += [dq_b.eq(dq_b - d.wo), dq_bw.eq(dq_bw - d.wo), dq_a.eq(dq_a + 1),
                             nw_x.eq(nw_x + d.wo), nw_y0.eq(nw_y0 - 1), nw_y1.eq(nw_y1 - 1)]
            with m.If(ff_past):
                # The chunk starts past the tile: nothing to do, but for dealt pixels, whose
                # next channels start at other pixels (once the step is divided).
                with m.If(~deal):
                    m.d.sync += ff.eq(0)
                with m.Elif(dq_bw < 0):
                    m.d.sync += [ff.eq(0), gen_active.eq(d.kt != 0)]
                    m.d.comb += g_none_n.eq(1)
                    next_start(g_ox, g_oy, g_ix, g_iy, self._index, 1, ox_end, oy_end)
            with m.Elif(ff_ge):
                m.d.sync += [ff_rem.eq(ff_rem - d.wo), ff_ge.eq(ff_rem >= wo_x2),
                             ff_nz.eq(ff_rem != d.wo), g_oy.eq(g_oy + 1),
                             g_iy.eq(g_iy + d.stride), ff_past.eq(oy_end)]
                m.d.comb += oy_end_n.eq(g_oy == ho2)
            with m.Elif(ff_nz):
                m.d.sync += [ff_rem.eq(ff_rem - 1), ff_ge.eq(0), ff_nz.eq(ff_rem != 1),
                             g_ox.eq(g_ox + 1),
                             g_ix.eq(g_ix + d.stride)]
                m.d.comb += ox_end_n.eq(g_ox == wo2)
            with m.Elif(deal & (dq_bw >= 0)):
                pass                        # the step is not divided yet
            with m.Else():
                m.d.sync += [ff.eq(0), gen_active.eq(d.kt != 0), st_oy.eq(g_oy),
                             st_ox.eq(g_ox), st_iy.eq(g_iy), st_ix.eq(g_ix),
                             st_ox_end.eq(ox_end), st_oy_end.eq(oy_end)]
                with m.If(deal):
                    next_start(g_ox, g_oy, g_ix, g_iy, self._index, 0, ox_end, oy_end)
        with m.Elif(adv_c["walk"] & gen_active):
            m.d.sync += g_oaddr.eq(g_oaddr + 1)
            # Dealt pixels: the next pixel is ``cols`` on; the channel ends when it leaves
            # the tile (or at once without a pixel here).
            with m.If(wk["restart"]):
                m.d.comb += dl_restart.eq(1)
                m.d.sync += [g_ob.eq(g_ob + d.pc), g_oaddr.eq(g_ob + d.pc),
                             g_oy.eq(st_oy), g_ox.eq(st_ox), g_iy.eq(st_iy), g_ix.eq(st_ix)]
                m.d.comb += g_none_n.eq(st_past)
                next_start(st_ox, st_oy, st_ix, st_iy, st_s, st_past, st_ox_end, st_oy_end)
                next_channel(g_i < kt1)
            with m.Elif(wk["dstep"]):
                m.d.comb += dl_step.eq(1)
                m.d.sync += [g_oy.eq(Mux(dl_wrap, g_oy + dq_a1, g_oy + dq_a)),
                             g_ox.eq(Mux(dl_wrap, g_ox + dl_bx, g_ox + dq_b)),
                             g_ix.eq(Mux(dl_wrap, g_ix + st_dxw, g_ix + st_dx)),
                             g_iy.eq(Mux(dl_wrap, g_iy + st_dy1, g_iy + st_dy))]
            with m.Elif(wk["pend"]):
                m.d.sync += [g_n.eq(0), g_oy.eq(st_oy), g_ox.eq(st_ox), g_iy.eq(st_iy),
                             g_ix.eq(st_ix)]
                m.d.comb += [n_end_n.eq(pc_one), ox_end_n.eq(st_ox_end),
                             oy_end_n.eq(st_oy_end)]
                next_channel(g_i < kt1)
            with m.Else():
                m.d.sync += g_n.eq(g_n + 1)
                m.d.comb += n_end_n.eq(g_n == pc2)
                with m.If(wk["x"]):
                    m.d.sync += [g_ox.eq(g_ox + 1), g_ix.eq(g_ix + d.stride)]
                    m.d.comb += ox_end_n.eq(g_ox == wo2)
                with m.Else():
                    m.d.sync += [g_ox.eq(0), g_ix.eq(-d.pad_l)]
                    m.d.comb += ox_end_n.eq(wo_one)
                    with m.If(wk["y"]):
                        m.d.sync += [g_oy.eq(g_oy + 1), g_iy.eq(g_iy + d.stride)]
                        m.d.comb += oy_end_n.eq(g_oy == ho2)
                    with m.Else():
                        m.d.sync += [g_oy.eq(0), g_iy.eq(d.iy_base), g_k.eq(g_k + cfg.cols)]
                        m.d.comb += oy_end_n.eq(ho_one)
                        next_channel(g_k < ktc)

        # The next cycle's flags, and from them its step kind (see ``wk`` above). ``deal``
        # and ``d.psplit`` are taken as they are, not as they will be: they change only as
        # a tile is loaded (``go``), and in the cycle after that the walk starts
        # (``start_w``) and reads no kind, so a kind is stale only in a cycle that does not
        # use it. (Their next values come from the engine's tile commands, whose wire to a
        # column's kind registers was a routed ECP5 path on ``default``'s top.)
        m.d.sync += [dl_end.eq(dl_end_n), g_none.eq(g_none_n), n_end.eq(n_end_n),
                     ox_end.eq(ox_end_n), oy_end.eq(oy_end_n)]
        restart_n = deal & (dl_end_n | g_none_n)
        pend_n = ~deal & d.psplit & (n_end_n | (ox_end_n & oy_end_n))
        plain_n = ~deal & ~pend_n
        m.d.sync += [
            wk["restart"].eq(restart_n),
            wk["dstep"].eq(deal & ~restart_n),
            wk["pend"].eq(pend_n),
            wk["x"].eq(plain_n & ~ox_end_n),
            wk["y"].eq(plain_n & ox_end_n & ~oy_end_n),
        ]

        cfg_rp1 = table_port(cfg_mem)
        m.d.comb += [cfg_rp1.addr.eq(Cat(g_i[:pb], bank)), cfg_rp1.en.eq(adv)]

        # S1: window bounds of the valid (non-padding) taps.
        s1 = {k: Signal(v.shape(), name=f"s1_{k}") for k, v in
              dict(i=g_i, oaddr=g_oaddr, wt=g_wt).items()}
        # The bounds are registered here from the walk's counters, so that S2 only subtracts
        # them (as one stage, bounds then count, the routed ECP5 critical path of a column
        # alone: ``s1_iy`` -> subtract, compare, subtract, compare -> ``s2_nr``, 27 levels).
        r0 = Signal(ds, name="s1_r0")
        r1 = Signal(ds, name="s1_r1")
        c0 = Signal(ds, name="s1_c0")
        c1_ = Signal(ds, name="s1_c1")
        iyr = Signal(ds, name="s1_iyr")
        ixs = Signal(ds, name="s1_ixs")
        # ``hb - iy < r`` as ``iy > hb - r`` (the limit registered from ``d``, valid from the
        # walk's first cycle), so the compare does not wait for the subtraction.
        hb_r = Signal(ds)
        w_s = Signal(ds)
        m.d.sync += [hb_r.eq(d.hb - d.r), w_s.eq(d.w - d.s)]
        with m.If(adv_c["s1"]):
            m.d.sync += s_valid[1].eq(gen_active & ~start_i & ~g_none)
            m.d.sync += [s1["i"].eq(g_i), s1["oaddr"].eq(g_oaddr), s1["wt"].eq(g_wt),
                         r0.eq(Mux(g_iy < 0, -g_iy, 0)),
                         r1.eq(Mux(g_iy > hb_r, d.hb - g_iy, d.r)),
                         c0.eq(Mux(g_ix < 0, -g_ix, 0)),
                         c1_.eq(Mux(g_ix > w_s, d.w - g_ix, d.s)),
                         # ``iy + r0`` and ``ix + c0``: the first valid row and column.
                         iyr.eq(Mux(g_iy < 0, 0, g_iy)), ixs.eq(Mux(g_ix < 0, 0, g_ix))]
        with m.If(start_i):
            for v in s_valid[1:]:
                m.d.sync += v.eq(0)
        c1 = cfg_fields(Cat(Const(0, 6), cfg_rp1.data))
        nr_s = Signal(ds)
        ns_s = Signal(ds)
        m.d.comb += [nr_s.eq(r1 - r0), ns_s.eq(c1_ - c0)]

        def stage(prefix, **shapes):
            return {k: Signal(v, name=f"{prefix}_{k}") for k, v in shapes.items()}

        # The first tap's addresses are ``iyr * w + ixs`` and ``wt + (r0 * s + c0) * cw``: the
        # products are taken here (``r0 * s * cw`` as ``r0 * scw``), their sums in S3, so that
        # neither stage has a product and a sum in series (as such S3's, 10 ns on a column
        # alone).
        s2 = stage("s2", i=pb + 1, oaddr=ob + 1, wt=wgb + 1, nr=4, ns=4, ixs=ds, pixm=ab + 8,
                   wr=wgb + 8, wc=wgb + 8)
        # The configuration word's fields, registered straight from the table's read; the
        # segment end is chosen in S3. (The choice after the read, 5.8 ns after the clock,
        # was a column's routed ECP5 path on ``default``'s top: ``cfg_mem`` -> ``s2_segend``,
        # 10 ns.) No reset: ``s_valid`` says whether they hold an item.
        s2.update({k: Signal(cb if k != "omask" else 1, name=f"s2_{k}", reset_less=True)
                   for k in ("start", "mid", "end", "omask")})
        with m.If(adv_c["s2"]):
            m.d.sync += [
                s_valid[2].eq(s_valid[1] & ~start_i),
                s2["i"].eq(s1["i"]), s2["oaddr"].eq(s1["oaddr"]), s2["wt"].eq(s1["wt"]),
                s2["start"].eq(c1["start"]), s2["mid"].eq(c1["mid"]), s2["end"].eq(c1["end"]),
                s2["omask"].eq(c1["omask"]),
                s2["nr"].eq(Mux(nr_s > 0, nr_s, 0)), s2["ns"].eq(Mux(ns_s > 0, ns_s, 0)),
                s2["ixs"].eq(ixs), s2["pixm"].eq(shift_add(iyr, d.w)),
                s2["wr"].eq(shift_add(r0, scw_l)), s2["wc"].eq(shift_add(c0, d.cw)),
            ]

        # S3: addresses of the first valid tap, tap count. The item setup's products are
        # shift-and-add trees (``shift_add``), not multipliers: DSP blocks are for the MACs.
        s3 = stage("s3", i=pb + 1, oaddr=ob + 1, start=cb, mid=cb, end=cb, segend=cb, omask=1,
                   nr=4, ns=4, pix=ab + 8, wt=wgb + 8, taps=tb, cwn=signed(cb + 1))
        with m.If(adv_c["s3"]):
            m.d.sync += [s_valid[3].eq(s_valid[2] & ~start_i)]
            for k in ("i", "oaddr", "start", "mid", "end", "omask", "nr", "ns"):
                m.d.sync += s3[k].eq(s2[k])
            m.d.sync += s3["segend"].eq(Mux(d.gated, s2["mid"], s2["end"]))
            m.d.sync += [
                s3["pix"].eq(s2["pixm"] + s2["ixs"]),
                s3["wt"].eq(s2["wt"] + s2["wr"] + s2["wc"]),
                s3["taps"].eq(shift_add(s2["ns"], s2["nr"])),
                s3["cwn"].eq(s2["end"] - s2["mid"]),
            ]

        # S4: conditional word count (for the skip counter), emptiness.
        with m.If(adv_c["s4"]):
            m.d.sync += [
                s_valid[4].eq(s_valid[3] & ~start_i),
                s4_out.i.eq(s3["i"]), s4_out.oaddr.eq(s3["oaddr"]),
                s4_out.pix.eq(s3["pix"]), s4_out.wt.eq(s3["wt"]),
                s4_out.nr2.eq(s3["nr"] - 2), s4_out.ns2.eq(s3["ns"] - 2),
                s4_out.rone.eq(s3["nr"] == 1), s4_out.sone.eq(s3["ns"] == 1),
                s4_out.start.eq(s3["start"]), s4_out.mid.eq(s3["segend"]),
                s4_out.lend2.eq(s3["segend"] - 2),
                s4_out.lone.eq(s3["start"] + 1 == s3["segend"]),
                s4_out.cend2.eq(s3["end"] - 2), s4_out.cone.eq(s3["segend"] + 1 == s3["end"]),
                s4_out.omask.eq(s3["omask"]), s4_out.need.eq(d.gated & s3["omask"]),
                s4_out.ncw.eq(shift_add(s3["cwn"], s3["taps"])),
                s4_out.empty_b.eq((s3["taps"] == 0) | (s3["segend"] == s3["start"])),
                s4_out.empty_c.eq((s3["taps"] == 0) | (s3["end"] == s3["mid"])),
            ]

        # ------------------------------------------------------------------ issue -------
        slot_layout = data.StructLayout({
            "i": pb, "oaddr": ob, "pix": ab, "wt": wgb, "nr2": 5, "ns2": 5, "rone": 1,
            "sone": 1, "mid": cb, "cend2": cb + 1, "cone": 1, "empty_c": 1,
        })
        # Every slot memory has one write port and one synchronous read port (block RAM):
        # ``slot_mem`` (written the cycle after a base issue) is read for the head of the
        # conditional queue, addressed the cycle before (see "head of the next cycle" below);
        # ``psum_mem`` and ``ncw_mem`` are read at the gate stage, addressed one cycle earlier
        # from the MAC output (``mac.o_meta.slot``, the next cycle's ``res_meta.slot``).
        slot_mem = Memory(shape=slot_layout, depth=nslots, init=[])
        m.submodules.slot_mem = slot_mem
        slot_wp = slot_mem.write_port()
        slot_rp = slot_mem.read_port()
        # A second copy (same writes), read for the head after a pop.
        slot_mem_b = Memory(shape=slot_layout, depth=nslots, init=[])
        m.submodules.slot_mem_b = slot_mem_b
        slot_wp_b = slot_mem_b.write_port()
        slot_rp_b = slot_mem_b.read_port()
        m.d.comb += [slot_wp_b.en.eq(slot_wp.en), slot_wp_b.addr.eq(slot_wp.addr),
                     slot_wp_b.data.eq(slot_wp.data)]
        if cfg.cgnet:
            ncw_mem = Memory(shape=nb, depth=nslots, init=[])
            m.submodules.ncw_mem = ncw_mem
            ncw_wp = ncw_mem.write_port()
            ncw_rp = ncw_mem.read_port()
            psum_mem = Memory(shape=signed(cfg.acc_width), depth=nslots, init=[])
            m.submodules.psum_mem = psum_mem
            psum_wp = psum_mem.write_port()
            psum_rp = psum_mem.read_port()

        # Conditional queue of slot numbers (gates that opened, in order). ``nslots`` entries
        # of ``sb`` bits: a few flip-flops, so it is built from registers, which lets the
        # issue stage see the next head one cycle ahead to address ``slot_mem``. A slot is in
        # the queue at most once, so it never overflows.
        cq = [Signal(sb, name=f"cq{k}") for k in range(nslots)]
        cq_head = Signal(sb)
        cq_level = Signal(range(nslots + 1))
        cq_pop = Signal()
        cq_push = Signal()
        cq_wdata = Signal(sb)
        # The head entry and the one after it are kept in registers (``cq_head_slot``,
        # ``cq_second``), updated with the entry after those (``cq_third``, a multiplexer of
        # flip-flops) and the pushed slot: the slot memories' read address and ``cur_slot``
        # start at flip-flops. (Selected by ``cq_head`` in the cycle of the read, the head was
        # on the column's routed ECP5 paths: ``cq_head`` -> entry multiplexer -> slot read.)
        cq_head_slot = Signal(sb)
        cq_second = Signal(sb)
        cq_third = Signal(sb)
        # ``cq_rdy`` (level != 0) and ``cq_one`` (level == 1) are flags kept with the level:
        # the issue decision and the slot read addresses start at flip-flops.
        cq_rdy = Signal()
        cq_one = Signal()
        cq_two = Signal()
        # The entries are written at every gate decision (``cq_dec``, a flip-flop set with the
        # item's last MAC result), open or not: only the tail and the level wait for the
        # compare (``cq_push``). A closed gate's write lands at the tail, which holds no entry
        # (the deciding item's own slot is not queued, so the queue is not full), and is
        # overwritten by the next push. ``cq_we`` (the decision at the tail, one-hot) and the
        # head-bypass selects (the decision at level 0/1/2) are flip-flops, computed a cycle
        # ahead from the MAC output and the next tail: the entries' clock enables start at a
        # register. (As ``o_open`` & ``tail == k`` they were the column's most failing family
        # at 150 MHz on ECP5, ~35 endpoints per seed: 4 LUT levels from ``gate.i_*``.)
        cq_dec = Signal()
        cq_we = Signal(nslots)
        cq_tail_oh = Signal(nslots, init=1)
        for k in range(nslots):
            with m.If(cq_head == k):
                m.d.comb += cq_third.eq(cq[(k + 2) % nslots])
            with m.If(cq_we[k]):
                m.d.sync += cq[k].eq(cq_wdata)
        at_tail = [cq_dec & ~cq_rdy, cq_dec & cq_one, cq_dec & cq_two]
        with m.If(cq_pop):
            m.d.sync += [cq_head_slot.eq(Mux(at_tail[1], cq_wdata, cq_second)),
                         cq_second.eq(Mux(at_tail[2], cq_wdata, cq_third))]
        with m.Else():
            m.d.sync += [cq_head_slot.eq(Mux(at_tail[0], cq_wdata, cq_head_slot)),
                         cq_second.eq(Mux(at_tail[1], cq_wdata, cq_second))]
        with m.If(cq_push):
            m.d.sync += cq_tail_oh.eq(cq_tail_oh.rotate_left(1))
        with m.If(cq_pop):
            m.d.sync += cq_head.eq(cq_head + 1)
        # Push (gate compare) and pop (end of the issued item) arrive late in the cycle: they
        # only select between precomputed level +- 1 instead of feeding an adder's carry chain.
        with m.If(cq_push & ~cq_pop):
            m.d.sync += [cq_level.eq(cq_level + 1), cq_rdy.eq(1), cq_one.eq(cq_level == 0),
                         cq_two.eq(cq_level == 1)]
        with m.Elif(cq_pop & ~cq_push):
            m.d.sync += [cq_level.eq(cq_level - 1), cq_rdy.eq(cq_level != 1),
                         cq_one.eq(cq_level == 2), cq_two.eq(cq_level == 3)]
        # Head of the next cycle: the pushed slot if the queue is (or becomes) empty, else the
        # entry after a popped head, else the head. Push (gate compare) and pop (end of the
        # issued item) are late, so they do not address ``slot_mem``: each copy reads the
        # head for one case from registers only (``slot_mem`` without a pop: the pushed slot
        # if the queue is empty, else the head; ``slot_mem_b`` after a pop: the pushed slot
        # if the queue held one entry, else the second), and the registered pop picks the
        # copy. As one read addressed by pop and push (``last_now`` -> pop -> next head ->
        # ``slot_mem`` read address) this was the routed ECP5 critical path.
        m.d.comb += [slot_rp.addr.eq(Mux(cq_rdy, cq_head_slot, cq_wdata)),
                     slot_rp_b.addr.eq(Mux(cq_one, cq_wdata, cq_second))]
        cq_pop_d = Signal()
        m.d.sync += cq_pop_d.eq(cq_pop)

        free = Signal(nslots, init=(1 << nslots) - 1)
        alloc_idx = Signal(sb)
        for k in reversed(range(nslots)):
            with m.If(free[k]):
                m.d.comb += alloc_idx.eq(k)
        alloc = Signal()
        release = Signal()
        release_idx = Signal(sb)
        alloc_mask = Signal(nslots)
        release_mask = Signal(nslots)
        # The bitmap's update loop (``free`` -> slot taken -> ``free``) keeps the encoder out:
        # the taken slot is the lowest set bit as ``free & -free`` (one carry chain), and
        # "a slot is free" is a flag kept with a count of free slots, so the base-issue
        # decision reads a flip-flop. As ``free.any()`` and an encoder feeding a decoder it was
        # the routed critical path of ``default``'s top (column 1: ``free`` -> ``cur_slot`` ->
        # ``free``, 17.0 ns, 9 levels). ``alloc_idx`` (the same slot, binary) only addresses.
        m.d.comb += [alloc_mask.eq(Mux(alloc, free & (~free + 1)[:nslots], 0)),
                     release_mask.eq(Mux(release, Const(1, nslots) << release_idx, 0))]
        m.d.sync += free.eq((free & ~alloc_mask) | release_mask)
        n_free = Signal(range(nslots + 1), init=nslots)
        free_any = Signal(init=1)
        with m.If(alloc & ~release):
            m.d.sync += [n_free.eq(n_free - 1), free_any.eq(n_free != 1)]
        with m.Elif(release & ~alloc):
            m.d.sync += [n_free.eq(n_free + 1), free_any.eq(1)]

        in_item = Signal()
        # The end-of-item test ``last_now`` (it drives the queue pop, the setup FIFO read, the
        # slot allocation and the enables of every ``cur_*`` register) reads flip-flops only:
        # ``l_end``, ``s_end``, ``r_end`` say that the word issued this cycle is the last of
        # its list segment, row and item, and are computed a cycle ahead, when the walk steps
        # (``l + 1 == lend - 1`` as ``l == lend - 2``, the wrap to the segment start or tap 0
        # from flags set at the load) or an item is loaded. As compares of the walk counters
        # in this cycle they headed the routed ECP5 critical path (``cur_lend1`` -> compares
        # -> last_now -> queue pop -> ``slot_mem`` read address). The end values are kept
        # minus two, one bit wider so that 0 - 2 never equals a count.
        cur = {k: Signal(v, name=f"cur_{k}") for k, v in dict(
            cond=1, slot=sb, i=pb, oaddr=ob, gated=1, off=1, bubble=1, first=1,
            l=cb, lseg=cb, lend2=cb + 1, lone=1, r=4, s=4, nr2=5, ns2=5, sone=1, pix=ab,
            prow=ab, wt=wgb, wrow=wgb).items()}
        l_end = Signal()
        s_end = Signal()
        r_end = Signal()

        meta_layout = data.StructLayout({
            "first": 1, "last": 1, "cond": 1, "slot": sb, "i": pb, "oaddr": ob, "gated": 1,
            "off": 1,
        })
        iss_valid = Signal()
        iss_l = Signal(cb)
        iss_pix = Signal(ab)
        iss_wt = Signal(wgb)
        iss_bubble = Signal()
        iss_meta = Signal(meta_layout)

        # ``last_now`` is itself a flip-flop, loaded with its next value from the next values
        # of ``in_item``, ``cur_bubble`` and the three end flags (``*_n``, the only source of
        # those registers): as a LUT of the five flags it drove the ``cur_*`` enables, the
        # queue pop and the FIFO read, and that one wide net (4.4 ns of wire) headed a
        # column's routed ECP5 paths (``s_end`` -> ``last_now`` -> ``cur_wrow``).
        last_now = Signal()
        in_item_n = Signal()
        bubble_n = Signal()
        l_end_n = Signal()
        s_end_n = Signal()
        r_end_n = Signal()
        m.d.comb += [in_item_n.eq(in_item), bubble_n.eq(cur["bubble"]), l_end_n.eq(l_end),
                     s_end_n.eq(s_end), r_end_n.eq(r_end)]
        m.d.sync += [in_item.eq(in_item_n), cur["bubble"].eq(bubble_n), l_end.eq(l_end_n),
                     s_end.eq(s_end_n), r_end.eq(r_end_n),
                     last_now.eq(in_item_n & (bubble_n | (l_end_n & s_end_n & r_end_n)))]
        m.d.sync += [
            iss_valid.eq(in_item),
            iss_l.eq(cur["l"]), iss_pix.eq(cur["pix"]), iss_wt.eq(cur["wt"]),
            iss_bubble.eq(cur["bubble"]),
            iss_meta.first.eq(cur["first"]), iss_meta.last.eq(last_now),
            iss_meta.cond.eq(cur["cond"]), iss_meta.slot.eq(cur["slot"]),
            iss_meta.i.eq(cur["i"]), iss_meta.oaddr.eq(cur["oaddr"]),
            iss_meta.gated.eq(cur["gated"]), iss_meta.off.eq(cur["off"]),
        ]
        m.d.comb += self.cnt_word.eq(in_item & ~cur["bubble"])

        # Walk the item: list entries innermost, then taps along a row, then rows.
        with m.If(in_item & ~last_now):
            m.d.sync += cur["first"].eq(0)
            with m.If(~l_end):
                m.d.sync += cur["l"].eq(cur["l"] + 1)
                m.d.comb += l_end_n.eq(cur["l"] == cur["lend2"])
            with m.Else():
                m.d.sync += cur["l"].eq(cur["lseg"])
                m.d.comb += l_end_n.eq(cur["lone"])
                with m.If(~s_end):
                    m.d.sync += [cur["s"].eq(cur["s"] + 1), cur["pix"].eq(cur["pix"] + 1),
                                 cur["wt"].eq(cur["wt"] + d.cw)]
                    m.d.comb += s_end_n.eq(cur["s"] == cur["ns2"])
                with m.Else():
                    m.d.comb += [s_end_n.eq(cur["sone"]), r_end_n.eq(cur["r"] == cur["nr2"])]
                    m.d.sync += [cur["s"].eq(0),
                                 cur["r"].eq(cur["r"] + 1),
                                 cur["prow"].eq(cur["prow"] + d.w),
                                 cur["pix"].eq(cur["prow"] + d.w),
                                 cur["wrow"].eq(cur["wrow"] + scw_l),
                                 cur["wt"].eq(cur["wrow"] + scw_l)]

        fifo_item = Signal(item_layout)
        m.d.comb += fifo_item.eq(setup_fifo.r_data)
        # The queued slot was allocated (written) long before it is read, so the synchronous
        # read of the head never races a write of the same slot.
        sl = Signal(slot_layout)
        m.d.comb += sl.eq(Mux(cq_pop_d, slot_rp_b.data, slot_rp.data))
        # ``d.gated & omask``, stored with the item (``d`` holds one tile until the FIFO is
        # empty): ``d.gated``'s wire in front of the issue decision was a routed ECP5 path
        # (``d.gated`` -> setup FIFO head -> ``in_item`` -> ``cur_*`` enables). Without
        # gating ``d.gated`` is a constant 0 and synthesis drops the slot logic.
        need_slot = sf_need if cfg.cgnet else d.gated & fifo_item.omask
        # The slot memories are written the cycle after the base issue, from registers (their
        # write ports were on the column's worst routed paths: ``free`` -> issue decision ->
        # LUT-RAM write enable); a slot is read only after its gate's decision, many cycles on.
        sw_en = Signal()
        sw_addr = Signal(sb, reset_less=True)
        sw_data = Signal(slot_layout, reset_less=True)
        sw_ncw = Signal(nb, reset_less=True)
        m.d.sync += sw_en.eq(0)
        # The slot write's address and data load every cycle, from the FIFO's head and the
        # slot the issue would take: in the cycle after a base issue (``sw_en``) they are that
        # item's. (Loaded only at the issue, the issue decision was their enable: ``l_end`` ->
        # ``last_now`` -> 300 enables, a column's routed ECP5 paths on ``default``'s top.)
        m.d.sync += [
            sw_addr.eq(alloc_idx),
            sw_data.i.eq(fifo_item.i), sw_data.oaddr.eq(fifo_item.oaddr),
            sw_data.pix.eq(fifo_item.pix), sw_data.wt.eq(fifo_item.wt),
            sw_data.nr2.eq(fifo_item.nr2), sw_data.ns2.eq(fifo_item.ns2),
            sw_data.rone.eq(fifo_item.rone), sw_data.sone.eq(fifo_item.sone),
            sw_data.mid.eq(fifo_item.mid), sw_data.cend2.eq(fifo_item.cend2),
            sw_data.cone.eq(fifo_item.cone), sw_data.empty_c.eq(fifo_item.empty_c),
            sw_ncw.eq(fifo_item.ncw),
        ]
        m.d.comb += [slot_wp.en.eq(sw_en), slot_wp.addr.eq(sw_addr), slot_wp.data.eq(sw_data)]
        if cfg.cgnet:
            # Without gating no slot's psum or skipped-word count is ever read: no storage
            # (synthesis kept the never-written psum memory's flip-flops otherwise).
            m.d.comb += [ncw_wp.en.eq(sw_en), ncw_wp.addr.eq(sw_addr), ncw_wp.data.eq(sw_ncw)]
        outstanding = Signal(range(cfg.out_depth + nslots + 8))
        pop_base = Signal()
        m.d.comb += pop_base.eq(0)

        def load(cond, slot, i, oaddr, gated, off, bubble, lseg, lend2, lone, nr2, ns2, rone,
                 sone, pix, wt):
            # ``lend2`` = end - 2, ``nr2`` = rows - 2, ``ns2`` = taps of a row - 2; ``lone``
            # (``lseg + 1 == lend`` in ``cb + 1`` bits, as the walk compares), ``rone``, ``sone``:
            # one list entry, row, tap (from the item setup, S4).
            m.d.comb += [in_item_n.eq(1), bubble_n.eq(bubble), l_end_n.eq(lone),
                         s_end_n.eq(sone), r_end_n.eq(rone)]
            m.d.sync += [
                cur["cond"].eq(cond), cur["slot"].eq(slot), cur["i"].eq(i),
                cur["oaddr"].eq(oaddr), cur["gated"].eq(gated), cur["off"].eq(off),
                cur["first"].eq(1), cur["l"].eq(lseg),
                cur["lseg"].eq(lseg), cur["lend2"].eq(lend2), cur["r"].eq(0),
                cur["s"].eq(0), cur["nr2"].eq(nr2), cur["ns2"].eq(ns2),
                cur["lone"].eq(lone), cur["sone"].eq(sone),
                cur["pix"].eq(pix), cur["prow"].eq(pix),
                cur["wt"].eq(wt), cur["wrow"].eq(wt),
            ]

        with m.If(~in_item | last_now):
            with m.If(cq_rdy):
                m.d.comb += cq_pop.eq(1)
                load(1, cq_head_slot, sl.i, sl.oaddr, 1, 0, sl.empty_c, sl.mid, sl.cend2,
                     sl.cone, sl.nr2, sl.ns2, sl.rone, sl.sone, sl.pix, sl.wt)
            with m.Elif(sf_rdy & (~need_slot | free_any)):
                m.d.comb += [setup_fifo.r_en.eq(1), pop_base.eq(1), alloc.eq(need_slot)]
                load(0, alloc_idx, fifo_item.i, fifo_item.oaddr, need_slot, ~fifo_item.omask,
                     ~fifo_item.omask | fifo_item.empty_b, fifo_item.start, fifo_item.lend2,
                     fifo_item.lone, fifo_item.nr2, fifo_item.ns2, fifo_item.rone,
                     fifo_item.sone, fifo_item.pix, fifo_item.wt)
                m.d.sync += sw_en.eq(need_slot)
            with m.Else():
                m.d.comb += in_item_n.eq(0)

        # ------------------------------------------------------- operand fetch ----------
        list_rp = table_port(list_mem)
        m.d.comb += list_rp.addr.eq(Cat(iss_l[:lb], bank))
        ad_valid = Signal()
        ad_pix = Signal(ab)
        ad_wt = Signal(wgb)
        ad_bubble = Signal()
        ad_meta = Signal(meta_layout)
        m.d.sync += [ad_valid.eq(iss_valid), ad_pix.eq(iss_pix), ad_wt.eq(iss_wt),
                     ad_bubble.eq(iss_bubble), ad_meta.eq(iss_meta)]
        # The list entry is registered twice after its read port, two fetch stages: first
        # right after it, loaded every cycle with no reset (``entry_q``: the block RAMs'
        # output registers under ``--bram-outreg``, 0.9 ns clock-to-out on ECP5 instead of
        # 5.8), then in the fabric (``entry``), so that the operand address adders start at
        # a flip-flop near the operand buffers. (Either register alone left a long path on
        # ``default``'s top: block-RAM output -> wire -> fabric register with no logic, or
        # the list's block-RAM site -> address adders -> operand block-RAM address.)
        # (Without ``hard_block_regs`` only the fabric register.)
        entry = Signal(geo.list_width, reset_less=cfg.hard_block_regs)
        if cfg.hard_block_regs:
            entry_q = Signal(geo.list_width, reset_less=True)
            m.d.sync += [entry_q.eq(list_rp.data), entry.eq(entry_q)]
            aq_valid = Signal()
            aq_pix = Signal(ab)
            aq_wt = Signal(wgb)
            aq_bubble = Signal()
            aq_meta = Signal(meta_layout)
            m.d.sync += [aq_valid.eq(ad_valid), aq_pix.eq(ad_pix), aq_wt.eq(ad_wt),
                         aq_bubble.eq(ad_bubble), aq_meta.eq(ad_meta)]
        else:
            m.d.sync += entry.eq(list_rp.data)
            aq_valid, aq_pix, aq_wt, aq_bubble, aq_meta = (ad_valid, ad_pix, ad_wt,
                                                           ad_bubble, ad_meta)
        le_valid = Signal()
        le_pix = Signal(ab)
        le_wt = Signal(wgb)
        le_bubble = Signal()
        le_meta = Signal(meta_layout)
        m.d.sync += [le_valid.eq(aq_valid), le_pix.eq(aq_pix), le_wt.eq(aq_wt),
                     le_bubble.eq(aq_bubble), le_meta.eq(aq_meta)]
        lo = geo.list_off_bits
        e_off = entry[:lo]
        e_cw = entry[lo:lo + geo.cw_bits]
        e_mask = entry[lo + geo.cw_bits:lo + geo.cw_bits + rows]
        # The ``ab + 1``-bit word address, MSB = half: ``Cat(off + pix, bank)`` for a tile in
        # one half (its offsets and pixels stay below ``act_depth``, the engine checks), the
        # band's own address for a ``wide`` tile (``act_hi = 0``, offsets up to
        # ``2 * act_depth``; pixels of one plane stay below ``act_depth``, also checked). One
        # adder one bit wider than before, no multiplexer.
        # A masked lane's activation is zeroed as it enters its fabric register, and the MAC
        # gets every lane enabled: its operand registers are then plain copies, which
        # ``cgaccel synth --dsp-inreg`` moves into the DSPs' input registers (a lane enable
        # there becomes a synchronous reset per multiplier, and a DSP block of four
        # multipliers takes four reset nets at most). Same products in every cycle.
        mq_mask = Signal(rows)
        act_data = act_read((e_off + Cat(le_pix, act_hi))[:ab + 1], mask=mq_mask)
        wgt_data = wgt_read(Cat((e_cw + le_wt)[:wgb], bank))
        md_valid = Signal()
        md_mask = Signal(rows)
        md_meta = Signal(meta_layout)
        m.d.sync += [md_valid.eq(le_valid), md_mask.eq(Mux(le_bubble, 0, e_mask)),
                     md_meta.eq(le_meta)]
        # The side band through the operands' block-RAM output registers (``mq_*``).
        mq_valid = Signal()
        mq_meta = Signal(meta_layout)
        m.d.sync += [mq_valid.eq(md_valid), mq_mask.eq(md_mask), mq_meta.eq(md_meta)]
        # The operands reach the multipliers through a register right after the block-RAM
        # read ports (``act_read``/``wgt_read``: the DP16KD output-register style), one fetch
        # stage more: block-RAM output -> multiplier -> product register was the routed ECP5
        # critical path (5.8 ns of block-RAM clock-to-out, then a multiplexer and the
        # MULT18X18D). The side band follows in ``mo_*``.
        mo_valid = Signal()
        mo_meta = Signal(meta_layout)
        m.d.sync += [mo_valid.eq(mq_valid), mo_meta.eq(mq_meta)]

        sum_width = aw + ww + max(1, (rows - 1).bit_length())
        mac = MacColumn(rows, aw, ww, sum_width, meta_layout.size)
        m.submodules.mac = mac
        m.d.comb += [mac.i_valid.eq(mo_valid), mac.i_act.eq(act_data),
                     mac.i_wgt.eq(wgt_data), mac.i_mask.eq(Const((1 << rows) - 1, rows)),
                     mac.i_meta.eq(mo_meta)]

        # ------------------------------------------------------------ accumulate --------
        o_meta = Signal(meta_layout)
        m.d.comb += o_meta.eq(mac.o_meta)
        # The threshold is read one cycle early (with the channel of the item one MAC stage
        # before the output, ``thr_i``) and registered (``thr_q``), so that the gate compare
        # starts at a flip-flop instead of the block RAM's slow, unregistered output (the
        # routed ECP5 critical path was thr_mem -> compare -> gate -> output unit).
        # MacColumn has no flow control, so that channel is ``o_meta.i`` of the next cycle;
        # the bank does not change while a tile's items are in flight.
        # With a MAC of two stages or more the threshold is read one cycle earlier still
        # (``early``) and the compare moves into the accumulate stage, registered as
        # ``res_above``: the gate decision feeding the conditional-path queue's push was then
        # the engine's routed ECP5 critical path (32-bit compare -> push -> queue entry
        # enables); the accumulate stage's adder and the compare in series end at one
        # flip-flop. The compare sees the wrapped ``acc_new``, as ``res_psum`` holds it.
        # Same cycles.
        early = mac.latency >= 2
        thr_i = Signal(pb)
        thr_d = mo_meta.i
        for k in range(mac.latency - (2 if early else 1)):
            nxt = Signal(pb, name=f"thr_i{k}")
            m.d.sync += nxt.eq(thr_d)
            thr_d = nxt
        m.d.comb += thr_i.eq(thr_d)
        thr_rp = table_port(thr_mem)
        thr_q = Signal(signed(32), reset_less=True)
        m.d.comb += thr_rp.addr.eq(Cat(thr_i, bank))
        m.d.sync += thr_q.eq(thr_rp.data)
        acc = Signal(signed(cfg.acc_width))
        acc_base = Signal(signed(cfg.acc_width))
        acc_new = Signal(signed(cfg.acc_width))
        m.d.comb += [acc_base.eq(Mux(o_meta.first, 0, acc)), acc_new.eq(acc_base + mac.o_sum)]
        res_valid = Signal()
        res_psum = Signal(signed(cfg.acc_width))
        res_meta = Signal(meta_layout)
        m.d.sync += [res_valid.eq(mac.o_valid & o_meta.last), res_psum.eq(acc_new),
                     res_meta.eq(o_meta)]
        # The gate unit's ``decide`` a cycle early, for the queue's writes (see ``cq_dec``).
        dec_n = Signal()
        m.d.comb += dec_n.eq(mac.o_valid & o_meta.last & o_meta.gated & ~o_meta.cond
                             & ~o_meta.off)
        m.d.sync += [cq_dec.eq(dec_n),
                     cq_we.eq(Mux(dec_n, Mux(cq_push, cq_tail_oh.rotate_left(1), cq_tail_oh),
                                  0))]
        with m.If(mac.o_valid):
            m.d.sync += acc.eq(acc_new)
        res_above = Signal()
        if early:
            # ``acc_new > thr_q`` without the compare's carry chain after the sum's (as such
            # the routed ECP5 critical path of a column alone: ``o_meta.first`` -> sum ->
            # compare -> ``res_above``, 39 logic levels).
            m.d.sync += res_above.eq(wrapped_sum_above(m, acc_base, mac.o_sum, thr_q, "above"))

        # ------------------------------------------------------------ gate decision -----
        gate = GateUnit(cfg.acc_width, early=early)
        m.submodules.gate = gate
        # The base psum of a slot is written at its gate decision (``cq_dec``; a closed gate's
        # slot is released unread) and read when its conditional item finishes, at least
        # ``gate_latency`` cycles later: no read-write race.
        if cfg.cgnet:
            m.d.comb += [psum_rp.addr.eq(o_meta.slot), ncw_rp.addr.eq(o_meta.slot),
                         gate.i_base.eq(psum_rp.data),
                         psum_wp.en.eq(cq_dec), psum_wp.addr.eq(res_meta.slot),
                         psum_wp.data.eq(res_psum),
                         self.cnt_skip.eq(Mux(gate.o_closed, ncw_rp.data, 0))]
        m.d.comb += [
            gate.i_valid.eq(res_valid), gate.i_psum.eq(res_psum),
            (gate.i_above.eq(res_above) if early else gate.i_thr.eq(thr_q)),
            gate.i_cond.eq(res_meta.cond),
            gate.i_gated.eq(res_meta.gated), gate.i_off.eq(res_meta.off),
        ]
        m.d.comb += [
            cq_push.eq(gate.o_open), cq_wdata.eq(res_meta.slot),
            release.eq(gate.o_closed | (res_valid & res_meta.cond)),
            release_idx.eq(res_meta.slot),
            self.cnt_open.eq(gate.o_open),
        ]

        # ------------------------------------------------------------ output ------------
        # Double-buffered output tiles (``obuf``) live in the half of their bank.
        oaddr_full = Signal(ob)
        m.d.comb += oaddr_full.eq(Mux(d.obuf, Cat(res_meta.oaddr[:oh], bank), res_meta.oaddr))
        bias_rp = table_port(bias_mem)
        mult_rp = table_port(mult_mem)
        shift_rp = table_port(shift_mem)
        # Like the threshold, the output parameters are read one cycle early (with the MAC
        # output's channel, the next cycle's ``res_meta.i``) and registered next to ``o0_*``,
        # so the output unit's first stage (``acc + bias``, ``shift - 1``) starts at
        # flip-flops, not at block-RAM outputs.
        m.d.comb += [bias_rp.addr.eq(Cat(o_meta.i, bank)),
                     mult_rp.addr.eq(Cat(o_meta.i, bank)),
                     shift_rp.addr.eq(Cat(o_meta.i, bank))]
        # No reset: they load every cycle and are used only with ``o0_valid``, so
        # ``--bram-outreg`` can move them into the block RAMs' output registers.
        o0_bias = Signal(signed(32), reset_less=True)
        o0_mult = Signal(32, reset_less=True)
        o0_shift = Signal(6, reset_less=True)
        m.d.sync += [o0_bias.eq(bias_rp.data), o0_mult.eq(mult_rp.data),
                     o0_shift.eq(shift_rp.data)]
        o0_valid = Signal()
        o0_acc = Signal(signed(cfg.acc_width))
        o0_off = Signal()
        o0_addr = Signal(ob)
        m.d.sync += [o0_valid.eq(gate.o_out), o0_acc.eq(gate.o_acc), o0_off.eq(res_meta.off),
                     o0_addr.eq(oaddr_full)]
        ou = OutputUnit(aw, cfg.acc_width, ob, dsp_copy=cfg.hard_block_regs)
        m.submodules.output_unit = ou
        m.d.comb += [
            ou.i_valid.eq(o0_valid), ou.i_acc.eq(o0_acc), ou.i_off.eq(o0_off),
            ou.i_addr.eq(o0_addr), ou.i_bias.eq(o0_bias), ou.i_mult.eq(o0_mult),
            ou.i_shift.eq(o0_shift),
            ou.relu.eq(d.relu), ou.residual.eq(d.residual),
        ]
        # Output bank ports. Two writers (results of the running tile, residual preloads of
        # the next one) and two readers (residuals of the running tile, write-back of a
        # finished one) never use the same half in the same cycle: the engine holds preloads
        # and write-back reads off every half that a tile accepted and not finished by every
        # column uses (both halves for a single-buffered tile), and this column's results and
        # residual reads only go to such a half. So each half memory gets one write port and
        # one read port, each a multiplexer between its two users, and no access ever waits.
        # Residual reads use the output unit's registered input (``o0_*``), not the gate
        # decision of this cycle: the unit takes the residual ``res_delay`` cycles later, and the
        # bank's read address stays off the BRAM -> threshold compare -> gate path.
        assert OutputUnit.res_delay == 2
        res_half = o0_addr[oh]
        pre_en = wq_en & (wq_target == Target.OUT)
        rd_half = self.rd_addr[oh]
        out_rd = []
        for h, lane_mems in enumerate(out_mems):
            ou_here = ou.o_valid & (ou.o_addr[oh] == h)
            w_addr = Signal(oh, name=f"out_wa{h}")
            w_en = Signal(name=f"out_we{h}")
            w_data = Signal(aw, name=f"out_wd{h}")
            m.d.comb += [
                w_en.eq(ou_here | (pre_en & (wq_addr[oh] == h))),
                w_addr.eq(Mux(ou_here, ou.o_addr[:oh], wq_addr[:oh])),
                w_data.eq(Mux(ou_here, ou.o_data, wq_data[:aw])[:aw]),
            ]
            for k, mem in enumerate(lane_mems):
                wp = write_ports[id(mem)] = mem.write_port()
                here = w_en & (w_addr[:lgw] == k) if ow > 1 else w_en
                m.d.comb += [wp.addr.eq(w_addr[lgw:]), wp.data.eq(w_data), wp.en.eq(here)]
            res_here = o0_valid & (res_half == h)
            r_addr = Signal(oh - lgw, name=f"out_ra{h}")
            m.d.comb += r_addr.eq(Mux(res_here, o0_addr[lgw:oh], self.rd_addr[lgw:oh]))
            ports = [read_port(mem) for mem in lane_mems]
            m.d.comb += [rp.addr.eq(r_addr) for rp in ports]
            out_rd.append(Cat(*(rp.data for rp in ports)))
        # Each half's word is registered first, every cycle and with no reset: the block
        # RAMs' output registers under ``--bram-outreg`` (0.9 ns clock-to-out on ECP5 instead
        # of 5.8 ns). Residuals select their lane after it (``res_delay`` 2); the write-back
        # takes its word from it too, so nothing else reads the block RAMs.
        res_q = [Signal(ow * aw, name=f"res_q{h}", reset_less=True) for h in range(2)]
        m.d.sync += [q.eq(rd) for q, rd in zip(res_q, out_rd, strict=True)]
        res_half_d = Signal()
        res_half_dd = Signal()
        m.d.sync += [res_half_d.eq(res_half), res_half_dd.eq(res_half_d)]
        res_word = Signal(ow * aw)
        m.d.comb += res_word.eq(Mux(res_half_dd, res_q[1], res_q[0]))
        if ow > 1:
            res_lane_d = Signal(lgw)
            res_lane_dd = Signal(lgw)
            m.d.sync += [res_lane_d.eq(o0_addr[:lgw]), res_lane_dd.eq(res_lane_d)]
            m.d.comb += ou.i_res.eq(res_word.word_select(res_lane_dd, aw))
        else:
            m.d.comb += ou.i_res.eq(res_word)
        # Write-back data: the whole word, registered two cycles after ``rd_en`` (from
        # ``res_q``) and held there (the read port is shared with residual reads of a later
        # tile). Only ``rd_hold`` leaves the column: the output registers stay off the
        # engine's lane multiplexers.
        rd_pend = Signal(2)
        rd_half_d = Signal(2)
        rd_hold = Signal(ow * aw)
        m.d.sync += [rd_pend.eq(Cat(self.rd_en, rd_pend[0])),
                     rd_half_d.eq(Cat(rd_half, rd_half_d[0]))]
        with m.If(rd_pend[1]):
            m.d.sync += rd_hold.eq(Mux(rd_half_d[1], res_q[1], res_q[0]))
        m.d.comb += self.rd_data.eq(rd_hold)

        # ------------------------------------------------------------ completion --------
        done_write = ou.o_valid
        # Counted from ``pop_base`` a cycle late (``pop_base_d``, a flip-flop): ``pop_base``
        # comes from the issue decision (``l_end`` -> ``last_now``), and as the count's
        # enable it was a column's routed ECP5 path on ``default``'s top. An item's output is
        # written many cycles after its issue, so the count never goes below 0; in the cycle
        # after an issue ``in_item`` is set, so the completion test below is not affected.
        pop_base_d = Signal()
        m.d.sync += pop_base_d.eq(pop_base)
        with m.If(pop_base_d & ~done_write):
            m.d.sync += outstanding.eq(outstanding + 1)
        with m.Elif(done_write & ~pop_base_d):
            m.d.sync += outstanding.eq(outstanding - 1)
        # ``fin`` is a flip-flop, a cycle after ``busy`` falls: the completion test above
        # reaches the engine's ``remaining`` and, through it, every buffer-write and command
        # ``ready``; as a pulse straight from it that was a routed ECP5 critical path.
        m.d.sync += self.fin.eq(0)
        with m.If(start_i):
            m.d.sync += self.busy.eq(1)
        with m.Elif(self.busy & ~ff & ~gen_active & ~s_valid[1] & ~s_valid[2] & ~s_valid[3]
                    & ~s_valid[4] & ~setup_fifo.r_rdy & ~in_item & ~cq_rdy
                    & (outstanding == 0) & ~pop_base & ~pop_base_d):
            m.d.sync += [self.busy.eq(0), self.fin.eq(1), self.fin_bank.eq(bank)]
        if self._check:
            m.d.comb += self.cnt_collide.eq(Cat(collisions).any())
        return m
