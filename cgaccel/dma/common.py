"""Pieces shared by the AXI4 read and write DMA engines: parameters, layouts, error codes, bursts.

See ``docs/dma.md`` for the stream formats, burst rules and error behaviour.
"""

from amaranth.hdl import Array, Const, Module, Mux, ResetInserter, Signal, unsigned
from amaranth.lib import data, enum, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..axi import AXI4Signature
from ..config import _check_int
from ..rtl import NO_RW_CHECK
from ..stream import SkidBuffer

__all__ = ["DMAError", "DMAParams", "command_layout", "read_beat_layout", "write_beat_layout",
           "AXI4ReadSignature", "AXI4WriteSignature", "READ_MEMBERS", "WRITE_MEMBERS",
           "connect_axi", "burst_beats", "burst_cap", "burst_register", "decoded_layout",
           "decode_stage", "BufferFIFO", "SmallFIFO"]

#: AXI4 members used by the read engine (AR and R channels).
READ_MEMBERS = ("arid", "araddr", "arlen", "arsize", "arburst", "arlock", "arcache", "arprot",
                "arqos", "arvalid", "arready", "rid", "rdata", "rresp", "rlast", "rvalid",
                "rready")
#: AXI4 members used by the write engine (AW, W and B channels).
WRITE_MEMBERS = ("awid", "awaddr", "awlen", "awsize", "awburst", "awlock", "awcache", "awprot",
                 "awqos", "awvalid", "awready", "wdata", "wstrb", "wlast", "wvalid", "wready",
                 "bid", "bresp", "bvalid", "bready")

BOUNDARY = 4096  # AXI4: no burst may cross a 4 KiB address boundary.


class DMAError(enum.Enum, shape=3):
    """Sticky error code of a DMA engine (``error_code`` port).

    ``SLVERR``/``DECERR`` come from the bus (R for the read engine, B for the write engine);
    the others are descriptor checks made when the command is accepted.
    """
    NONE = 0
    SLVERR = 1        # a response had RESP = SLVERR
    DECERR = 2        # a response had RESP = DECERR
    ZERO_LENGTH = 3   # command length is 0
    TOO_LONG = 4      # command length is above 2**len_width
    OUT_OF_RANGE = 5  # addr + length is beyond the address space


class DMAParams:
    """Validated DMA engine parameters.

    Parameters
    ----------
    addr_width : int
        AXI4 byte-address width, 12..64.
    data_width : int
        AXI4 data width in bits, a power of two from 32 to 1024.
    id_width : int
        AXI4 ID width, 1..16 (the engines use ID 0 only, see ``docs/dma.md``).
    max_burst : int
        Longest INCR burst in beats, 1..256, at most 4096 bytes.
    max_outstanding : int
        Bursts in flight on the bus, 1..256.
    len_width : int
        Commands move 1 to ``2**len_width`` bytes; 4..32.
    counter_width : int
        Bits of the byte and stall counters, 32..64 (they wrap).

    Raises
    ------
    TypeError, ValueError
        On a parameter of the wrong type or out of range.
    """

    def __init__(self, *, addr_width, data_width, id_width, max_burst, max_outstanding,
                 len_width=24, counter_width=64):
        _check_int("Address width", addr_width, 12, 64)
        _check_int("Data width", data_width, 32, 1024, pow2=True)
        _check_int("ID width", id_width, 1, 16)
        _check_int("Max burst", max_burst, 1, 256)
        if max_burst * data_width // 8 > BOUNDARY:
            raise ValueError(f"Max burst must fit in 4 KiB ({BOUNDARY * 8 // data_width} beats "
                             f"at {data_width} bits), not {max_burst}")
        _check_int("Max outstanding", max_outstanding, 1, 256)
        _check_int("Length width", len_width, 4, 32)
        _check_int("Counter width", counter_width, 32, 64)
        self.addr_width = addr_width
        self.data_width = data_width
        self.id_width = id_width
        self.max_burst = max_burst
        self.max_outstanding = max_outstanding
        self.len_width = len_width
        self.counter_width = counter_width

    @classmethod
    def from_config(cls, config, *, len_width=24):
        """Parameters of an :class:`~cgaccel.config.AccelConfig`."""
        from ..config import AccelConfig
        if not isinstance(config, AccelConfig):
            raise TypeError(f"Config must be an AccelConfig, not {config!r}")
        return cls(addr_width=config.axi_addr_width, data_width=config.axi_data_width,
                   id_width=config.axi_id_width, max_burst=config.max_burst,
                   max_outstanding=config.max_outstanding, len_width=len_width,
                   counter_width=config.counter_width)

    @property
    def beat_bytes(self):
        """Bytes per data beat."""
        return self.data_width // 8

    @property
    def beat_shift(self):
        """log2 of :attr:`beat_bytes`."""
        return self.beat_bytes.bit_length() - 1

    @property
    def beats_width(self):
        """Bits of a beat count of one command (a command spans at most
        ``2**len_width / beat_bytes + 1`` beats)."""
        return self.len_width + 1

    def axi_signature(self):
        return AXI4Signature(addr_width=self.addr_width, data_width=self.data_width,
                             id_width=self.id_width)

    def __repr__(self):
        return (f"DMAParams(addr_width={self.addr_width}, data_width={self.data_width}, "
                f"id_width={self.id_width}, max_burst={self.max_burst}, "
                f"max_outstanding={self.max_outstanding}, len_width={self.len_width}, "
                f"counter_width={self.counter_width})")


