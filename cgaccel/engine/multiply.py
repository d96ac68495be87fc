"""Registered products, in a vendor DSP's own output register when the platform asks for one.

Yosys maps ``$mul`` on ECP5 to a MULT18X18D with every register bypassed, so a product held
in a fabric flip-flop leaves the DSP's 3.9 ns multiplier plus a route on each side in one
cycle: 122 MHz for ``default``'s MAC column, whatever the rest of the design does. The
MULT18X18D's output register removes the route out (and the mask's LUT) from that cycle with
the same cycle count, but yosys does not infer it, so the product is instantiated.

The synthesis flow passes :class:`Primitives` as Amaranth's ``platform``; everything else
(Amaranth simulation, the emitted Verilog that cocotb and Verilator run) elaborates with no
platform and gets the plain ``a * b`` register. ``cgaccel/synth/models/MULT18X18D.v`` models the
primitive for simulating the instantiated form.
"""

from amaranth.hdl import ClockSignal, Const, Instance, Mux, ResetSignal, Signal, signed

__all__ = ["Primitives", "registered_product"]

#: Operand width of the ECP5 multiplier (signed when SIGNEDA/SIGNEDB are 1).
_ECP5_OPERAND = 18


class Primitives:
    """The ``platform`` of a synthesis run: which vendor primitives the design may instantiate.

    Parameters
    ----------
    family : str
        ``"ecp5"`` instantiates MULT18X18D for :func:`registered_product`; any other family
        keeps the inferred form.
    """

    def __init__(self, family):
        if not isinstance(family, str):
            raise TypeError(f"Primitive family must be a string, not {family!r}")
        self.family = family

    def __repr__(self):
        return f"Primitives({self.family!r})"


def _as_dsp_operand(value):
    """``value`` as an 18-bit signed operand, or None when it does not fit one."""
    shape = value.shape()
    limit = _ECP5_OPERAND if shape.signed else _ECP5_OPERAND - 1
    if shape.width > limit:
        return None
    return value.as_signed() if shape.signed else value.as_unsigned()


def registered_product(m, a, b, *, name, platform=None, keep=None):
    """Return a signal that holds ``a * b`` (``0`` where ``keep`` was 0) one cycle later.

    Parameters
    ----------
    m : Module
        Module that gets the register (or the DSP) in its ``sync`` domain.
    a, b : Value
        Operands of any signedness; the result has the shape of ``a * b``.
    name : str
        Name of the result signal (and the DSP instance).
    platform : optional
        :class:`Primitives` with family ``"ecp5"`` and operands that fit 18-bit signed
        inputs (unsigned up to 17 bits) give an instantiated MULT18X18D whose output register
        holds the result (cleared by its synchronous reset, driven by the domain's reset or
        ``~keep``); otherwise the register is inferred.
    keep : Value, optional
        One bit: when 0 the register loads 0 instead of the product.
    """
    shape = (a * b).shape()
    out = Signal(shape, name=name)
    family = getattr(platform, "family", None)
    ea, eb = _as_dsp_operand(a), _as_dsp_operand(b)
    if family != "ecp5" or ea is None or eb is None or shape.width > 2 * _ECP5_OPERAND:
        m.d.sync += out.eq(a * b if keep is None else Mux(keep, a * b, 0))
        return out
    wa, wb = Signal(signed(_ECP5_OPERAND), name=f"{name}_a"), Signal(
        signed(_ECP5_OPERAND), name=f"{name}_b")
    p = Signal(2 * _ECP5_OPERAND, name=f"{name}_p")
    clear = Signal(name=f"{name}_clear")
    m.d.comb += [wa.eq(ea), wb.eq(eb), out.eq(p[:shape.width])]
    m.d.comb += clear.eq(ResetSignal("sync") if keep is None else ResetSignal("sync") | ~keep)
    ports = {f"i_A{k}": wa[k] for k in range(_ECP5_OPERAND)}
    ports.update({f"i_B{k}": wb[k] for k in range(_ECP5_OPERAND)})
    ports.update({f"i_C{k}": Const(0, 1) for k in range(_ECP5_OPERAND)})
    ports.update({f"o_P{k}": p[k] for k in range(2 * _ECP5_OPERAND)})
    ports.update({
        "i_SIGNEDA": Const(1, 1), "i_SIGNEDB": Const(1, 1),
        "i_SOURCEA": Const(0, 1), "i_SOURCEB": Const(0, 1),
        "i_CLK0": ClockSignal("sync"), "i_CE0": Const(1, 1),
        "i_RST0": clear,
    })
    m.submodules[name] = Instance(
        "MULT18X18D",
        p_REG_OUTPUT_CLK="CLK0", p_REG_OUTPUT_CE="CE0", p_REG_OUTPUT_RST="RST0",
        p_RESETMODE="SYNC", p_GSR="DISABLED",
        **ports)
    return out
