"""The ``sync`` reset on a global buffer (ECP5).

Amaranth's ``sync`` reset is synchronous and reaches every flip-flop that has a reset value;
yosys puts it on the flip-flops' LSR pins. On ``default`` that is 25,173 of 32,244 flip-flops.
nextpnr-ecp5 promotes only clock nets to the global network (``ecp5/globals.cc``), so that one
net was routed through the general fabric to a slice in every part of the die, and it was the
most congested net of the router (``--router2-heatmap``). An explicit ``DCCA`` in front of it
puts it on a global instead; nextpnr routes every ``DCCA`` output over the clock tree, whatever
its loads. iCE40 needs nothing: nextpnr-ice40 promotes high-fanout resets itself.

The reset is registered first, so the global starts at a flip-flop: one cycle more of reset,
and the pin's input delay stays off every reset path.

The ``DCCA`` is placed by the target (``Target.reset_dcc``): left to itself nextpnr 0.11 puts
a fabric-driven DCCA on the first free DCC and reserves one fabric entry wire for it, and on
the 25F that wire cannot be reached ("Failed to route arc 0.0 of net 'sync_rst_q' ... to
X0/Y0/G_CLKI_TDCC0", the tiny board top and a small block alike); with the bel given it
reserves none and the router finds an entry. TDCC2 is past the DCCs that nextpnr gives the
clock (the first free one, or the pin's dedicated one).
"""

from amaranth.hdl import ClockDomain, ClockSignal, Const, Instance, Module, ResetSignal, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In

__all__ = ["GlobalResetTop", "drive_global_reset"]


def drive_global_reset(m, rst, domain="sync", bel=None):
    """Drive ``domain``'s reset from ``rst`` through a register and an ECP5 ``DCCA``.

    ``domain`` must be defined by ``m`` (its clock driven by the caller). The register is
    reset-less: it is what the reset comes from. ``bel`` places the ``DCCA`` (a nextpnr bel
    name, :attr:`cgaccel.synth.targets.Target.reset_dcc`).
    """
    _check_bel(bel)
    rst_q = Signal(init=1, reset_less=True, name=f"{domain}_rst_q")
    m.d[domain] += rst_q.eq(rst)
    attrs = {} if bel is None else {"a_BEL": bel}
    m.submodules[f"{domain}_rst_buf"] = Instance(
        "DCCA", i_CLKI=rst_q, i_CE=Const(1, 1), o_CLKO=ResetSignal(domain), **attrs)


def _check_bel(bel):
    if bel is not None and (not isinstance(bel, str) or not bel):
        raise TypeError(f"Reset DCC bel must be a bel name or None, not {bel!r}")


class GlobalResetTop(wiring.Component):
    """Top-level wrapper: ``clk`` and ``rst`` pins, the ``sync`` reset through a global buffer.

    Members
    -------
    clk, rst : ``In(1)``
        The ``sync`` clock and (synchronous, active-high) reset.
    every member of ``inner``
        Forwarded unchanged (same names, so the Verilog ports keep their names).

    Parameters
    ----------
    inner : wiring.Component
        The design; its ``sync`` domain is this wrapper's.
    reset_dcc : str, optional
        nextpnr bel of the reset's ``DCCA``.
    """

    def __init__(self, inner, reset_dcc=None):
        self._MustUse__silence = True
        if not isinstance(inner, wiring.Component):
            raise TypeError(f"Wrapped design must be a wiring.Component, not {inner!r}")
        members = dict(inner.signature.members.items())
        for name in ("clk", "rst"):
            if name in members:
                raise ValueError(f"Wrapped design must not have a member named {name!r}")
        _check_bel(reset_dcc)
        self._MustUse__silence = False
        self._inner = inner
        self._reset_dcc = reset_dcc
        super().__init__({"clk": In(1), "rst": In(1), **members})

    @property
    def inner(self):
        return self._inner

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = self._inner
        m.domains.sync = ClockDomain("sync")
        m.d.comb += ClockSignal("sync").eq(self.clk)
        drive_global_reset(m, self.rst, bel=self._reset_dcc)
        outer = {path: value for path, _member, value in self.signature.flatten(self)}
        for path, member, value in inner.signature.flatten(inner):
            if member.flow == In:
                m.d.comb += value.eq(outer[path])
            else:
                m.d.comb += outer[path].eq(value)
        return m