def command_layout(addr_width, len_width):
    """Command stream payload: ``addr`` (byte address) and ``length`` (bytes, 1..2**len_width;
    the field is one bit wider so that ``2**len_width`` is representable)."""
    return data.StructLayout({"addr": unsigned(addr_width), "length": unsigned(len_width + 1)})


def read_beat_layout(data_width):
    """Read engine output payload: ``data`` (byte 0 in bits 7:0), ``count`` (valid bytes from
    byte 0: ``data_width // 8`` except possibly on the last beat) and ``last``."""
    nbytes = data_width // 8
    return data.StructLayout({"data": unsigned(data_width),
                              "count": unsigned(nbytes.bit_length()),
                              "last": unsigned(1)})


def write_beat_layout(data_width):
    """Write engine input payload: ``data``, bytes packed from byte 0 (bits 7:0)."""
    return data.StructLayout({"data": unsigned(data_width)})


def _subset_signature(params, names):
    full = params.axi_signature()
    return wiring.Signature({name: full.members[name] for name in names})


def AXI4ReadSignature(params):  # noqa: N802 (reads like a class at call sites)
    """AR and R channel members of :class:`~cgaccel.axi.AXI4Signature` (manager side)."""
    return _subset_signature(params, READ_MEMBERS)


def AXI4WriteSignature(params):  # noqa: N802
    """AW, W and B channel members of :class:`~cgaccel.axi.AXI4Signature` (manager side)."""
    return _subset_signature(params, WRITE_MEMBERS)


def connect_axi(m, axi, *, read=None, write=None):
    """Join a read engine port and/or a write engine port onto one full AXI4 manager port.

    Parameters
    ----------
    m : Module
    axi : interface of ``Out(AXI4Signature(...))`` (e.g. a top level's ``m_axi``)
    read, write : the engines' ``m_axi`` ports, or None (that half of ``axi`` is tied idle)
    """
    for names, port in ((READ_MEMBERS, read), (WRITE_MEMBERS, write)):
        for name in names:
            flow = axi.signature.members[name].flow
            if port is None:
                if flow == Out:
                    m.d.comb += getattr(axi, name).eq(0)
                continue
            if flow == Out:
                m.d.comb += getattr(axi, name).eq(getattr(port, name))
            else:
                m.d.comb += getattr(port, name).eq(getattr(axi, name))


