"""The engine's tile-size checks: one narrow shift-and-add unit stepping through a fixed program.

A tile command must fit the buffers it names: ``r*s*cw*nk`` weight words, ``hb*w*cw``
activation words (``hb*w`` per word plane of a wide band), ``ho*wo*nk`` (or a pixel split's
``pc*nk``) output activations, and a pixel split's ``pc*cols`` must cover ``ho*wo``. These
products used to be formed at once, as trees of adders and constant division tables: about 760
LUT4 of a one-column engine's 4,077 on an iCE40 UP5K, and their trees were on the routed ECP5
critical paths of earlier stops. A command is checked once per tile, and tiles run for
hundreds of cycles, so here one ``W``-bit adder forms every product a bit of a factor per cycle
(:func:`intake_cycles` cycles in all, a fixed count the cycle models use).

Products saturate: ``W`` bits hold every limit, and a sticky ``over`` flag records that the
true product reached ``2**W``. Every factor of an accepted command is at least 1, so a partial
product never shrinks and ``over`` means "above every limit"; a factor of 0 is rejected by the
engine's field checks, whatever this unit says.
"""

from amaranth import Module, Mux, Shape, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .geometry import Geometry
from .pe import shift_add

__all__ = ["IntakeCheck", "intake_cycles"]


def _widths(config):
    geo = Geometry(config)
    tl = geo.tile_layout()
    width = {name: Shape.cast(tl.members[name]).width
             for name in ("kt", "hb", "w", "ho", "wo", "cw", "pc")}
    width["r"] = width["s"] = config.max_kernel.bit_length()
    width["nk"] = width["kt"]
    return geo, width


def _program(config):
    """``(load, factor)`` steps: ``load`` names the multiplicand (``None``: the last product,
    ``"pc|acc"``: ``pc`` for a pixel split, else the last product), ``factor`` the field whose
    bits the step walks."""
    return [("cw", "s"), (None, "r"), (None, "nk"),
            ("hb", "w"), (None, "cw"),
            ("ho", "wo"), ("pc|acc", "nk")]


def intake_cycles(config):
    """Cycles from the first step to the verdict: a load cycle per step, a cycle per bit of
    its factor, the final check and the verdict (``last``)."""
    _, width = _widths(config)
    return sum(1 + width[f] for _, f in _program(config)) + 2


def product_bits(config):
    """``W``: wide enough for every limit, every loaded field and ``pc * cols``."""
    geo, width = _widths(config)
    limits = (2 * config.act_depth, config.weight_depth, config.out_depth,
              ((1 << width["pc"]) - 1) * config.cols)
    return max(max(v.bit_length() for v in limits),
               *(width[f] for f in ("cw", "hb", "ho", "pc")))


