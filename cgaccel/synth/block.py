"""Out-of-context wrappers: the accelerator top with its ports made placeable.

The top has hundreds of port bits (AXI4-Lite + AXI4), more than any package has pins. For
resource and Fmax figures the ports are reached through a *thin register wrapper*: every input
bit is a stage of a shift chain fed by one pin, every output bit is folded into a multiple-input
signature register (MISR) read on one pin. Nothing of the top can be optimised away (every output
reaches a pin) and every path through the top starts and ends at a flip-flop, so the reported Fmax
is the top's own register-to-register Fmax. The wrapper costs one flip-flop per port bit and one
LUT per output bit; :func:`port_bits` gives the counts so reports can state the overhead.
"""

from amaranth.hdl import Cat, Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["ScanWrapper", "DirectWrapper", "port_bits"]


def _flat_ports(component):
    """``[(path, signal, is_input)]`` for every port signal of ``component``."""
    out = []
    for path, member, value in component.signature.flatten(component):
        # Struct payloads (``data.View``) have no ``len()``: their bits are the port.
        out.append(("__".join(str(p) for p in path), Value.cast(value), member.flow == In))
    return out


def port_bits(component):
    """Return ``(input_bits, output_bits)`` of ``component``'s signature."""
    ins = outs = 0
    for _path, value, is_in in _flat_ports(component):
        if is_in:
            ins += len(value)
        else:
            outs += len(value)
    return ins, outs


class ScanWrapper(wiring.Component):
    """Shift-chain / MISR wrapper around a component with too many ports for the package.

    Members
    -------
    scan_in : ``In(1)``
        Serial input: shifts through one flip-flop per input bit of the wrapped component.
    scan_out : ``Out(1)``
        Last bit of the MISR that folds in every output bit each cycle.

    Parameters
    ----------
    inner : wiring.Component
        The component to wrap (its ``sync`` domain is the wrapper's).
    """

    def __init__(self, inner):
        # A component refused by its constructor is not "created but never used".
        self._MustUse__silence = True
        if not isinstance(inner, wiring.Component):
            raise TypeError(f"Wrapped design must be a wiring.Component, not {inner!r}")
        self._MustUse__silence = False
        self._inner = inner
        super().__init__({"scan_in": In(1), "scan_out": Out(1)})

    @property
    def inner(self):
        return self._inner

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = self._inner
        ports = _flat_ports(inner)
        ins = [v for _p, v, is_in in ports if is_in]
        outs = [v for _p, v, is_in in ports if not is_in]
        n_in = sum(len(v) for v in ins)
        n_out = sum(len(v) for v in outs)

        if n_in:
            chain = Signal(n_in)
            m.d.sync += chain.eq(Cat(self.scan_in, chain[:-1]))
            pos = 0
            for v in ins:
                m.d.comb += v.eq(chain[pos:pos + len(v)])
                pos += len(v)
        if n_out:
            flat = Signal(n_out)
            m.d.comb += flat.eq(Cat(*outs))
            misr = Signal(n_out)
            # Each stage takes the previous stage XOR one output bit: one LUT level per bit.
            m.d.sync += misr.eq(Cat(self.scan_in ^ flat[0], misr[:-1] ^ flat[1:]))
            m.d.comb += self.scan_out.eq(misr[-1])
        return m


class DirectWrapper(wiring.Component):
    """Wrapper keeping the inner component's ports as top-level I/O (when they fit).

    The ports are those of ``inner``; registers are placed on both sides so that the timing
    figure is register to register, as with :class:`ScanWrapper`.
    """

    def __init__(self, inner):
        # A component refused by its constructor is not "created but never used".
        self._MustUse__silence = True
        if not isinstance(inner, wiring.Component):
            raise TypeError(f"Wrapped design must be a wiring.Component, not {inner!r}")
        self._MustUse__silence = False
        self._inner = inner
        super().__init__(inner.signature)

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = self._inner
        for (_p, outer, is_in), (_q, inside, _i) in zip(_flat_ports(self), _flat_ports(inner),
                                                        strict=True):
            if is_in:
                m.d.sync += inside.eq(outer)
            else:
                m.d.sync += outer.eq(inside)
        return m