def burst_cap(params, addr):
    """Beats a burst at beat-aligned byte address ``addr`` may have: the smaller of
    ``max_burst`` and the beats up to the next 4 KiB boundary.

    Returns ``(cap, stmts)``: a signal and the comb statements that drive it.
    """
    shift = params.beat_shift
    per_page = BOUNDARY >> shift
    to_page = Signal(range(per_page + 1))
    cap = Signal(range(per_page + 1))
    stmts = [
        to_page.eq(per_page - addr[shift:12]),
        cap.eq(Mux(to_page < params.max_burst, to_page, params.max_burst)),
    ]
    return cap, stmts


def capped_beats(params, cap, left):
    """The smaller of ``cap`` (a :func:`burst_cap`, at most ``max_burst``) and ``left``.

    Returns ``(beats, stmts)``.
    """
    beats = Signal(range(params.max_burst + 1))
    # ``cap`` <= max_burst < 2**kb, so ``left < cap`` needs only the low kb bits of ``left``
    # and an OR of its high bits (in parallel), not a full-width comparator after ``cap``:
    # this chain (to the burst commit and the address register's enable) was the routed ECP5
    # critical path. Same value.
    kb = params.max_burst.bit_length()
    hi_zero = left[kb:] == 0 if len(left) > kb else Const(1)
    return beats, [beats.eq(Mux(hi_zero & (left[:kb] < cap), left[:kb], cap))]


def burst_beats(params, addr, left):
    """Beats of the next burst at beat-aligned byte address ``addr`` with ``left`` beats to go.

    The smallest of ``max_burst``, ``left`` and the beats up to the next 4 KiB boundary.
    Returns ``(beats, stmts)``: a signal and the comb statements that drive it.
    """
    cap, cap_stmts = burst_cap(params, addr)
    beats, stmts = capped_beats(params, cap, left)
    return beats, cap_stmts + stmts


def burst_register(m, params, left, start_addr, start_cap, start_left, load, commit, room,
                   grow):
    """The next burst's length in a register, for the issue logic to compare and add.

    :func:`burst_beats` of the burst address ``cur`` and beats to go ``left`` (a subtract, two
    compares and two selects) fed the issue condition and, through it, the enables of the
    address, length and buffer counters in the same cycle: the routed critical path of
    ``tiny`` on the ECP5 once the command checks were registered. Here it is registered:
    loaded from the new command when ``load``, so a command's first burst can still issue the
    cycle after it is taken; and recomputed from ``cur``/``left`` the cycle after each
    ``commit``, so the bursts of one command issue at most every other cycle (each is at least
    one data beat, and the data stream, not the address channel, sets the pace).

    The new command's page/``max_burst`` cap ``start_cap`` comes registered from the decode
    stage (:func:`decode_stage`, ``cap``), so only the compare with ``start_left`` (the decode
    stage's ``beats``) is left here: the page distance, cap and compare behind the decode
    stage's register were the routed critical path after the controller's range check.

    The caller's burst address ``cur`` is loaded (from ``start_addr``, beat aligned) when
    ``load`` and advanced by ``beats`` on ``commit``; its distance to the next 4 KiB boundary
    is kept here in a register updated on the same events, so the recompute is three compares
    of registers side by side and a select (the subtract from ``cur`` in front of them, then
    the compares one after the other, were the DMA engines' own critical path out of
    context). Same values as :func:`burst_beats` of ``cur`` and ``left`` in every cycle.

    ``fits`` is ``beats <= room`` (the caller's buffer room for the burst) as a flip-flop: the
    compare, a carry chain after ``beats``, fed the issue condition and through it the same
    enables (routed ECP5 critical path). It is exact in every cycle in which ``ok`` and the
    caller's ``issuing`` are high, the only cycles a commit can read it, given that ``room``
    grows by ``grow`` (one bit) in a cycle without a commit: such a cycle follows one without
    a commit or a drain. It is loaded with ``beats``' next value compared with ``room +
    grow``, as the compares of ``beats``' operands side by side (the next length is the
    smallest of them, so it fits if one of them does): as one compare after the next length
    they made the new flip-flop's input the longest path.

    Returns ``(beats, ok, fits)``.
    """
    shift = params.beat_shift
    per_page = BOUNDARY >> shift
    mb = params.max_burst
    kb = mb.bit_length()
    beats = Signal(range(mb + 1))
    ok = Signal()
    to_page = Signal(range(per_page + 1), init=per_page)    # cur resets to 0
    tw = len(to_page)
    first_beats, first_stmts = capped_beats(params, start_cap, start_left)
    m.d.comb += first_stmts

    def below(value, bound, width):
        # ``value < bound`` for a ``bound`` of ``width`` bits: the high bits of ``value`` only
        # need to be zero.
        if len(value) <= width:
            return value < bound
        return (value[width:] == 0) & (value[:width] < bound)

    tp_small = Signal()
    left_lt_tp = Signal()
    left_lt_mb = Signal()
    m.d.comb += [
        tp_small.eq(to_page < mb),
        left_lt_tp.eq(below(left, to_page, tw)),
        left_lt_mb.eq(below(left, mb, kb)),
    ]
    next_beats = Mux(Mux(tp_small, left_lt_tp, left_lt_mb), left[:kb],
                     Mux(tp_small, to_page[:kb], mb))
    with m.If(load):
        m.d.sync += [beats.eq(first_beats), ok.eq(1),
                     to_page.eq(per_page - start_addr[shift:12])]
    with m.Elif(commit):
        m.d.sync += [ok.eq(0),
                     to_page.eq(Mux(to_page == beats, per_page, to_page - beats))]
    with m.Else():
        m.d.sync += [beats.eq(next_beats), ok.eq(1)]

    def at_most(value, bound):
        # ``value <= bound``: the bits of ``value`` above ``bound``'s width only need to be zero.
        w = len(bound)
        if len(value) <= w:
            return value <= bound
        return (value[w:] == 0) & (value[:w] <= bound)

    fits = Signal(init=1)   # ``beats`` resets to 0
    fits_by = []
    for g in (0, 1):
        bound = room + g
        first_fits = at_most(start_cap, bound) | at_most(start_left, bound)
        next_fits = at_most(left, bound) | at_most(to_page, bound) | (mb <= bound)
        fits_by.append(Mux(load, first_fits, next_fits))
    m.d.sync += fits.eq(Mux(grow, fits_by[1], fits_by[0]))
    return beats, ok, fits


