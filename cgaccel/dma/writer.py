"""AXI4 write DMA: byte-addressed commands plus a packed byte stream in, AW/W/B bursts out."""

from amaranth.hdl import Cat, Const, Module, Mux, ResetInserter, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..axi import BURST_INCR
from ..rtl import LOCAL_COPY
from .common import (
    AXI4WriteSignature,
    BufferFIFO,
    DMAError,
    SmallFIFO,
    burst_register,
    command_layout,
    decode_stage,
    popcount,
    resolve_params,
    resp_error,
    write_beat_layout,
)

__all__ = ["WriteDMA"]


class WriteDMA(wiring.Component):
    """Write the bytes of ``i_stream`` to ``length`` bytes at ``addr`` over AXI4.

    The input bytes are shifted to the address alignment and written with ``wstrb`` covering
    exactly ``[addr, addr + length)``: head and tail beats have partial strobes, no byte outside
    the region is ever written. Bursts are INCR, at most ``max_burst`` beats, never cross a
    4 KiB boundary, use the full data width and ID 0. A burst's address is only issued once all
    its W beats are buffered (``2 * max_burst`` beats), so W never stalls on the input stream
    while the bus holds a burst open, and an error can always be drained. Up to
    ``max_outstanding`` bursts await their B response. Commands are pipelined.

    Members
    -------
    cmd : ``In(stream.Signature(command_layout(addr_width, len_width)))``
        ``addr`` (any byte alignment) and ``length`` (1..``2**len_width`` bytes).
    i_stream : ``In(stream.Signature(write_beat_layout(data_width)))``
        For each command in order, ``ceil(length / (data_width // 8))`` beats, byte 0 of the
        region in bits 7:0 of the first beat; bytes beyond ``length`` in the last beat are
        ignored.
    m_axi : ``Out(AXI4WriteSignature(...))``
        AW, W and B channels, names as cocotbext-axi expects.
    abort : ``In(1)``
        Stop: input is no longer consumed, no new burst is issued, bursts already issued are
        completed (their data is buffered and inside the region) and their B responses
        awaited, then the engine is idle with the error cleared.
    busy : ``Out(1)``
        A command, a burst or a drain is in progress.
    done : ``Out(1)``
        One-cycle pulse: all B responses of a command arrived (OKAY), or (with ``error`` high)
        a drain after an error has finished.
    error, error_code : ``Out(1)``, ``Out(DMAError)``
        Sticky: the first error seen. After an error the engine drains as for ``abort``, drops
        every command in flight and refuses commands (``cmd.ready`` low) until ``abort``.
    counter_clear : ``In(1)``
        Zero the counter.
    bytes_written : ``Out(counter_width)``
        Bytes written on the bus (strobes of accepted W beats). Counted a cycle late: a W
        beat's bytes are added the cycle after it is accepted, and those of a beat accepted in
        the cycle of a clear belong before it and are dropped.

    Parameters
    ----------
    params : AccelConfig or DMAParams, optional
        Or the :class:`~cgaccel.dma.common.DMAParams` arguments as keywords.
    """

    def __init__(self, params=None, **kwargs):
        self._p = p = resolve_params(params, kwargs)
        super().__init__({
            "cmd": In(stream.Signature(command_layout(p.addr_width, p.len_width))),
            "i_stream": In(stream.Signature(write_beat_layout(p.data_width))),
            "m_axi": Out(AXI4WriteSignature(p)),
            "abort": In(1),
            "busy": Out(1),
            "done": Out(1),
            "error": Out(1),
            "error_code": Out(DMAError),
            "counter_clear": In(1),
            "bytes_written": Out(p.counter_width),
        })

    @property
    def params(self):
        return self._p

    @property
    def buffer_beats(self):
        """Beats of W data buffering."""
        return 2 * self._p.max_burst

    def elaborate(self, platform):
        m = Module()
        p = self._p
        nbytes, sh = p.beat_bytes, p.beat_shift
        width = p.data_width
        depth = self.buffer_beats
        ones = (1 << nbytes) - 1
        axi = self.m_axi

        draining = Signal()
        halted = Signal()
        code = Signal(DMAError)
        # ``~draining & ~halted`` as a flip-flop, loaded with its next value (see the errors
        # section): as a LUT after ``halted`` it was the first level of the routed ECP5 paths
        # into ``prev`` and the W buffer. Same value in every cycle.
        run = Signal(init=1)
        flush = Signal()

        # Per-command parameters for the realigner: start offset, input beats, the last W
        # beat's strobe mask and the bus beats it spans (from the decode stage). The input
        # count and mask are formed at the tail, from the decode stage's registers: formed at
        # the head, their adders and shifter followed the queue's read multiplexer (routed
        # ECP5 critical path).
        wq_layout = data.StructLayout({"off": sh, "in_beats": p.beats_width, "lmask": nbytes,
                                       "beats": p.beats_width})
        m.submodules.wq = wq = ResetInserter(flush)(
            SmallFIFO(width=wq_layout.size, depth=4, spare_slot=True, head_reg=True))
        m.submodules.wbuf = wbuf = ResetInserter(flush)(
            BufferFIFO(width=width + nbytes, depth=depth))
        # Burst lengths for the W issuer and "last burst of its command" flags for B.
        m.submodules.bq = bq = ResetInserter(flush)(
            SmallFIFO(width=(p.max_burst).bit_length(), depth=p.max_outstanding))
        m.submodules.cq = cq = ResetInserter(flush)(
            SmallFIFO(width=1, depth=p.max_outstanding))

        # ---- Command intake: descriptor checks in a register stage -------------------------
        issuing = Signal()
        cur = Signal(p.addr_width)
        left = Signal(p.beats_width)
        dcmd, in_intake = decode_stage(m, p, self.cmd, run, flush)
        dec = dcmd.payload
        bad = dec.bad
        take = Signal()
        good = Signal()
        m.d.comb += [
            dcmd.ready.eq(run & ~issuing & wq.w_rdy),
            take.eq(dcmd.valid & dcmd.ready),
            good.eq(take & (bad == DMAError.NONE)),
        ]
        entry = data.View(wq_layout, wq.w_data)
        m.d.comb += [
            entry.off.eq(dec.addr[:sh]),
            entry.in_beats.eq((dec.len_m1 >> sh) + 1),
            entry.lmask.eq(Const(ones, nbytes) >> ~(dec.addr[:sh] + dec.len_m1[:sh])[:sh]),
            entry.beats.eq(dec.beats),
            wq.w_en.eq(good),
        ]

        # ---- Realigner: input beats -> address-aligned W beats with strobes ----------------
        active = Signal()
        # The start offset in copies, one per two byte lanes (``LOCAL_COPY``: one register
        # fanned out to every lane's multiplexer).
        r_offs = [Signal(sh, name=f"r_off{k}", attrs=LOCAL_COPY) for k in range(nbytes // 2)]
        in_left = Signal(p.beats_width)
        w_left = Signal(p.beats_width)
        first = Signal()
        fmask = Signal(nbytes)
        lmask = Signal(nbytes)
        prev = Signal(width)    # the previous input beat, rotated as ``rot`` below
        # ``in_left != 0`` and ``w_left != 0`` kept as flip-flops, updated with the counts:
        # ``i_stream.ready`` is then an AND of flip-flops (and the buffer's level compare).
        # Computed from the counts it put their wide compares in front of the producer's
        # handshake logic (the controller's write-back packing: the routed ECP5 critical
        # path). Same values in every cycle, so no transfer moves.
        in_nz = Signal()
        # ``in_nz`` again, one copy per two byte lanes (``LOCAL_COPY``, updated with it): each
        # gates its lanes' ``prev`` enable, so no enable net reaches all of ``prev`` (one such
        # net, with a fanout of about 130, was the routed ECP5 path into ``prev``).
        ngroups = nbytes // 2
        in_nzs = [Signal(name=f"in_nz{k}", attrs=LOCAL_COPY) for k in range(ngroups)]
        w_nz = Signal()
        w_one = Signal()    # ``w_left == 1``, likewise (it selects the strobes' last mask)
        # Each W lane's source as two flip-flops per lane, updated with the flags they are
        # formed from: ``use_prev`` is ``~fmask[j] & ~first`` (the previous input beat),
        # ``use_rot`` is ``fmask[j] & in_nz`` (the input beat); neither is a zero lane. Each
        # data bit into the W buffer is then one LUT of four inputs after the rotation, not of
        # five (``fmask``, ``first``, ``in_nz``, ``prev`` and the rotated input).
        use_prev = Signal(nbytes, init=ones)    # ``fmask``, ``first`` and ``in_nz`` reset to 0
        use_rot = Signal(nbytes)
        head = data.View(wq_layout, wq.r_data)
        # The bus beats the command spans come queued from the decode stage (``beats``): as
        # ``((off + len_m1) >> sh) + 1`` at the head, two adders in one cycle, they were the
        # DMA's own critical path out of context.
        with m.If(~active & run & wq.r_rdy):
            m.d.comb += wq.r_en.eq(1)
            m.d.sync += [
                active.eq(1),
                *(r_off.eq(head.off) for r_off in r_offs),
                in_left.eq(head.in_beats),
                w_left.eq(head.beats),
                in_nz.eq(1),    # both counts are at least 1
                *(c.eq(1) for c in in_nzs),
                w_nz.eq(1),
                w_one.eq(head.beats == 1),
                first.eq(1),
                fmask.eq((Const(ones, nbytes) << head.off)[:nbytes]),
                lmask.eq(head.lmask),
                use_prev.eq(0),
                use_rot.eq((Const(ones, nbytes) << head.off)[:nbytes]),
            ]
        step = Signal()
        need_in = Signal()
        go = Signal()
        w_go = Signal()     # a W beat leaves the buffer (W channel, below)
        # Free W-buffer entries not yet claimed by a beat in the realigner (``room != 0`` as
        # ``room_ok``, a flip-flop): a beat is written a cycle after it is taken (``go``), so
        # the buffer's own ``w_rdy`` would come a cycle late. One entry fewer than the
        # buffer's depth, so that the buffer's input (which ``w_rdy`` guards: its storage
        # besides the output register) always has room for a claimed beat.
        room = Signal(range(depth), init=depth - 1)
        room_ok = Signal(init=1)
        m.d.comb += [
            step.eq(run & active & w_nz & room_ok),
            need_in.eq(in_nz),
            self.i_stream.ready.eq(step & need_in),
            go.eq(step & (~need_in | self.i_stream.valid)),
        ]
        # An unaligned region can need one more W beat than input beats: its tail then comes
        # from the previous input beat alone. W lane j is lane ``j - off`` of the input beat,
        # or of the previous one below ``off`` (the lanes ``fmask`` leaves out): the input is
        # rotated by the offset (a multiplexer per lane selected by the offset register itself,
        # no adder) and each lane taken from it or from the previous beat, stored rotated.
        # Zeroing the input and then shifting the pair put the flag ``need_in`` in front of
        # every lane's shifter (routed ECP5 critical path into the buffer).
        # The lanes below ``off`` of a command's first W beat are zero: rather than zeroing
        # ``prev`` when the command starts, they are zeroed under ``first`` (``prev`` was zero
        # while ``first`` was high, and the first W beat takes an input beat, which loads
        # ``prev``). The second load condition put a multiplexer in front of every bit of
        # ``prev``, behind its enable logic (routed ECP5 critical path).
        # The rotation in two register stages: at ``go`` by the offset's high bits (whole
        # groups of ``2**lo`` lanes) into ``ra``, the cycle after by its low bits, then each
        # lane from the rotated beat, the previous one or zero into the W buffer. In one
        # cycle it was a 16:1 multiplexer on every bit from the controller's beat register
        # to the block RAM's input (the largest family of routed ECP5 paths of the write
        # DMA); now each stage is a 4:1 multiplexer (at 128 bits). The lane sources, the
        # strobes and the low offset bits go with the beat (``*_b``).
        lo = sh // 2
        lanes = [self.i_stream.payload.data.word_select(k, 8) for k in range(nbytes)]
        ra = Signal(width)
        m.d.sync += ra.eq(Cat(*(Cat(*(lanes[(j - (h << lo)) % nbytes]
                                      for h in range(1 << (sh - lo))))
                                .word_select(r_offs[j // 2][lo:], 8) if sh > lo
                                else lanes[j] for j in range(nbytes))))
        go_b = Signal()
        in_b = [Signal(name=f"in_b{k}", attrs=LOCAL_COPY) for k in range(ngroups)]
        off_b = [Signal(max(1, lo), name=f"off_b{k}", attrs=LOCAL_COPY) for k in range(ngroups)]
        use_prev_b = Signal(nbytes)
        use_rot_b = Signal(nbytes)
        strb_b = Signal(nbytes)
        strb = (Mux(first, fmask, ones) & Mux(w_one, lmask, ones))[:nbytes]
        m.d.sync += [go_b.eq(go & ~flush), use_prev_b.eq(use_prev), use_rot_b.eq(use_rot),
                     strb_b.eq(strb),
                     *(c.eq(go & in_nzs[k]) for k, c in enumerate(in_b)),
                     *(c.eq(r_offs[k][:lo]) for k, c in enumerate(off_b) if lo)]
        ra_lanes = [ra.word_select(k, 8) for k in range(nbytes)]
        rot = Cat(*(Cat(*(ra_lanes[(j - s) % nbytes] for s in range(1 << lo)))
                    .word_select(off_b[j // 2], 8) if lo else ra_lanes[j]
                    for j in range(nbytes)))
        shifted = Cat(*(Mux(use_prev_b[j], prev.word_select(j, 8),
                            Mux(use_rot_b[j], rot.word_select(j, 8), 0))
                        for j in range(nbytes)))
        m.d.comb += [wbuf.w_en.eq(go_b), wbuf.w_data.eq(Cat(shifted, strb_b))]
        room_next = room - go + w_go
        m.d.sync += [room.eq(room_next), room_ok.eq(room_next != 0)]
        with m.If(flush):
            m.d.sync += [room.eq(depth - 1), room_ok.eq(1)]
        with m.If(go):
            m.d.sync += [w_left.eq(w_left - 1), w_nz.eq(w_left != 1), w_one.eq(w_left == 2),
                         first.eq(0), use_prev.eq(~fmask)]
            with m.If(need_in):
                m.d.sync += [in_left.eq(in_left - 1), in_nz.eq(in_left != 1),
                             *(c.eq(in_left != 1) for c in in_nzs),
                             use_rot.eq(Mux(in_left != 1, fmask, 0))]
        # A beat that took an input beat (``in_b``, per lane pair) leaves it in ``prev``.
        for k in range(ngroups):
            with m.If(in_b[k]):
                m.d.sync += prev[16 * k:16 * (k + 1)].eq(rot[16 * k:16 * (k + 1)])
        with m.If(active & ~w_nz):
            m.d.sync += active.eq(0)

        # ---- AW channel: a burst is issued once all its beats are buffered -----------------
        commit = Signal()
        avail = Signal(range(depth + 1))     # buffered beats not yet claimed by a burst
        beats, beats_ok, fits = burst_register(m, p, left, dec.addr, dec.cap, dec.beats,
                                               good, commit, avail, go)
        outstanding = Signal(range(p.max_outstanding + 1))
        aw_valid = Signal()
        aw_addr = Signal(p.addr_width)
        aw_len = Signal(8)
        # ``outstanding < max_outstanding`` as a flip-flop, updated with the count, and
        # ``avail >= beats`` as one (``fits``, see :func:`burst_register`): their compares fed
        # ``commit`` and, through it, the enables of ``cur``, ``left`` and the burst registers
        # (routed ECP5 critical path).
        out_ok = Signal(init=1)
        m.d.comb += commit.eq(issuing & run & beats_ok & out_ok & fits & bq.w_rdy & cq.w_rdy
                              & (~aw_valid | axi.awready))
        m.d.comb += [
            axi.awvalid.eq(aw_valid),
            axi.awaddr.eq(aw_addr),
            axi.awlen.eq(aw_len),
            axi.awid.eq(0),
            axi.awsize.eq(sh),
            axi.awburst.eq(BURST_INCR),
            axi.awlock.eq(0),
            axi.awcache.eq(0b0011),
            axi.awprot.eq(0),
            axi.awqos.eq(0),
            bq.w_en.eq(commit),
            bq.w_data.eq(beats),
            cq.w_en.eq(commit),
            cq.w_data.eq(left == beats),
        ]
        with m.If(commit):
            m.d.sync += [
                aw_valid.eq(1),
                aw_addr.eq(cur),
                aw_len.eq(beats - 1),
                cur.eq(cur + (beats << sh)),
                left.eq(left - beats),
                issuing.eq(left != beats),
            ]
        with m.Elif(axi.awready):
            m.d.sync += aw_valid.eq(0)
        with m.If(good):
            m.d.sync += [
                cur.eq(Cat(Const(0, sh), dec.addr[sh:])),
                left.eq(dec.beats),
                issuing.eq(1),
            ]
        m.d.sync += avail.eq(avail + go - Mux(commit, beats, 0))

        # ---- W channel ---------------------------------------------------------------------
        w_active = Signal()
        w_count = Signal(range(p.max_burst + 1))
        wlast = Signal()
        m.d.comb += [
            axi.wvalid.eq(w_active & wbuf.r_rdy),
            axi.wdata.eq(wbuf.r_data[:width]),
            axi.wstrb.eq(wbuf.r_data[width:]),
            wlast.eq(w_count == 1),
            axi.wlast.eq(wlast),
            w_go.eq(axi.wvalid & axi.wready),
            wbuf.r_en.eq(w_go),
        ]
        with m.If(~w_active | (w_go & wlast)):
            m.d.comb += bq.r_en.eq(1)
            m.d.sync += [w_active.eq(bq.r_rdy), w_count.eq(bq.r_data)]
        with m.Elif(w_go):
            m.d.sync += w_count.eq(w_count - 1)

        # ---- B channel ---------------------------------------------------------------------
        b_go = Signal()
        b_ok = Signal()
        m.d.comb += [
            axi.bready.eq(1),
            b_go.eq(axi.bvalid),
            b_ok.eq(~axi.bresp[1]),
            cq.r_en.eq(b_go),
        ]
        m.d.sync += outstanding.eq(outstanding + commit - b_go)
        with m.If(commit & ~b_go):
            m.d.sync += out_ok.eq(outstanding != p.max_outstanding - 1)
        with m.Elif(b_go & ~commit):
            m.d.sync += out_ok.eq(outstanding != 0)     # as the wrapped compare would

        # ---- Errors, drain, abort ----------------------------------------------------------
        drained = Signal()
        m.d.comb += drained.eq(draining & (outstanding == 0) & ~aw_valid & ~w_active
                               & ~bq.r_rdy)
        with m.If(take & (bad != DMAError.NONE)):
            m.d.sync += [code.eq(bad), draining.eq(1)]
        with m.If(b_go & run & ~b_ok):
            m.d.sync += [code.eq(resp_error(axi.bresp)), draining.eq(1)]
        with m.If(drained):
            m.d.comb += flush.eq(1)
            m.d.sync += [draining.eq(0), halted.eq(code != DMAError.NONE),
                         issuing.eq(0), active.eq(0), avail.eq(0)]
        with m.If(self.abort):
            m.d.sync += [code.eq(DMAError.NONE), halted.eq(0), draining.eq(1)]
        # ``run``'s next value, ``~draining & ~halted`` after the updates above: an error is
        # only seen while running, and a drain ends while not running.
        m.d.sync += run.eq(~self.abort & Mux(drained, code == DMAError.NONE,
                                              run & ~(take & (bad != DMAError.NONE))
                                              & ~(b_go & ~b_ok)))

        m.d.comb += [
            self.done.eq((b_go & b_ok & cq.r_data & run)
                         | (drained & (code != DMAError.NONE))),
            self.error.eq(code != DMAError.NONE),
            self.error_code.eq(code),
            self.busy.eq(in_intake | dcmd.valid | issuing | wq.r_rdy | active | aw_valid
                         | w_active | (outstanding != 0) | draining),
        ]

        # A W beat's bytes are counted one cycle late, from a register: the strobes' popcount
        # and the counter's adder behind the W buffer's output and ``wready`` were a routed
        # ECP5 critical path (69 levels). As for the read engine's stall count, a beat in the
        # cycle of a clear belongs before it and is dropped: by the clear registered beside
        # the count (gating the count with ``counter_clear``, the controller's logic, put it
        # in front of the popcount's register: routed ECP5 path).
        w_bytes = Signal(nbytes.bit_length())
        clear_d = Signal()
        m.d.sync += [w_bytes.eq(Mux(w_go, popcount(axi.wstrb), 0)),
                     clear_d.eq(self.counter_clear)]
        with m.If(self.counter_clear):
            m.d.sync += self.bytes_written.eq(0)
        with m.Elif(~clear_d):
            m.d.sync += self.bytes_written.eq(self.bytes_written + w_bytes)
        return m
