"""AXI4 read DMA: byte-addressed commands in, a realigned byte stream out."""

from amaranth.hdl import Cat, Const, Module, Mux, ResetInserter, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..axi import BURST_INCR
from ..rtl import LOCAL_COPY
from .common import (
    AXI4ReadSignature,
    BufferFIFO,
    DMAError,
    SmallFIFO,
    burst_register,
    command_layout,
    decode_stage,
    read_beat_layout,
    resolve_params,
    resp_error,
)

__all__ = ["ReadDMA"]


class ReadDMA(wiring.Component):
    """Read ``length`` bytes from ``addr`` over AXI4 and stream them out, realigned.

    Bursts are INCR, at most ``max_burst`` beats, never cross a 4 KiB boundary, always use the
    full data width (``arsize`` = log2 of the bytes per beat) and use ID 0 only, so responses
    come back in order and no reorder buffer is needed. Up to ``max_outstanding`` bursts are in
    flight; a burst is only issued when the data buffer (``max_burst * max_outstanding`` beats)
    has room for all its beats, so ``rready`` never drops because of output backpressure.
    Commands are pipelined: the next command is accepted as soon as every burst of the current
    one has been issued.

    Members
    -------
    cmd : ``In(stream.Signature(command_layout(addr_width, len_width)))``
        ``addr`` (any byte alignment) and ``length`` (1..``2**len_width`` bytes).
    o_stream : ``Out(stream.Signature(read_beat_layout(data_width)))``
        The bytes of each command in order, byte ``addr`` in bits 7:0 of the first beat,
        ``count`` valid bytes (``data_width // 8`` except on a short last beat), ``last`` on the
        command's final beat. Bytes above ``count`` on the last beat are unspecified.
    m_axi : ``Out(AXI4ReadSignature(...))``
        AR and R channels, names as cocotbext-axi expects.
    abort : ``In(1)``
        Stop: no new burst is issued, the output beat held (if any) is dropped, outstanding
        bursts are drained (``rready`` high, data discarded), then the engine is idle with the
        error cleared. ``busy`` stays high until then.
    busy : ``Out(1)``
        A command, a burst or a drain is in progress.
    done : ``Out(1)``
        One-cycle pulse: a command's last beat was transferred, or (with ``error`` high) a
        drain after an error has finished.
    error, error_code : ``Out(1)``, ``Out(DMAError)``
        Sticky: the first error seen. After an error no new burst is issued, outstanding
        bursts drain, every command in flight is dropped, and ``cmd.ready`` stays low until
        ``abort``.
    counter_clear : ``In(1)``
        Zero the counters.
    bytes_read : ``Out(counter_width)``
        Bytes transferred on ``o_stream`` (``count`` summed). Counted a cycle late: a beat's
        bytes are added the cycle after its transfer, and those of a beat transferred in the
        cycle of a clear belong before it and are dropped.
    stall_cycles : ``Out(counter_width)``
        Cycles ``o_stream.ready`` was high, ``o_stream.valid`` low and a command was pending:
        the consumer waiting on DRAM data. Counted a cycle late (it includes a stall one
        cycle after it happened).

    Parameters
    ----------
    params : AccelConfig or DMAParams, optional
        Or the :class:`~cgaccel.dma.common.DMAParams` arguments as keywords.
    """

    def __init__(self, params=None, **kwargs):
        self._p = p = resolve_params(params, kwargs)
        super().__init__({
            "cmd": In(stream.Signature(command_layout(p.addr_width, p.len_width))),
            "o_stream": Out(stream.Signature(read_beat_layout(p.data_width))),
            "m_axi": Out(AXI4ReadSignature(p)),
            "abort": In(1),
            "busy": Out(1),
            "done": Out(1),
            "error": Out(1),
            "error_code": Out(DMAError),
            "counter_clear": In(1),
            "bytes_read": Out(p.counter_width),
            "stall_cycles": Out(p.counter_width),
        })

    @property
    def params(self):
        return self._p

    @property
    def buffer_beats(self):
        """Beats of data buffering (room for ``max_outstanding`` full bursts)."""
        return self._p.max_burst * self._p.max_outstanding

    def elaborate(self, platform):
        m = Module()
        p = self._p
        nbytes, sh = p.beat_bytes, p.beat_shift
        width = p.data_width
        depth = self.buffer_beats
        axi = self.m_axi
        out = self.o_stream

        # Modes: running, draining (after an error or abort), halted (error reported).
        draining = Signal()
        halted = Signal()
        code = Signal(DMAError)
        # ``~draining & ~halted`` as a flip-flop, loaded with its next value (see the errors
        # section): as a LUT after ``halted`` it led the routed ECP5 paths into the
        # realigner's counters. Same value in every cycle.
        run = Signal(init=1)
        flush = Signal()  # one cycle at the end of a drain: every internal queue is emptied

        # Per-command parameters for the realigner, queued so that bursts of the next command
        # can be issued while the current one is still streaming out: the start offset, the
        # output beats and the last output beat's byte count, and the bus beats it spans (from
        # the decode stage). The output counts are formed at the tail, from the decode stage's
        # registers: formed at the head, their adders followed the queue's read multiplexer.
        rq_layout = data.StructLayout({"off": sh, "obeats": p.beats_width,
                                       "lcount": nbytes.bit_length(), "beats": p.beats_width})
        m.submodules.rq = rq = ResetInserter(flush)(
            SmallFIFO(width=rq_layout.size, depth=4, spare_slot=True, head_reg=True))
        # The beat buffer's read leaves the block RAM through its output register (``outreg``):
        # read straight out of the block RAM into the realigner, it was a routed ECP5 path
        # of ``default``'s top at every seed (5.8 ns clock-to-out, then the wire). A beat
        # reaches the realigner a cycle later.
        m.submodules.buf = fifo = ResetInserter(flush)(
            BufferFIFO(width=width, depth=depth, outreg=depth >= 3))

        # ---- Command intake: descriptor checks in a register stage -------------------------
        issuing = Signal()
        cur = Signal(p.addr_width)              # next burst address, beat aligned
        left = Signal(p.beats_width)            # beats still to request for this command
        dcmd, in_intake = decode_stage(m, p, self.cmd, run, flush)
        dec = dcmd.payload
        bad = dec.bad
        take = Signal()
        m.d.comb += [
            dcmd.ready.eq(run & ~issuing & rq.w_rdy),
            take.eq(dcmd.valid & dcmd.ready),
        ]
        entry = data.View(rq_layout, rq.w_data)
        m.d.comb += [
            entry.off.eq(dec.addr[:sh]),
            entry.obeats.eq((dec.len_m1 >> sh) + 1),
            entry.lcount.eq(dec.len_m1[:sh] + 1),
            entry.beats.eq(dec.beats),
            rq.w_en.eq(take & (bad == DMAError.NONE)),
        ]

        # ---- AR channel --------------------------------------------------------------------
        commit = Signal()
        pop = Signal()
        # Buffer beats neither requested nor consumed: ``depth`` less the beats reserved, kept
        # as the room rather than the reservation, so the issue condition compares two
        # registers instead of an adder's sum with a constant.
        free = Signal(range(depth + 1), init=depth)
        beats, beats_ok, fits = burst_register(m, p, left, dec.addr, dec.cap, dec.beats,
                                               take & (bad == DMAError.NONE), commit, free, pop)
        outstanding = Signal(range(p.max_outstanding + 1))
        ar_valid = Signal()
        ar_addr = Signal(p.addr_width)
        ar_len = Signal(8)
        # ``outstanding < max_outstanding`` as a flip-flop, updated with the count, and
        # ``beats <= free`` as one (``fits``, see :func:`burst_register`): their compares fed
        # ``commit`` and, through it, the enables of ``cur``, ``left`` and the burst registers
        # (routed ECP5 paths).
        out_ok = Signal(init=1)
        m.d.comb += commit.eq(issuing & run & beats_ok & out_ok & fits
                              & (~ar_valid | axi.arready))
        m.d.comb += [
            axi.arvalid.eq(ar_valid),
            axi.araddr.eq(ar_addr),
            axi.arlen.eq(ar_len),
            axi.arid.eq(0),
            axi.arsize.eq(sh),
            axi.arburst.eq(BURST_INCR),
            axi.arlock.eq(0),
            axi.arcache.eq(0b0011),
            axi.arprot.eq(0),
            axi.arqos.eq(0),
        ]
        with m.If(commit):
            m.d.sync += [
                ar_valid.eq(1),
                ar_addr.eq(cur),
                ar_len.eq(beats - 1),
                cur.eq(cur + (beats << sh)),
                left.eq(left - beats),
                issuing.eq(left != beats),
            ]
        with m.Elif(axi.arready):
            m.d.sync += ar_valid.eq(0)
        with m.If(take & (bad == DMAError.NONE)):
            m.d.sync += [
                cur.eq(Cat(Const(0, sh), dec.addr[sh:])),
                left.eq(dec.beats),
                issuing.eq(1),
            ]

        # ---- R channel ---------------------------------------------------------------------
        r_go = Signal()
        r_ok = Signal()
        m.d.comb += [
            axi.rready.eq(~run | fifo.w_rdy),
            r_go.eq(axi.rvalid & axi.rready),
            r_ok.eq(~axi.rresp[1]),
        ]

        # Beats are stored rotated by their command's start offset, byte ``(j + off) % nbytes``
        # in lane j: the realigner then takes each output byte lane from one of two stored beats
        # under a registered mask, one LUT between the block RAM's output and the output
        # register, instead of a byte shifter behind the RAM's slow clock-to-out (the routed
        # critical path). The rotation is done on ``rdata``, which comes from flip-flops. The
        # offset of each beat comes from a copy of the command queue walked by the beats written
        # (the realigner walks ``rq`` by the same counts): R data never precedes its AR, and
        # a command's AR follows its intake by two cycles, so the head is loaded in time.
        m.submodules.tq = tq = ResetInserter(flush)(
            SmallFIFO(width=sh + p.beats_width + 1, depth=4, spare_slot=True))
        t_active = Signal()
        t_left = Signal(p.beats_width)
        t_one = Signal()    # ``t_left == 1`` as a flip-flop, updated with the count
        # The offset in copies, one per two byte lanes (``LOCAL_COPY``): one register would
        # fan out to every lane's multiplexer.
        t_offs = [Signal(sh, name=f"t_off{k}", attrs=LOCAL_COPY) for k in range(nbytes // 2)]
        # ``one``: the command spans one beat, compared as it is queued (from the decode
        # stage's registers): compared at the head, behind the queue's read multiplexer, it
        # was a routed ECP5 path of ``default``'s top (``tq.rd`` -> ``t_one``, 8 levels).
        t_head = data.View(data.StructLayout({"off": sh, "beats": p.beats_width, "one": 1}),
                           tq.r_data)
        wrote = Signal()    # an R beat taken into the buffer (rotated, a cycle later)
        m.d.comb += wrote.eq(axi.rvalid & axi.rready & run & r_ok)
        lanes = [axi.rdata.word_select(k, 8) for k in range(nbytes)]
        # The rotated beat goes through a register (no reset: ``w_valid`` qualifies it) before
        # the buffer: straight from the rotation, the port flip-flops' wire and four LUTs ran
        # into the block RAM's data inputs (the routed ECP5 critical path of ``default``'s
        # top). The buffer has room for it: every beat in flight was reserved at its burst.
        w_beat = Signal(width, reset_less=True)
        w_valid = Signal()
        m.d.sync += [
            # Lane j of the stored beat: lane ``(off + j) % nbytes`` of ``rdata``, selected by
            # the offset register itself (the inputs are permuted per lane, no adder).
            w_beat.eq(Cat(*(Cat(*(lanes[(s + j) % nbytes] for s in range(nbytes)))
                            .word_select(t_offs[j // 2], 8) for j in range(nbytes)))),
            w_valid.eq(wrote & ~flush),
        ]
        m.d.comb += [
            fifo.w_en.eq(w_valid),
            fifo.w_data.eq(w_beat),
            tq.w_en.eq(rq.w_en),
            tq.w_data.eq(Cat(dec.addr[:sh], dec.beats, dec.beats == 1)),
        ]
        with m.If(wrote):
            m.d.sync += [t_left.eq(t_left - 1), t_one.eq(t_left == 2)]
        with m.If(~t_active | (wrote & t_one)):
            m.d.comb += tq.r_en.eq(1)
            m.d.sync += [t_active.eq(tq.r_rdy), t_left.eq(t_head.beats),
                         t_one.eq(t_head.one)]
            m.d.sync += [t_off.eq(t_head.off) for t_off in t_offs]
        with m.If(flush):
            m.d.sync += t_active.eq(0)
        r_burst_end = r_go & axi.rlast
        m.d.sync += outstanding.eq(outstanding + commit - r_burst_end)
        with m.If(commit & ~r_burst_end):
            m.d.sync += out_ok.eq(outstanding != p.max_outstanding - 1)
        with m.Elif(r_burst_end & ~commit):
            m.d.sync += out_ok.eq(outstanding != 0)     # as the wrapped compare would

        # ---- Realigner: shift by the start offset, cut into output beats ------------------
        active = Signal()
        from_buf = Signal(nbytes)
        in_left = Signal(p.beats_width)
        # ``in_left != 0`` as a flip-flop (an OR tree over ``in_left`` in front of ``pop``,
        # which enables every data register of the realigner, was the next path).
        more_in = Signal()
        out_left = Signal(p.beats_width)
        out_nz = Signal()       # ``out_left != 0`` as a flip-flop, as ``more_in``
        last_count = Signal(nbytes.bit_length())
        buf = Signal(width)
        buf_valid = Signal()
        # Copies of ``buf_valid`` for the per-lane enables (see ``pops`` below).
        ngroups = nbytes // 2
        bv_copies = [Signal(name=f"buf_valid{k}", attrs=LOCAL_COPY) for k in range(ngroups)]

        def set_buf_valid(value):
            return [buf_valid.eq(value), *(bv.eq(value) for bv in bv_copies)]

        o_valid = Signal()
        o_payload = Signal(read_beat_layout(width))
        m.d.comb += [out.valid.eq(o_valid), out.payload.eq(o_payload)]

        head = data.View(rq_layout, rq.r_data)
        # The bus beats the command spans come queued from the decode stage (``beats``): as
        # ``((off + len_m1) >> sh) + 1`` at the head, two adders in one cycle, they were on
        # the DMA engines' own critical paths out of context.
        with m.If(~active & run & rq.r_rdy):
            m.d.comb += rq.r_en.eq(1)
            m.d.sync += [
                active.eq(1),
                from_buf.eq(Const((1 << nbytes) - 1, nbytes) >> head.off),
                in_left.eq(head.beats),
                more_in.eq(1),
                out_left.eq(head.obeats),
                out_nz.eq(1),
                last_count.eq(head.lcount),
                *set_buf_valid(0),
            ]

        can_load = ~o_valid | out.ready
        step = run & active
        emit = Signal()
        m.d.comb += [
            pop.eq(step & more_in & fifo.r_rdy & (~buf_valid | can_load)),
            emit.eq((pop & buf_valid) | (step & ~more_in & out_nz & can_load)),
            fifo.r_en.eq(pop),
        ]
        # ``pop`` and ``emit`` enable every bit of ``buf`` and of the output data: one net each
        # reaching some 160 flip-flops (routed ECP5 critical path, most of it wire). Each pair
        # of byte lanes gets its own enables, from its own copy of ``buf_valid``
        # (``LOCAL_COPY``, updated with it), so each enable net stays local. Same values.
        pops = [Signal(name=f"pop{k}") for k in range(ngroups)]
        emits = [Signal(name=f"emit{k}") for k in range(ngroups)]
        for k in range(ngroups):
            m.d.comb += [
                pops[k].eq(step & more_in & fifo.r_rdy & (~bv_copies[k] | can_load)),
                emits[k].eq((pops[k] & bv_copies[k])
                            | (step & ~more_in & out_nz & can_load)),
            ]
        # The final output beat of an unaligned command may need no further input beat. With
        # the stored rotation, output lane j is lane j of ``buf`` below ``nbytes - off``
        # (``from_buf``, registered at the command's start) and lane j of the next beat above.
        nxt = Mux(more_in, fifo.r_data, 0)
        shifted = Cat(*(Mux(from_buf[j], buf.word_select(j, 8), nxt.word_select(j, 8))
                        for j in range(nbytes)))
        m.d.sync += free.eq(free - Mux(commit, beats, 0) + pop)

        with m.If(out.valid & out.ready):
            m.d.sync += o_valid.eq(0)
        with m.If(pop):
            m.d.sync += [*set_buf_valid(1), in_left.eq(in_left - 1), more_in.eq(in_left != 1)]
        for k in range(ngroups):
            with m.If(pops[k]):
                m.d.sync += buf[16 * k:16 * (k + 1)].eq(fifo.r_data[16 * k:16 * (k + 1)])
            with m.If(emits[k]):
                m.d.sync += o_payload.data[16 * k:16 * (k + 1)].eq(shifted[16 * k:16 * (k + 1)])
        with m.If(emit):
            is_last = out_left == 1
            m.d.sync += [
                o_valid.eq(1),
                o_payload.last.eq(is_last),
                o_payload.count.eq(Mux(is_last, last_count, nbytes)),
                out_left.eq(out_left - 1),
                out_nz.eq(out_left != 1),
            ]
        with m.If(step & ~more_in & ~out_nz):
            m.d.sync += [active.eq(0), *set_buf_valid(0)]

        # ---- Errors, drain, abort ----------------------------------------------------------
        drained = Signal()
        m.d.comb += drained.eq(draining & (outstanding == 0) & ~ar_valid)
        with m.If(take & (bad != DMAError.NONE)):
            m.d.sync += [code.eq(bad), draining.eq(1)]
        with m.If(r_go & run & ~r_ok):
            m.d.sync += [code.eq(resp_error(axi.rresp)), draining.eq(1)]
        with m.If(drained):
            m.d.comb += flush.eq(1)
            m.d.sync += [draining.eq(0), halted.eq(code != DMAError.NONE),
                         issuing.eq(0), active.eq(0), *set_buf_valid(0), free.eq(depth)]
        with m.If(self.abort):
            m.d.sync += [code.eq(DMAError.NONE), halted.eq(0), draining.eq(1), o_valid.eq(0)]
        # ``run``'s next value, ``~draining & ~halted`` after the updates above: an error is
        # only seen while running, and a drain ends while not running.
        m.d.sync += run.eq(~self.abort & Mux(drained, code == DMAError.NONE,
                                              run & ~(take & (bad != DMAError.NONE))
                                              & ~(r_go & ~r_ok)))

        m.d.comb += [
            self.done.eq((out.valid & out.ready & o_payload.last & run)
                         | (drained & (code != DMAError.NONE))),
            self.error.eq(code != DMAError.NONE),
            self.error_code.eq(code),
            self.busy.eq(in_intake | dcmd.valid | issuing | rq.r_rdy | active | o_valid
                         | (outstanding != 0) | ar_valid | draining),
        ]

        # ---- Counters ----------------------------------------------------------------------
        pending = in_intake | dcmd.valid | issuing | rq.r_rdy | active
        # A stall cycle is counted one cycle late, from a register: ``out.ready`` comes from
        # the consumer's state logic (the controller's FSM), and as the enable of the whole
        # counter it was the routed ECP5 critical path. A stall seen in the cycle of a clear
        # belongs before it and is dropped, as the clear drops it without the register.
        stalled = Signal()
        m.d.sync += stalled.eq(pending & out.ready & ~out.valid & ~self.counter_clear)
        # The bytes of a beat likewise: ``out.ready`` enabled the whole byte counter. A beat
        # in the cycle of a clear is dropped by the clear registered beside its count, not by
        # gating the count with ``counter_clear`` (the controller's logic).
        o_bytes = Signal.like(o_payload.count)
        clear_d = Signal()
        m.d.sync += [o_bytes.eq(Mux(out.valid & out.ready, o_payload.count, 0)),
                     clear_d.eq(self.counter_clear)]
        with m.If(self.counter_clear):
            m.d.sync += [self.bytes_read.eq(0), self.stall_cycles.eq(0)]
        with m.Else():
            with m.If(~clear_d):
                m.d.sync += self.bytes_read.eq(self.bytes_read + o_bytes)
            with m.If(stalled):
                m.d.sync += self.stall_cycles.eq(self.stall_cycles + 1)
        return m

