"""One column of processing elements: ``rows`` int8 x int8 multipliers and a pipelined adder tree.

No flow control: the column accepts a word every cycle and its result appears ``latency`` cycles
later with the side-band ``meta`` bits that entered with it. Every stage is registered, so the
longest combinational path is one multiplier or one adder.
"""

from amaranth import Const, Module, Mux, Signal, Value, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .multiply import registered_product

__all__ = ["MacColumn", "shift_add"]


def shift_add(a, b):
    """``a * b`` as a sum of shifted copies of ``a``, one per set bit of ``b``.

    For address and size arithmetic that is not a MAC: Yosys maps every ``$mul`` cell to DSP
    blocks on iCE40 / ECP5 (which the MACs need), this builds adders in logic instead. ``b``
    is an unsigned value (pass the narrower operand) or a non-negative ``int``; ``a`` may be
    signed. The result is the exact product (as wide as ``a * b`` would be).
    """
    if isinstance(b, int):
        if b < 0:
            raise ValueError(f"shift_add constant must be a non-negative integer, not {b}")
        terms = [a << k for k in range(b.bit_length()) if (b >> k) & 1]
    else:
        b = Value.cast(b)
        if b.shape().signed:
            raise TypeError(f"shift_add multiplier must be unsigned, not {b.shape()!r}")
        terms = [Mux(b[k], a << k, 0) for k in range(len(b))]
    if not terms:
        return Const(0)
    # A balanced tree of adders, not a chain: ceil(log2(terms)) carry chains deep instead of
    # terms - 1 (the intake's ``rscw * nk`` check as a chain was the routed ECP5 critical path,
    # 24 logic levels). The sum is exact either way.
    while len(terms) > 1:
        terms = [terms[k] + terms[k + 1] if k + 1 < len(terms) else terms[k]
                 for k in range(0, len(terms), 2)]
    return terms[0]


def _discard(obj):
    """Mark a component whose constructor failed as used, so Amaranth does not warn about it."""
    obj._MustUse__used = True


def _check_pos(name, value, lo=1):
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if value < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, not {value}")


class MacColumn(wiring.Component):
    """``rows`` registered multipliers feeding a registered binary adder tree.

    Parameters
    ----------
    rows : int
        Lanes (input channels reduced per word).
    act_width, weight_width : int
        Signed lane widths.
    sum_width : int
        Signed width of the word sum (must hold ``rows`` full products).
    meta_width : int
        Side-band bits carried alongside (0 allowed).

    Members
    -------
    i_valid : In(1)
    i_act, i_wgt : In(rows * width)
        Lane ``l`` in bits ``[l*width, (l+1)*width)``, two's complement.
    i_mask : In(rows)
        Lane enables; a disabled lane contributes 0 whatever its data.
    i_meta : In(meta_width)
    o_valid : Out(1)
    o_sum : Out(signed(sum_width))
        ``sum(act[l] * wgt[l] for enabled l)``, ``latency`` cycles after the input.
    o_meta : Out(meta_width)
    """

    def __init__(self, rows, act_width=8, weight_width=8, sum_width=32, meta_width=0):
        try:
            _check_pos("MacColumn rows", rows)
            _check_pos("MacColumn act_width", act_width, 2)
            _check_pos("MacColumn weight_width", weight_width, 2)
            _check_pos("MacColumn meta_width", meta_width, 0)
            need = act_width + weight_width + (rows - 1).bit_length()
            _check_pos("MacColumn sum_width", sum_width, need)
        except (TypeError, ValueError):
            _discard(self)
            raise
        self._rows = rows
        self._aw = act_width
        self._ww = weight_width
        self._sw = sum_width
        self._mw = meta_width
        self._levels = (rows - 1).bit_length()
        super().__init__({
            "i_valid": In(1),
            "i_act": In(rows * act_width),
            "i_wgt": In(rows * weight_width),
            "i_mask": In(rows),
            "i_meta": In(max(1, meta_width)),
            "o_valid": Out(1),
            "o_sum": Out(signed(sum_width)),
            "o_meta": Out(max(1, meta_width)),
        })

    @property
    def rows(self):
        return self._rows

    @property
    def latency(self):
        """Cycles from ``i_*`` to ``o_*``: the operand registers, one multiplier stage, then
        ``ceil(log2(rows))`` adder levels."""
        return 2 + self._levels

    def elaborate(self, platform):
        m = Module()
        aw, ww, sw = self._aw, self._ww, self._sw
        # Operand registers, a masked lane's activation zeroed on the way in; no reset, loaded
        # every cycle, so that ``cgaccel synth --dsp-inreg`` copies them into the DSPs' own
        # input registers: the multiplier then lies between two registers of its DSP, not
        # on a fabric path (operand register -> wire -> 3.5 ns of multiplier -> product
        # register was about 200 of ``default``'s endpoints failing at 150 MHz). Masked
        # here rather than by clearing the product register, every product's reset is the
        # domain's: a DSP block of four multipliers takes four reset nets at most.
        ops = []
        for lane in range(self._rows):
            a = Signal(signed(aw), name=f"a{lane}", reset_less=True)
            w = Signal(signed(ww), name=f"w{lane}", reset_less=True)
            m.d.sync += [
                a.eq(Mux(self.i_mask[lane], self.i_act[lane * aw:(lane + 1) * aw], 0)),
                w.eq(self.i_wgt[lane * ww:(lane + 1) * ww]),
            ]
            ops.append((a, w))
        valid_in = Signal(name="vi")
        meta_in = Signal(max(1, self._mw), name="mi")
        m.d.sync += [valid_in.eq(self.i_valid), meta_in.eq(self.i_meta)]
        # Stage 0: products.
        level = [registered_product(m, a, w, name=f"prod{lane}", platform=platform)
                 for lane, (a, w) in enumerate(ops)]
        valid = Signal(name="v0")
        meta = Signal(max(1, self._mw), name="m0")
        m.d.sync += [valid.eq(valid_in), meta.eq(meta_in)]
        # Tree: one registered adder level per stage.
        depth = 0
        while len(level) > 1:
            depth += 1
            nxt = []
            for idx in range(0, len(level), 2):
                s = Signal(signed(sw), name=f"t{depth}_{idx // 2}")
                if idx + 1 < len(level):
                    m.d.sync += s.eq(level[idx] + level[idx + 1])
                else:
                    m.d.sync += s.eq(level[idx])
                nxt.append(s)
            v = Signal(name=f"v{depth}")
            mt = Signal(max(1, self._mw), name=f"m{depth}")
            m.d.sync += [v.eq(valid), mt.eq(meta)]
            level, valid, meta = nxt, v, mt
        m.d.comb += [
            self.o_sum.eq(level[0]),
            self.o_valid.eq(valid),
            self.o_meta.eq(meta),
        ]
        return m