def popcount(value):
    """Number of set bits of ``value`` (an Amaranth value)."""
    width = len(value).bit_length()
    total = Const(0, width)
    for i in range(len(value)):
        total = (total + value[i])[:width]
    return total


def check_command(m, params, cmd):
    """Descriptor checks of a command payload ``cmd`` (a ``command_layout`` view).

    Returns a :class:`DMAError` signal, ``NONE`` when the command is valid; drives it with
    combinational statements added to ``m``.
    """
    code = Signal(DMAError)
    a, n = params.addr_width, params.len_width
    end = Signal(max(a, n + 1) + 1)
    m.d.comb += end.eq(cmd.addr + cmd.length)
    # ``x > 2**k`` as "a bit above k set, or bit k and any bit below it": a LUT tree beside
    # the sum's carry chain, where the compare was a second carry chain after it (the
    # decode stage's routed ECP5 paths from the controller had both).
    too_long = cmd.length[n] & cmd.length[:n].any()
    past_end = end[a] & end[:a].any()
    if len(end) > a + 1:
        past_end = past_end | end[a + 1:].any()
    with m.If(cmd.length == 0):
        m.d.comb += code.eq(DMAError.ZERO_LENGTH)
    with m.Elif(too_long):
        m.d.comb += code.eq(DMAError.TOO_LONG)
    with m.Elif(past_end):
        m.d.comb += code.eq(DMAError.OUT_OF_RANGE)
    with m.Else():
        m.d.comb += code.eq(DMAError.NONE)
    return code


def decoded_layout(params):
    """A command after the decode stage (:func:`decode_stage`): ``addr``, ``len_m1``
    (``length - 1``), ``beats`` (bus beats the command spans, from the aligned start),
    ``cap`` (the first burst's :func:`burst_cap`) and ``bad`` (the :class:`DMAError` of
    :func:`check_command`)."""
    return data.StructLayout({"addr": unsigned(params.addr_width),
                              "len_m1": unsigned(params.len_width),
                              "beats": unsigned(params.beats_width),
                              "cap": range((BOUNDARY >> params.beat_shift) + 1),
                              "bad": DMAError})


