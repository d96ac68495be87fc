"""Output unit: bias, requantization, residual add and ReLU, bit-exact with the golden model.

``y = relu?(clamp(clamp(((acc + bias) * mult + 2**(shift-1)) >> shift) + res))`` where a
channel switched off by the FBS output mask uses ``0`` in place of the requantized value. Ten
registered stages (add; a copy of the sum for the multipliers, ``dsp_copy``; four DSP-sized partial
products; two stages summing them; variable shift by ``shift - 1`` in two halves; saturation
flags and the rounding ``+ 1``; halve, clamp and mask; residual/ReLU), each short enough for
the FPGA's clock target; one result per cycle, no flow control.
"""

from amaranth import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..rtl import LOCAL_COPY
from .multiply import registered_product
from .pe import _check_pos, _discard

__all__ = ["OutputUnit"]


#: Result bits of the variable shifts per copy of the shift amount.
_SHIFT_SLICE = 16


class OutputUnit(wiring.Component):
    """Requantization pipeline.

    Parameters
    ----------
    act_width : int
        Output activation width (saturation range ``[-2**(w-1), 2**(w-1)-1]``).
    acc_width : int
        Signed accumulator width.
    addr_width : int
        Output-bank address width carried alongside.

    Members
    -------
    i_valid, i_off : In(1)
        A result, and whether its channel is masked off (``q = 0``).
    i_acc : In(signed(acc_width))
    i_bias : In(signed(32))
    i_mult : In(unsigned(32))
        1 .. 2**31-1.
    i_shift : In(6)
        1 .. 62.
    i_res : In(signed(act_width))
        Residual of the result that entered ``res_delay`` (2) cycles earlier, used when
        ``residual`` is set. The column reads it from the output bank with the unit's
        registered input address, so the bank's read address does not depend on the gate
        decision of the same cycle (that path was the ECP5 critical path once this unit's
        stages were split), and registers the bank's output before its half and lane
        multiplexers (a block RAM's clock-to-out on ECP5 is 5.8 ns).
    i_addr : In(addr_width)
    relu, residual : In(1)
        Tile-wide options, held stable while results flow.
    o_valid : Out(1)
    o_addr : Out(addr_width)
    o_data : Out(signed(act_width))
        ``latency`` cycles after the input.
    dsp_copy : bool
        The multipliers' operands from a plain copy of O1 (stage ``o1b``): ``latency`` 10,
        else 9.
    """

    res_delay = 2

    def __init__(self, act_width=8, acc_width=32, addr_width=12, dsp_copy=True):
        try:
            _check_pos("OutputUnit act_width", act_width, 2)
            _check_pos("OutputUnit acc_width", acc_width, 2)
            _check_pos("OutputUnit addr_width", addr_width, 1)
        except (TypeError, ValueError):
            _discard(self)
            raise
        self._aw = act_width
        self._dsp_copy = bool(dsp_copy)
        self.latency = 9 + self._dsp_copy
        self._cw = acc_width
        self._adw = addr_width
        super().__init__({
            "i_valid": In(1), "i_off": In(1),
            "i_acc": In(signed(acc_width)),
            "i_bias": In(signed(32)),
            "i_mult": In(unsigned(32)),
            "i_shift": In(6),
            "i_res": In(signed(act_width)),
            "i_addr": In(addr_width),
            "relu": In(1), "residual": In(1),
            "o_valid": Out(1),
            "o_addr": Out(addr_width),
            "o_data": Out(signed(act_width)),
        })

    def elaborate(self, platform):
        m = Module()
        aw = self._aw
        lo, hi = -(1 << (aw - 1)), (1 << (aw - 1)) - 1
        sw = max(self._cw, 32) + 1      # acc + bias, never wraps
        pw = sw + 32                    # (acc + bias) * mult, never wraps

        def stage(name, src_valid, src):
            # With ``dsp_copy`` only ``valid`` is reset: a reset-less stage register in front
            # of a multiplier is a plain copy, which ``cgaccel synth --dsp-inreg`` moves into
            # the DSP. (Without it, as before: on the iCE40 UP5K the reset-less form took
            # more logic cells than ``tiny``'s board design has to spare.)
            v = Signal(name=f"{name}_valid")
            m.d.sync += v.eq(src_valid)
            out = {}
            for key, sig in src.items():
                r = Signal.like(sig, name=f"{name}_{key}", reset_less=self._dsp_copy)
                m.d.sync += r.eq(sig)
                out[key] = r
            return v, out

        def sliced_shift(value, source, zeros, name):
            """``value >> (source * 2**zeros)`` with ``source`` registered here (as the stage
            before registers it), one copy per ``_SHIFT_SLICE`` result bits: one register
            fanning out to every bit's multiplexer was the unit's routed ECP5 critical path
            (3.5 ns on that one net)."""
            out = []
            for lo in range(0, len(value), _SHIFT_SLICE):
                amt = Signal(len(source), name=f"{name}{lo // _SHIFT_SLICE}",
                             attrs=LOCAL_COPY)
                m.d.sync += amt.eq(source)
                out.append((value >> Cat(Const(0, zeros), amt))[lo:lo + _SHIFT_SLICE])
            return Cat(*out)

        # Every stage holds at most one carry chain of about 34 bits (O4: about 50) or one
        # small LUT/mux tree: the single-stage form (64-bit round add feeding a 64-bit barrel
        # shifter feeding the clamp) was the design's critical path on ECP5 (107 levels).
        # The residual joins its result three cycles after the input (``res_delay`` + 1: one
        # register inside, at O3) and travels with it to O9.

        # O1: acc + bias; shift - 1 (the rounding is done as a shift by shift - 1, below).
        s = Signal(signed(sw))
        sh1 = Signal(6)
        m.d.comb += [s.eq(self.i_acc + self.i_bias), sh1.eq(self.i_shift - 1)]
        v1a, r1a = stage("o1", self.i_valid, {
            "s": s, "mult": self.i_mult, "sh1": sh1, "off": self.i_off,
            "addr": self.i_addr})
        # O1b: the same values again. The sum's carry chain ends at a fabric register (O1),
        # and the multipliers' operands come from a plain copy of it (O1b), which
        # ``--dsp-inreg`` moves into the DSPs: O1 -> DSP operand pins was a wire with no
        # logic on it, and with the sum in front of it too long for 150 MHz on ECP5.
        # The residual, which joins at O3, waits a cycle here so that ``res_delay`` stays 2.
        if self._dsp_copy:
            v1, r1 = stage("o1b", v1a, r1a)
            res_d = Signal.like(self.i_res, name="res_d", reset_less=True)
            m.d.sync += res_d.eq(self.i_res)
        else:
            v1, r1, res_d = v1a, r1a, self.i_res
        # O2: four partial products, each small enough for one 18x18 DSP multiplier
        # (17-bit unsigned / 16-bit signed by 16-bit unsigned), instead of one 33x32 multiply
        # whose DSP pieces and fabric adders would sit in one stage.
        s1, mu = r1["s"], r1["mult"]
        s_lo, s_hi = s1[:17], s1[17:].as_signed()
        m_lo, m_hi = mu[:16], mu[16:]
        pp = {}
        for key, a, b in (("ll", s_lo, m_lo), ("lh", s_lo, m_hi),
                          ("hl", s_hi, m_lo), ("hh", s_hi, m_hi)):
            pp[key] = registered_product(m, a, b, name=f"o2_{key}", platform=platform)
        v2, r2 = stage("o2", v1, {
            "sh1": r1["sh1"], "off": r1["off"], "addr": r1["addr"]})
        # O3: p = ll + lh*2**16 + (hl + hh*2**16)*2**17, two sums at a time. The low 16 bits
        # of each sum are a plain copy, so each carry chain is only about 34 bits long.
        a_ = Cat(pp["ll"][:16], pp["ll"][16:] + pp["lh"])
        b_ = Cat(pp["hl"][:16], pp["hl"][16:].as_signed() + pp["hh"]).as_signed()
        sa = Signal(unsigned(len(a_)))
        sb = Signal(signed(len(b_)))
        m.d.comb += [sa.eq(a_), sb.eq(b_)]
        v3, r3 = stage("o3", v2, {
            "a": sa, "b": sb, "sh1": r2["sh1"], "off": r2["off"], "res": res_d,
            "addr": r2["addr"]})
        # O4: the product; the low 17 bits are a copy of ``a``.
        p = Signal(signed(pw))
        m.d.comb += p.eq(Cat(r3["a"][:17], r3["a"][17:] + r3["b"]).as_signed())
        v4, r4 = stage("o4", v3, {
            "p": p, "sh1": r3["sh1"], "off": r3["off"], "res": r3["res"], "addr": r3["addr"]})
        # Round half up: floor((p + 2**(k-1)) / 2**k) == floor((floor(p / 2**(k-1)) + 1) / 2),
        # so shift arithmetically by k - 1 first and add 1 to a few low bits afterwards (no
        # 64-bit add of the rounding constant). The variable shift is split over two stages.
        # O5: shift by the low 3 bits of k - 1 (one 8:1 mux per bit).
        t1 = Signal(signed(pw))
        m.d.comb += t1.eq(sliced_shift(r4["p"], r3["sh1"][:3], 0, "o4_shlo"))
        v5, r5 = stage("o5", v4, {
            "t": t1, "off": r4["off"], "res": r4["res"], "addr": r4["addr"]})
        # O6: shift by 8 times the high 3 bits of k - 1.
        t2 = Signal(signed(pw))
        m.d.comb += t2.eq(sliced_shift(r5["t"], r4["sh1"][3:], 3, "o5_shhi"))
        v6, r6 = stage("o6", v5, {
            "t": t2, "off": r5["off"], "res": r5["res"], "addr": r5["addr"]})
        # O7: t = p >> (k-1) is only needed saturated to aw + 2 bits (the result saturates to
        # aw bits after halving): flag overflow with OR/AND reductions of the high bits (LUT
        # trees, not a wide comparator), and add the rounding 1 to the low aw + 2 bits.
        t = r6["t"]
        top = t[aw + 1:]
        ovf_p = Signal()
        ovf_n = Signal()
        u = Signal(signed(aw + 3))
        m.d.comb += [ovf_p.eq(~t[-1] & top.any()), ovf_n.eq(t[-1] & ~top.all()),
                     u.eq(t[:aw + 2].as_signed() + 1)]
        v7, r7 = stage("o7", v6, {
            "u": u, "ovf_p": ovf_p, "ovf_n": ovf_n, "off": r6["off"], "res": r6["res"],
            "addr": r6["addr"]})
        # O8: halve, saturate to aw bits (r is in [-2**aw, 2**aw]: bit checks again), apply
        # the output mask.
        r = Signal(signed(aw + 2))
        m.d.comb += r.eq(r7["u"] >> 1)
        rtop = r[aw - 1:]
        # ``u`` is meaningless when a flag is set, so the flags take precedence.
        pos = r7["ovf_p"] | (~r7["ovf_n"] & ~r[-1] & rtop.any())
        neg = r7["ovf_n"] | (~r7["ovf_p"] & r[-1] & ~rtop.all())
        base = Signal(signed(aw))
        m.d.comb += base.eq(Mux(r7["off"], 0, Mux(pos, hi, Mux(neg, lo, r[:aw]))))
        v8, r8 = stage("o8", v7, {"q": base, "res": r7["res"], "addr": r7["addr"]})
        # O9 (the tenth stage): residual add with saturation, ReLU.
        tr = Signal(signed(aw + 1))
        m.d.comb += tr.eq(r8["q"] + Mux(self.residual, r8["res"], 0))
        sat = Signal(signed(aw))
        m.d.comb += sat.eq(Mux(tr > hi, hi, Mux(tr < lo, lo, tr)))
        y = Mux(self.relu & sat[-1], 0, sat)
        m.d.sync += [
            self.o_valid.eq(v8),
            self.o_addr.eq(r8["addr"]),
            self.o_data.eq(y),
        ]
        return m
