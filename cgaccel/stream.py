"""Generic stream plumbing: a full-throughput register slice (skid buffer)."""

from amaranth.hdl import Module, Mux, Shape, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["SkidBuffer"]


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