def decode_stage(m, params, cmd, run, flush):
    """Command intake through a register stage: the descriptor checks and beat count of the
    command on ``cmd`` (the engine's ``In`` command stream) computed into a
    :class:`~cgaccel.stream.SkidBuffer` (submodule ``cmd_dec``).

    Without it the checks' adders and comparators sat between the producer's valid/payload
    logic (the controller's FSM) and the engine's request queue enables in one cycle: the
    routed critical path of ``tiny`` on the ECP5. With it every command reaches the engine
    one cycle later, and back-to-back commands still move one per cycle.

    The command first enters a register slice of its own (submodule ``cmd_in``), so the
    checks start at flip-flops inside the engine: from the producer's payload multiplexers
    (the controller's), the wire to the engine and the checks' carry chains in one cycle were
    routed ECP5 paths of ``default``'s top (``controller.wr_cmd`` -> ``cmd_dec``, 12-19 logic
    levels). Every command reaches the engine two cycles after it is taken.

    Commands are refused (``cmd.ready`` low) unless ``run``; ``flush`` empties the stages (end
    of a drain: a command accepted before an error or abort is dropped with the rest).

    Returns the stage's output stream (``decoded_layout`` payload; the caller drives its
    ``ready``) and a signal high while the intake slice holds a command (for ``busy``).
    """
    sh = params.beat_shift
    m.submodules.cmd_in = cin = ResetInserter(flush)(SkidBuffer(cmd.payload.shape()))
    m.submodules.cmd_dec = dec = ResetInserter(flush)(SkidBuffer(decoded_layout(params)))
    m.d.comb += [cin.i.valid.eq(cmd.valid & run), cmd.ready.eq(cin.i.ready & run),
                 cin.i.payload.eq(cmd.payload)]
    c = cin.o.payload
    bad = check_command(m, params, c)
    cap, cap_stmts = burst_cap(params, c.addr)     # from the address alone: beside the checks
    m.d.comb += cap_stmts
    # ``((addr[:sh] + length - 1) >> sh) + 1`` as one adder: the offset plus ``2**sh - 1`` is
    # a few LUTs beside the carry chain of its sum with ``length`` (same value for every
    # length from 1; a zero length is refused by the checks).
    ceil_sum = Signal(params.len_width + 2)
    d = dec.i.payload
    m.d.comb += [
        ceil_sum.eq((c.addr[:sh] + ((1 << sh) - 1)) + c.length),
        dec.i.valid.eq(cin.o.valid & run),
        cin.o.ready.eq(dec.i.ready & run),
        d.addr.eq(c.addr),
        d.len_m1.eq(c.length - 1),
        d.beats.eq(ceil_sum >> sh),
        d.cap.eq(cap),
        d.bad.eq(bad),
    ]
    return dec.o, cin.o.valid


def resp_error(resp):
    """The :class:`DMAError` of an AXI response code (``EXOKAY`` counts as ``OKAY``)."""
    return Mux(resp == 0b11, DMAError.DECERR, DMAError.SLVERR)


def resolve_params(params, kwargs):
    """Accept an AccelConfig, a DMAParams or keyword integers; return a DMAParams."""
    from ..config import AccelConfig
    if params is None:
        return DMAParams(**kwargs)
    if kwargs:
        raise TypeError(f"DMA parameters must be given either as an object or as keywords, "
                        f"not both ({', '.join(sorted(kwargs))})")
    if isinstance(params, AccelConfig):
        return DMAParams.from_config(params)
    if isinstance(params, DMAParams):
        return params
    raise TypeError(f"DMA parameters must be an AccelConfig or a DMAParams, not {params!r}")


