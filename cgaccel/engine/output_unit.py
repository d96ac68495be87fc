"""Output unit: bias, requantization, residual add and ReLU, bit-exact with the golden model.

``y = relu?(clamp(clamp(((acc + bias) * mult + 2**(shift-1)) >> shift) + res))`` where a
channel switched off by the FBS output mask uses ``0`` in place of the requantized value. Four
registered stages (add, multiply, round/shift/saturate, residual/ReLU); one result per cycle,
no flow control.
"""

from amaranth import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .pe import _check_pos, _discard

__all__ = ["OutputUnit"]


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
        Residual, used when ``residual`` is set.
    i_addr : In(addr_width)
    relu, residual : In(1)
        Tile-wide options, held stable while results flow.
    o_valid : Out(1)
    o_addr : Out(addr_width)
    o_data : Out(signed(act_width))
        ``latency`` cycles after the input.
    """

    latency = 4

    def __init__(self, act_width=8, acc_width=32, addr_width=12):
        try:
            _check_pos("OutputUnit act_width", act_width, 2)
            _check_pos("OutputUnit acc_width", acc_width, 2)
            _check_pos("OutputUnit addr_width", addr_width, 1)
        except (TypeError, ValueError):
            _discard(self)
            raise
        self._aw = act_width
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
        sw = max(self._cw, 32) + 1

        def stage(name, src_valid, src):
            v = Signal(name=f"{name}_valid")
            m.d.sync += v.eq(src_valid)
            out = {}
            for key, sig in src.items():
                r = Signal.like(sig, name=f"{name}_{key}")
                m.d.sync += r.eq(sig)
                out[key] = r
            return v, out

        # O1: acc + bias.
        s = Signal(signed(sw))
        m.d.comb += s.eq(self.i_acc + self.i_bias)
        v1, r1 = stage("o1", self.i_valid, {
            "s": s, "mult": self.i_mult, "shift": self.i_shift, "off": self.i_off,
            "res": self.i_res, "addr": self.i_addr})
        # O2: product (needs sw + 32 bits; never wraps, unlike an int64 shortcut would).
        p = Signal(signed(sw + 33))
        m.d.comb += p.eq(r1["s"] * r1["mult"])
        v2, r2 = stage("o2", v1, {
            "p": p, "shift": r1["shift"], "off": r1["off"], "res": r1["res"],
            "addr": r1["addr"]})
        # O3: round half up, arithmetic shift, saturate.
        half = Signal(unsigned(63))
        m.d.comb += half.eq(Const(1, 63) << (r2["shift"] - 1)[:6])
        rounded = Signal(signed(sw + 34))
        m.d.comb += rounded.eq((r2["p"] + half) >> r2["shift"])
        q = Signal(signed(aw))
        m.d.comb += q.eq(Mux(rounded > hi, hi, Mux(rounded < lo, lo, rounded)))
        v3, r3 = stage("o3", v2, {
            "q": q, "off": r2["off"], "res": r2["res"], "addr": r2["addr"]})
        # O4: output mask, residual add with saturation, ReLU.
        base = Mux(r3["off"], 0, r3["q"])
        t = Signal(signed(aw + 1))
        m.d.comb += t.eq(base + Mux(self.residual, r3["res"], 0))
        sat = Signal(signed(aw))
        m.d.comb += sat.eq(Mux(t > hi, hi, Mux(t < lo, lo, t)))
        y = Mux(self.relu & sat[-1], 0, sat)
        m.d.sync += [
            self.o_valid.eq(v3),
            self.o_addr.eq(r3["addr"]),
            self.o_data.eq(y),
        ]
        return m
