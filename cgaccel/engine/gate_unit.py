"""Gate-decision unit at the tail of a column's MAC pipeline (combinational).

For every finished work item it decides where the item goes next:

=====================  ==================================================================
finished item          decision
=====================  ==================================================================
masked off (FBS)       output unit, ``q = 0`` (no MACs were issued)
dense base path        output unit with ``acc = psum``
gated base path        ``psum > thr``: conditional-path queue (gate open);
                       otherwise output unit with ``acc = psum_base`` (gate closed)
conditional path       output unit with ``acc = psum_base + psum_cond`` (= ``psum_full``)
=====================  ==================================================================
"""

from amaranth import Module, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .pe import _check_pos, _discard

__all__ = ["GateUnit"]


class GateUnit(wiring.Component):
    """Route one finished item.

    Parameters
    ----------
    acc_width : int
        Signed accumulator width.
    early : bool
        The caller compares ``psum > thr`` a stage earlier and registers it as ``i_above``
        (no ``i_thr``): the decision is then one LUT of flip-flops, not a 32-bit compare, in
        front of what consumes ``o_open`` (the conditional-path queue).

    Members
    -------
    i_valid : In(1)
    i_psum : In(signed(acc_width))
        Sum of the segment that just finished.
    i_base : In(signed(acc_width))
        Stored base-path sum (used when ``i_cond``).
    i_thr : In(signed(32))
        Without ``early``.
    i_above : In(1)
        With ``early``: ``psum > thr`` of this item.
    i_cond, i_gated, i_off : In(1)
        Segment was the conditional path; item belongs to a gated layer; channel masked off.
    o_out : Out(1)
        Send to the output unit with ``o_acc``.
    o_acc : Out(signed(acc_width))
    o_open : Out(1)
        Gate opened: push the item into the conditional-path queue.
    o_closed : Out(1)
        Gate closed: conditional work skipped.
    """

    def __init__(self, acc_width=32, *, early=False):
        try:
            _check_pos("GateUnit acc_width", acc_width, 2)
            if not isinstance(early, bool):
                raise TypeError(f"GateUnit early must be a bool, not {early!r}")
        except (TypeError, ValueError):
            _discard(self)
            raise
        self._early = early
        super().__init__({
            "i_valid": In(1),
            "i_psum": In(signed(acc_width)),
            "i_base": In(signed(acc_width)),
            **({"i_above": In(1)} if early else {"i_thr": In(signed(32))}),
            "i_cond": In(1), "i_gated": In(1), "i_off": In(1),
            "o_out": Out(1),
            "o_acc": Out(signed(acc_width)),
            "o_open": Out(1),
            "o_closed": Out(1),
        })

    @property
    def early(self):
        return self._early

    def elaborate(self, platform):
        m = Module()
        decide = self.i_valid & self.i_gated & ~self.i_cond & ~self.i_off
        opens = self.i_above if self._early else self.i_psum > self.i_thr
        m.d.comb += [
            self.o_open.eq(decide & opens),
            self.o_closed.eq(decide & ~opens),
            self.o_out.eq(self.i_valid & ~(decide & opens)),
        ]
        with m.If(self.i_off):
            m.d.comb += self.o_acc.eq(0)
        with m.Elif(self.i_cond):
            m.d.comb += self.o_acc.eq(self.i_base + self.i_psum)
        with m.Else():
            m.d.comb += self.o_acc.eq(self.i_psum)
        return m