class BufferFIFO(SyncFIFOBuffered):
    """:class:`amaranth.lib.fifo.SyncFIFOBuffered` with its storage a ``NO_RW_CHECK`` memory
    and its inner flags as flip-flops.

    Its storage is read only while it holds an entry and written only while it has room, so a
    read never meets a write of the same entry: the read/write collision logic yosys would
    otherwise build (a register and a multiplexer on every data bit of the block RAM's
    output) is not needed.

    ``w_rdy`` and "the storage holds an entry" are flip-flops loaded with their next values,
    like :class:`SmallFIFO`'s: compared from the storage's level they ran on into the DMA
    engines' beat handshakes (the write DMA's ``wbuf`` level -> ``i_stream.ready`` -> the
    controller's beat slice and the realigner's enables: routed ECP5 paths of ``default``'s
    top). Same ports and the same values in every cycle as ``SyncFIFOBuffered``
    (``tests/test_dma.py`` runs both side by side).

    With ``outreg`` the storage's read goes through a second register (``q``, loaded under
    one enable and without reset, so that ``cgaccel synth --bram-outreg`` makes it the block
    RAM's own output register): ``r_data`` leaves a flip-flop instead of the block RAM's
    5.8 ns clock-to-out (ECP5, speed grade 6), which with any wire after it cannot meet 150
    MHz. An entry written into an empty queue is then readable a cycle later than without
    (three cycles after its write); otherwise the ports behave as without it: one entry in
    and one out per cycle, ``depth`` entries held, ``w_rdy`` low only when ``depth`` are.
    """

    def __init__(self, *, width, depth, outreg=False):
        if outreg and depth < 3:
            raise ValueError(f"BufferFIFO depth with outreg must be at least 3, not {depth}")
        self._outreg = bool(outreg)
        super().__init__(width=width, depth=depth)

    def elaborate(self, platform):
        if self._outreg:
            return self._elaborate_outreg()
        if self.depth < 2:
            return super().elaborate(platform)
        m = Module()
        inner_depth = self.depth - 1
        inner_level = Signal(range(inner_depth + 1))
        inner_r_rdy = Signal()
        m.d.comb += [self.w_level.eq(self.level), self.r_level.eq(self.level)]

        do_write = self.w_rdy & self.w_en
        do_inner_read = inner_r_rdy & (~self.r_rdy | self.r_en)

        storage = m.submodules.storage = Memory(shape=self.width, depth=inner_depth, init=[])
        storage.attrs.update(NO_RW_CHECK)
        w_port = storage.write_port()
        r_port = storage.read_port(domain="sync")
        produce = Signal(range(inner_depth))
        consume = Signal(range(inner_depth))
        m.d.comb += [
            w_port.addr.eq(produce), w_port.data.eq(self.w_data), w_port.en.eq(do_write),
            r_port.addr.eq(consume), r_port.en.eq(do_inner_read), self.r_data.eq(r_port.data),
        ]
        with m.If(do_write):
            m.d.sync += produce.eq(Mux(produce == inner_depth - 1, 0, produce + 1))
        with m.If(do_inner_read):
            m.d.sync += consume.eq(Mux(consume == inner_depth - 1, 0, consume + 1))

        level_next = Signal.like(inner_level)
        m.d.comb += level_next.eq(inner_level + do_write - do_inner_read)
        w_rdy = Signal(init=1)
        m.d.sync += [inner_level.eq(level_next), w_rdy.eq(level_next != inner_depth),
                     inner_r_rdy.eq(level_next != 0)]
        m.d.comb += self.w_rdy.eq(w_rdy)

        with m.If(do_inner_read):
            m.d.sync += self.r_rdy.eq(1)
        with m.Elif(self.r_en):
            m.d.sync += self.r_rdy.eq(0)
        m.d.comb += self.level.eq(inner_level + self.r_rdy)
        return m

    def _elaborate_outreg(self):
        m = Module()
        # Three places: the storage (``inner``), the block RAM's read latch (``v1``) and the
        # output register ``q`` (``r_rdy``). Each stage holds while the next one is full and
        # not read, so a read of the queue (``r_en``) moves both stages at once.
        inner_depth = self.depth - 2
        inner_level = Signal(range(inner_depth + 1))
        self._inner_level = inner_level     # for the tests: the storage never overflows
        inner_r_rdy = Signal()
        v1 = Signal()
        q = Signal(self.width, reset_less=True)
        m.d.comb += [self.w_level.eq(self.level), self.r_level.eq(self.level),
                     self.r_data.eq(q)]

        do_write = self.w_rdy & self.w_en
        load_q = v1 & (~self.r_rdy | self.r_en)
        do_inner_read = inner_r_rdy & (~v1 | load_q)

        # The storage in slices of at most 16 bits: yosys maps a wider memory to the ECP5
        # block RAM's 36-bit mode, whose output register the synthesis flow leaves alone
        # (its data out is split over both ports). Block RAM by request (``ram_style``):
        # slices this small yosys would otherwise build from LUT RAM, whose read address
        # reaches every one of its cells.
        produce = Signal(range(inner_depth))
        consume = Signal(range(inner_depth))
        for k, lo in enumerate(range(0, self.width, 16)):
            hi = min(lo + 16, self.width)
            mem = Memory(shape=hi - lo, depth=inner_depth, init=[],
                         attrs={**NO_RW_CHECK, "ram_style": "block"})
            m.submodules[f"storage{k}"] = mem
            w_port = mem.write_port()
            r_port = mem.read_port(domain="sync")
            m.d.comb += [
                w_port.addr.eq(produce), w_port.data.eq(self.w_data[lo:hi]),
                w_port.en.eq(do_write), r_port.addr.eq(consume), r_port.en.eq(do_inner_read),
            ]
            with m.If(load_q):
                m.d.sync += q[lo:hi].eq(r_port.data)
        with m.If(do_write):
            m.d.sync += produce.eq(Mux(produce == inner_depth - 1, 0, produce + 1))
        with m.If(do_inner_read):
            m.d.sync += consume.eq(Mux(consume == inner_depth - 1, 0, consume + 1))

        level_next = Signal.like(self.level)
        m.d.comb += level_next.eq(self.level + do_write - (self.r_en & self.r_rdy))
        m.d.sync += [inner_level.eq(inner_level + do_write - do_inner_read),
                     inner_r_rdy.eq(inner_level + do_write - do_inner_read != 0),
                     self.level.eq(level_next)]
        # ``w_rdy`` from the whole queue's count (a flip-flop loaded with its next value):
        # the storage alone is full only while both registers are too (a stage is empty
        # only in the two cycles after the storage was).
        w_rdy = Signal(init=1)
        m.d.sync += w_rdy.eq(level_next != self.depth)
        m.d.comb += self.w_rdy.eq(w_rdy)

        with m.If(do_inner_read):
            m.d.sync += v1.eq(1)
        with m.Elif(load_q):
            m.d.sync += v1.eq(0)
        with m.If(load_q):
            m.d.sync += self.r_rdy.eq(1)
        with m.Elif(self.r_en):
            m.d.sync += self.r_rdy.eq(0)
        return m