class IntakeCheck(wiring.Component):
    """Size checks of one tile command, a product bit per cycle.

    Members
    -------
    start : ``In(1)``
        The command is taken: ``cmd`` and ``nk`` hold it from the next cycle until ``last``.
    cmd : ``In(tile layout)``; nk : ``In(kt width)``
        The tile command and its output channels per column (``kt``, or ``kt / cols`` rounded
        up for a channel split).
    last : ``Out(1)``
        The verdict's cycle, :func:`intake_cycles` cycles after ``start``: ``bad``, ``scw``
        and ``rscw`` hold the result from this cycle until the next ``start``.
    bad : ``Out(1)``
        Some product is over its buffer: an OR of check registers, so that the engine can
        register its verdict in the ``last`` cycle.
    scw, rscw : ``Out(wgt_bits + 1)``
        ``s * cw`` and ``r * s * cw`` (exact when ``bad`` is low).
    """

    def __init__(self, config):
        self._cfg = config
        self._geo, self._width = _widths(config)
        wb = self._geo.wgt_bits + 1
        super().__init__({
            "start": In(1),
            "cmd": In(self._geo.tile_layout()),
            "nk": In(self._width["nk"]),
            "last": Out(1),
            "bad": Out(1),
            "scw": Out(wb),
            "rscw": Out(wb),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, width = self._cfg, self._width
        cmd = self.cmd
        W = product_bits(cfg)
        fields = {name: getattr(cmd, name) for name in ("s", "w", "wo", "cw", "hb", "ho", "pc")}
        kb = width["r"]
        fields["r"], fields["s"] = cmd.r[:kb], cmd.s[:kb]
        fields["nk"] = self.nk
        fbits = max(width.values())

        acc = Signal(W)          # the product so far
        over = Signal()          # ... reached 2**W
        mcand = Signal(W)        # the multiplicand, shifted left a bit per cycle
        mover = Signal()         # ... reached 2**W
        mult = Signal(fbits)     # the factor, shifted right a bit per cycle
        count = Signal(range(fbits + 1))
        flags = {name: Signal(name=f"bad_{name}")
                 for name in ("wgt", "wide", "act", "pc", "out")}
        # Every check is a register by ``last`` (the output check, the last, is made in END, a
        # cycle before it). Read from ``acc`` through its compare in the ``last`` cycle, it ran
        # on into the engine's verdict and its ``start`` copies (a routed ECP5 critical path of
        # ``default``'s top, 13.1 ns).
        m.d.comb += self.bad.eq(sum(flags.values()) != 0)

        # The check of the product a step leaves, made in the next step's load cycle (or
        # the last cycle) from registers: a compare is never behind the adder.
        def over_limit(limit):
            return over | (acc > limit)

        out_over = over_limit(Mux(cmd.obuf, cfg.out_depth // 2, cfg.out_depth))
        pccols = Signal(W)
        m.d.comb += pccols.eq(shift_add(cmd.pc, cfg.cols))
        checks = [
            lambda: self.scw.eq(acc),
            lambda: self.rscw.eq(acc),
            lambda: flags["wgt"].eq(over_limit(cfg.weight_depth)),
            lambda: flags["wide"].eq(cmd.wide & over_limit(cfg.act_depth)),
            lambda: flags["act"].eq(over_limit(Mux(cmd.wide, 2 * cfg.act_depth,
                                                   cfg.act_depth))),
            # ``pc * cols`` pixels must cover ``ho * wo``; a dealt tile is a pixel split.
            lambda: flags["pc"].eq((cmd.psplit & ((cmd.pc == 0) | over | (pccols < acc)))
                                   | (cmd.pdeal & ~cmd.psplit)),
            lambda: flags["out"].eq(out_over),
        ]
        program = _program(cfg)
        assert len(program) == len(checks)     # one check per step, the last in END
        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.next = "L0"
            for i, (load, factor) in enumerate(program):
                with m.State(f"L{i}"):
                    if i:
                        m.d.sync += checks[i - 1]()
                    if load is None:
                        src, src_over = acc, over
                    elif load == "pc|acc":
                        src, src_over = Mux(cmd.psplit, cmd.pc, acc), ~cmd.psplit & over
                    else:
                        src, src_over = fields[load], 0
                    m.d.sync += [mcand.eq(src), mover.eq(src_over), over.eq(src_over),
                                 acc.eq(0), mult.eq(fields[factor]),
                                 count.eq(width[factor] - 1)]
                    m.next = f"M{i}"
                with m.State(f"M{i}"):
                    total = acc + Mux(mult[0], mcand, 0)
                    m.d.sync += [acc.eq(total[:W]),
                                 over.eq(over | total[W] | (mult[0] & mover)),
                                 mcand.eq(mcand << 1), mover.eq(mover | mcand[W - 1]),
                                 mult.eq(mult >> 1), count.eq(count - 1)]
                    with m.If(count == 0):
                        m.next = f"L{i + 1}" if i + 1 < len(program) else "END"
            with m.State("END"):
                m.d.sync += checks[-1]()
                m.next = "VERDICT"
            with m.State("VERDICT"):
                m.d.comb += self.last.eq(1)
                m.next = "IDLE"
        return m
