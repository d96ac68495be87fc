"""Generic stream plumbing: full-throughput register slices (skid buffer, pair buffer)."""

from amaranth.hdl import Module, Mux, Shape, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .rtl import LOCAL_COPY

__all__ = ["PairBuffer", "SkidBuffer"]


class SkidBuffer(wiring.Component):
    """Register slice of a valid/ready stream that still moves one item per cycle.

    Every output (``o.valid``, ``o.payload`` and ``i.ready``) comes from a flip-flop, so no
    combinational path crosses the slice in either direction: what drives ``i`` and what
    consumes ``o`` are timed separately. ``i.ready`` is registered, so it cannot follow
    ``o.ready`` in the same cycle; the second ("skid") register catches the item that arrives
    in the cycle the output stalls. No bubble: with ``o.ready`` held high an item leaves every
    cycle, one cycle after it entered. Items leave in order, none is lost or duplicated.

    Members
    -------
    i : ``In(stream.Signature(shape))``
    o : ``Out(stream.Signature(shape))``

    Parameters
    ----------
    shape : shape-castable
        The payload shape (an int width, a ``Shape``, a ``data`` layout ...).

    Raises
    ------
    TypeError
        If ``shape`` is not shape-castable.
    """

    def __init__(self, shape):
        try:
            if isinstance(shape, bool):
                raise TypeError
            Shape.cast(shape)
        except TypeError:
            raise TypeError(f"Skid buffer payload shape must be shape-castable, "
                            f"not {shape!r}") from None
        self._shape = shape
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape))})

    @property
    def shape(self):
        return self._shape

    def elaborate(self, platform):
        m = Module()
        width = Shape.cast(self._shape).width
        o_data = Signal(width)
        s_valid = Signal()
        s_data = Signal(width)
        m.d.comb += [
            self.o.payload.eq(o_data),
            self.i.ready.eq(~s_valid),
        ]
        with m.If(~self.o.valid | self.o.ready):
            # The output register is free (or emptied this cycle): refill it from the skid
            # register first (order), else from the input.
            m.d.sync += [
                self.o.valid.eq(s_valid | self.i.valid),
                o_data.eq(Mux(s_valid, s_data, Value.cast(self.i.payload))),
                s_valid.eq(0),
            ]
        with m.Elif(self.i.valid & ~s_valid):
            # The output stalls while an item arrives (``i.ready`` was already high): keep it.
            m.d.sync += s_valid.eq(1)
        # The skid register follows the input whenever it is empty (its content is unused
        # then), so its enable is one flip-flop, not the handshake: on the ECP5 that enable,
        # fanned out to every payload bit, ended several routed critical paths.
        with m.If(~s_valid):
            m.d.sync += s_data.eq(Value.cast(self.i.payload))
        return m


class PairBuffer(wiring.Component):
    """:class:`SkidBuffer`'s ports, cycle for cycle, with no handshake on the payload enables.

    A two-entry register FIFO: ``i.ready`` is "not full" and ``o.valid`` "not empty", both
    flip-flops, and ``o.payload`` is the head entry (with nothing held, the entry the next item
    goes to, which takes the input every cycle: the input of the cycle before, as the skid
    buffer's output register has then). Every output equals :class:`SkidBuffer`'s at every
    clock for any input sequence. An entry register loads whenever it holds no item, so its
    enable is a flip-flop, where the skid buffer's output register is enabled by ``o.ready``:
    a wide payload then puts the consumer's ``ready`` logic in front of a clock enable fanned
    out to every payload bit (the engine's buffer-write slice: the engine's ``in_use`` ->
    ``i_wr.ready`` -> 432 enables was a routed ECP5 critical path of ``default``'s top). The
    price is a 2:1 multiplexer on the payload, selected by a flip-flop.

    Members
    -------
    i : ``In(stream.Signature(shape))``
    o : ``Out(stream.Signature(shape))``

    Parameters
    ----------
    shape : shape-castable
        The payload shape.
    copies : int
        Groups of payload bits, each with its own copies of the entry flags and the head
        pointer (``LOCAL_COPY``, equal at every cycle), so that no flip-flop fans out to the
        whole payload.

    Raises
    ------
    TypeError
        If ``shape`` is not shape-castable.
    ValueError
        If ``copies`` is not a positive int.
    """

    def __init__(self, shape, *, copies=4):
        try:
            if isinstance(shape, bool):
                raise TypeError
            Shape.cast(shape)
        except TypeError:
            raise TypeError(f"Pair buffer payload shape must be shape-castable, "
                            f"not {shape!r}") from None
        if not isinstance(copies, int) or isinstance(copies, bool) or copies < 1:
            raise ValueError(f"Pair buffer copies must be a positive int, not {copies!r}")
        self._shape = shape
        self._copies = copies
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape))})

    @property
    def shape(self):
        return self._shape

    def elaborate(self, platform):
        m = Module()
        width = Shape.cast(self._shape).width
        full = Signal()
        entry = [Signal(width, name=f"entry{k}") for k in range(2)]
        held = [Signal(name=f"held{k}") for k in range(2)]     # entry ``k`` holds an item
        head = Signal()         # the entry ``o`` shows
        tail = Signal()         # the entry the next item goes to
        push = self.i.valid & ~full
        pop = self.o.valid & self.o.ready
        held_next = [(held[k] & ~(pop & (head == k))) | (push & (tail == k)) for k in range(2)]
        head_next = head ^ pop
        m.d.comb += self.i.ready.eq(~full)
        m.d.sync += [full.eq(held_next[0] & held_next[1]),
                     self.o.valid.eq(held_next[0] | held_next[1]),
                     head.eq(head_next), tail.eq(tail ^ push),
                     *(h.eq(n) for h, n in zip(held, held_next, strict=True))]
        n = min(self._copies, max(1, width))
        bounds = [g * width // n for g in range(n + 1)]
        payload = Signal(width)
        for g in range(n):
            lo, hi = bounds[g], bounds[g + 1]
            if lo == hi:
                continue
            free_c = [Signal(init=1, name=f"free{k}_c{g}", attrs=LOCAL_COPY) for k in range(2)]
            head_c = Signal(name=f"head_c{g}", attrs=LOCAL_COPY)
            m.d.sync += [*(f.eq(~hn) for f, hn in zip(free_c, held_next, strict=True)),
                         head_c.eq(head_next)]
            for k in range(2):
                with m.If(free_c[k]):
                    m.d.sync += entry[k][lo:hi].eq(Value.cast(self.i.payload)[lo:hi])
            m.d.comb += payload[lo:hi].eq(Mux(head_c, entry[1][lo:hi], entry[0][lo:hi]))
        m.d.comb += self.o.payload.eq(payload)
        return m