class SmallFIFO(wiring.Component):
    """First-word-fall-through queue in flip-flops, for the engines' small control queues.

    Same port names as :class:`amaranth.lib.fifo.SyncFIFO` (``w_data``, ``w_en``, ``w_rdy``,
    ``r_data``, ``r_en``, ``r_rdy``, ``level``); a write and a read may happen in the same cycle,
    also when full. Built from registers rather than a memory: these queues are a few entries
    deep, and Icarus does not re-evaluate an asynchronous memory read when the word changes.

    Parameters
    ----------
    width : int
    depth : int
        1 or more entries.
    spare_slot : bool
        Keep one slot more than ``depth`` and write the free slot every cycle (see
        ``elaborate``). ``r_data`` while empty is then not the stale entry it is without: only
        for queues whose ``r_data`` is not used while empty.
    head_reg : bool
        Keep the head entry in a register of its own, loaded as the queue is read (or
        written while empty), so that ``r_data`` comes from flip-flops instead of a
        multiplexer over the slots. The same ``r_data`` whenever the queue is not empty;
        only for queues whose ``r_en`` is an early signal (it selects the register's next
        value, so every bit of the head waits for it) and whose ``r_data`` is not used while
        empty.
    """

    def __init__(self, *, width, depth, spare_slot=False, head_reg=False):
        _check_int("FIFO width", width, 1)
        _check_int("FIFO depth", depth, 1)
        self._width = width
        self._depth = depth
        self._spare = bool(spare_slot)
        self._head = bool(head_reg)
        super().__init__({
            "w_data": In(width), "w_en": In(1), "w_rdy": Out(1),
            "r_data": Out(width), "r_en": In(1), "r_rdy": Out(1),
            "level": Out(range(depth + 1)),
        })

    def elaborate(self, platform):

        m = Module()
        depth = self._depth
        # With ``spare_slot``, one slot more than entries: the slot at ``wr`` never holds an
        # entry, so it is written every cycle, enabled by ``wr`` alone. Enabled by the write
        # handshake, every slot bit waited for the producer's valid and the consumer's read
        # (``w_rdy``): the engines' command intake logic fanned out to all the slots (routed
        # ECP5 paths).
        n = depth + self._spare
        # Nor are the slots then reset (a queue's ``ResetInserter`` flush reached every slot
        # bit's reset): an empty queue's slots hold no entry.
        slots = Array(Signal(self._width, name=f"slot{i}", reset_less=self._spare)
                      for i in range(n))
        rd = Signal(range(n))
        wr = Signal(range(n))
        do_r = Signal()
        do_w = Signal()
        # ``level != 0`` and ``level != depth`` as flip-flops, updated with ``level``: compared
        # from ``level``, they put two LUT levels between it and the engines' command intake
        # (``rq.level`` into the read engine's issue logic and the enables of its burst address
        # and counters: the routed ECP5 critical path of the top). Same values in every cycle.
        nonempty = Signal()
        notfull = Signal(init=1)
        m.d.comb += [
            self.r_rdy.eq(nonempty),
            self.w_rdy.eq(notfull | self.r_en),
            do_r.eq(self.r_en & self.r_rdy),
            do_w.eq(self.w_en & self.w_rdy),
        ]
        if self._head:
            # The next head: the entry after the head if there is one, else the word written
            # in this cycle (a read leaves the queue empty or holding only that word); while
            # the queue is empty, whatever is written (it is the head if the write happens).
            head = Signal(self._width, reset_less=True)
            rd1 = Signal(range(n), init=1 % n)
            two = Signal()      # ``level >= 2`` as a flip-flop, updated with ``level``
            with m.If(do_r):
                m.d.sync += head.eq(Mux(two, slots[rd1], self.w_data))
            with m.Elif(~nonempty):
                m.d.sync += head.eq(self.w_data)
            with m.If(do_r):
                m.d.sync += rd1.eq(Mux(rd1 == n - 1, 0, rd1 + 1))
            with m.If(do_w & ~do_r):
                m.d.sync += two.eq(self.level != 0)
            with m.Elif(do_r & ~do_w):
                m.d.sync += two.eq(self.level >= 3)
            m.d.comb += self.r_data.eq(head)
        else:
            m.d.comb += self.r_data.eq(slots[rd])
        if self._spare:
            m.d.sync += slots[wr].eq(self.w_data)
        with m.If(do_w):
            if not self._spare:
                m.d.sync += slots[wr].eq(self.w_data)
            m.d.sync += wr.eq(Mux(wr == n - 1, 0, wr + 1))
        with m.If(do_r):
            m.d.sync += rd.eq(Mux(rd == n - 1, 0, rd + 1))
        m.d.sync += self.level.eq(self.level + do_w - do_r)
        with m.If(do_w & ~do_r):
            m.d.sync += [nonempty.eq(1), notfull.eq(self.level != depth - 1)]
        with m.Elif(do_r & ~do_w):
            m.d.sync += [nonempty.eq(self.level != 1), notfull.eq(1)]
        return m
