"""AXI4-Lite register file generated from :mod:`cgaccel.regs`."""

import operator
from functools import reduce

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .axi import RESP_OKAY, RESP_SLVERR, AXI4LiteSignature
from .config import _check_int
from .regs import register_map
from .rtl import LOCAL_COPY

__all__ = ["RegFile", "ADDR_WIDTH"]

ADDR_WIDTH = 12


def port_name(reg):
    return reg.name.lower()


class RegFile(wiring.Component):
    """AXI4-Lite subordinate serving the register map.

    Members
    -------
    bus : ``In(AXI4LiteSignature(addr_width=12))``
        Host access. Unmapped addresses answer SLVERR; byte strobes are honoured on ``rw``
        registers.
    <reg> : one member per register, named in lower case
        ``rw``: ``Out(32)``, the value the host wrote. ``ro``: ``In(32)``, the value the host
        reads (``ID``, ``VERSION`` and ``HWCFG*`` are constants and have no port). ``w1p``:
        ``Out(32)``, high for one cycle with the bits written as 1. ``w1c``: ``Out(32)`` the
        pending bits and ``<reg>_set: In(32)`` bits hardware sets.

    Parameters
    ----------
    constants : dict
        Values of the constant ``ro`` registers, by name.
    counter_width : int
        Bits of the performance counters, 32..64: the counters' ``_HI`` registers hold (and
        latch) only the bits above 32; the rest read 0.
    """

    def __init__(self, constants, *, counter_width=64):
        _check_int("Counter width", counter_width, 32, 64)
        self._counter_width = counter_width
        self._regs = register_map()
        self._constants = dict(constants)
        members = {"bus": In(AXI4LiteSignature(addr_width=ADDR_WIDTH))}
        for reg in self._regs:
            if reg.name in self._constants or reg.name in ("ID", "VERSION"):
                continue
            if reg.access == "ro":
                members[port_name(reg)] = In(32)
            elif reg.access in ("rw", "w1p"):
                members[port_name(reg)] = Out(32, init=reg.reset)
            elif reg.access == "w1c":
                members[port_name(reg)] = Out(32)
                members[port_name(reg) + "_set"] = In(32)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        bus = self.bus
        regs = self._regs
        by_name = {r.name: r for r in regs}

        # Write channel: take address and data independently, answer once both arrived.
        aw_addr = Signal(ADDR_WIDTH)
        aw_full = Signal()
        w_data = Signal(32)
        w_strb = Signal(4)
        w_full = Signal()
        b_pending = Signal()
        m.d.comb += [
            bus.awready.eq(~aw_full & ~b_pending),
            bus.wready.eq(~w_full & ~b_pending),
            bus.bvalid.eq(b_pending),
        ]
        with m.If(bus.awvalid & bus.awready):
            m.d.sync += [aw_addr.eq(bus.awaddr), aw_full.eq(1)]
        with m.If(bus.wvalid & bus.wready):
            m.d.sync += [w_data.eq(bus.wdata), w_strb.eq(bus.wstrb), w_full.eq(1)]
        with m.If(bus.bvalid & bus.bready):
            m.d.sync += b_pending.eq(0)

        do_write = Signal()
        m.d.comb += do_write.eq(aw_full & w_full)
        bresp = Signal(2)
        m.d.comb += bus.bresp.eq(bresp)
        wmask = Signal(32)
        m.d.comb += wmask.eq(Const(0, 32))
        for i in range(4):
            with m.If(w_strb[i]):
                m.d.comb += wmask[8 * i:8 * i + 8].eq(0xFF)

        for reg in regs:
            if reg.access == "w1p":
                m.d.sync += getattr(self, port_name(reg)).eq(0)
            if reg.access == "w1c":
                port = getattr(self, port_name(reg))
                m.d.sync += port.eq(port | getattr(self, port_name(reg) + "_set"))

        with m.If(do_write):
            m.d.sync += [aw_full.eq(0), w_full.eq(0), b_pending.eq(1)]
            with m.Switch(aw_addr[2:]):
                for reg in regs:
                    with m.Case(reg.offset >> 2):
                        m.d.sync += bresp.eq(RESP_OKAY)
                        if reg.name not in self._constants and reg.name not in ("ID", "VERSION"):
                            port = getattr(self, port_name(reg))
                            if reg.access == "rw":
                                # One conditional assignment per byte lane rather than a
                                # masked merge: yosys turns each into a flip-flop enable
                                # (no LUT per bit; a merge costs one LUT per bit on iCE40).
                                for i in range(4):
                                    with m.If(w_strb[i]):
                                        m.d.sync += port[8 * i:8 * i + 8].eq(
                                            w_data[8 * i:8 * i + 8])
                            elif reg.access == "w1p":
                                m.d.sync += port.eq(w_data & wmask)
                            elif reg.access == "w1c":
                                setp = getattr(self, port_name(reg) + "_set")
                                m.d.sync += port.eq((port & ~(w_data & wmask)) | setp)
                with m.Default():
                    m.d.sync += bresp.eq(RESP_SLVERR)

        # Read channel: one outstanding read through three registers (address; the value
        # within each group of eight registers; the group), so that no register-to-register
        # path is more than an 8:1 multiplexer. The single-cycle decode (read address -> a
        # 32-register multiplexer -> ``rdata``) was 70.9 MHz on the ECP5-85F out of context;
        # the host sees two cycles more per read, which no counter counts.
        r_busy = Signal()       # from the address handshake to the data handshake
        r_stage = Signal(2)     # 1: address registered, 2: groups registered, 3: data valid
        rdata = Signal(32)
        rresp = Signal(2)
        m.d.comb += [
            bus.arready.eq(~r_busy),
            bus.rvalid.eq(r_stage == 3),
            bus.rdata.eq(rdata),
            bus.rresp.eq(rresp),
        ]

        # Counter _HI halves latched when _LO is read, as wide as the counters are above 32
        # bits. At 32 there is no latch (a zero-width register lints as ``[-1:0]``): the _HI
        # registers read 0.
        shadows = {}
        hi_bits = self._counter_width - 32
        for reg in regs:
            if reg.offset >= 0x100 and reg.name.endswith("_HI"):
                shadows[reg.name] = (Signal(hi_bits, name=f"{port_name(reg)}_shadow")
                                     if hi_bits else None)

        def read_value(reg):
            if reg.name in ("ID", "VERSION"):
                return Const(reg.reset, 32)
            if reg.name in self._constants:
                return Const(self._constants[reg.name], 32)
            if reg.access == "w1p":
                return Const(0, 32)
            if reg.name in shadows:
                return Const(0, 32) if shadows[reg.name] is None else shadows[reg.name]
            return getattr(self, port_name(reg))

        groups = {}
        for reg in regs:
            groups.setdefault(reg.offset >> 5, []).append(reg)
        g_val = {g: Signal(32, name=f"rgroup{g}") for g in groups}
        g_hit = {g: Signal(name=f"rgroup{g}_hit") for g in groups}

        # Each group selects with its own copy of the low address bits (one copy fanned out
        # to every group's 32 multiplexers was the next path, 7.5 ns of its 8.9 ns routing).
        g_sel = {g: Signal(3, name=f"rgroup{g}_sel", attrs=LOCAL_COPY) for g in groups}
        # A counter's _HI half is latched in the cycle its _LO half is, from a flag decoded
        # with the address (the address compare in front of the 32 latch enables was the next
        # path).
        lo_hit = {reg: Signal(name=f"{port_name(reg)}_read")
                  for reg in regs
                  if reg.name.endswith("_LO") and shadows.get(reg.name[:-3] + "_HI") is not None}
        g_on = {g: Signal(name=f"rgroup{g}_on") for g in groups}
        m.d.sync += [hit.eq(0) for hit in lo_hit.values()]
        with m.If(bus.arvalid & bus.arready):
            m.d.sync += [r_busy.eq(1), r_stage.eq(1)]
            m.d.sync += [on.eq(bus.araddr[5:] == g) for g, on in g_on.items()]
            m.d.sync += [hit.eq(bus.araddr[2:] == reg.offset >> 2) for reg, hit in lo_hit.items()]
            m.d.sync += [sel.eq(bus.araddr[2:5]) for sel in g_sel.values()]
        # The groups load every cycle (the selects change only with a new address): an
        # enable from ``r_stage`` fanned out to all of them was the next path (7.8 ns of
        # routing on one net). The ``_read`` flags are one-cycle pulses, high in stage 1.
        with m.If(r_stage == 1):
            m.d.sync += r_stage.eq(2)
        for g, members in groups.items():
            m.d.sync += [g_val[g].eq(0), g_hit[g].eq(0)]
            with m.If(g_on[g]):
                with m.Switch(g_sel[g]):
                    for reg in members:
                        with m.Case((reg.offset >> 2) & 7):
                            m.d.sync += [g_val[g].eq(read_value(reg)), g_hit[g].eq(1)]
        for reg, hit in lo_hit.items():
            with m.If(hit):
                hi = reg.name[:-3] + "_HI"
                m.d.sync += shadows[hi].eq(getattr(self, port_name(by_name[hi])))
        with m.If(r_stage == 2):
            # Only the addressed group holds a value (the others were cleared): an OR.
            hit = Cat(*g_hit.values()).any()
            m.d.sync += [r_stage.eq(3), rresp.eq(Mux(hit, RESP_OKAY, RESP_SLVERR)),
                         rdata.eq(reduce(operator.or_, g_val.values()))]
        with m.If(bus.rvalid & bus.rready):
            m.d.sync += [r_stage.eq(0), r_busy.eq(0)]
        return m
