# amaranth: UnusedElaboratable=no
"""IntakeCheck: the engine's tile-size checks, a product bit per cycle, against the products."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from cgaccel.config import AccelConfig, preset
from cgaccel.engine.geometry import Geometry
from cgaccel.engine.intake import IntakeCheck, intake_cycles, product_bits

CONFIGS = {
    "small": preset("small"),
    "default": preset("default"),
    "three_cols": AccelConfig(rows=4, cols=3, max_channels=96, max_dim=40, act_depth=256,
                              weight_depth=128, out_depth=512, max_kernel=5),
}


def expected(cfg, c, nk):
    """The checks as products, exactly: ``(bad, scw, rscw)``."""
    kb = cfg.max_kernel.bit_length()
    r, s = c["r"] & ((1 << kb) - 1), c["s"] & ((1 << kb) - 1)
    act_lim = cfg.act_depth * (2 if c["wide"] else 1)
    out_lim = cfg.out_depth // 2 if c["obuf"] else cfg.out_depth
    outs = (c["pc"] if c["psplit"] else c["ho"] * c["wo"]) * nk
    bad = (r * s * c["cw"] * nk > cfg.weight_depth
           or (c["wide"] and c["hb"] * c["w"] > cfg.act_depth)
           or c["hb"] * c["w"] * c["cw"] > act_lim
           or outs > out_lim
           or (c["psplit"] and (c["pc"] == 0 or c["pc"] * cfg.cols < c["ho"] * c["wo"]))
           or (c["pdeal"] and not c["psplit"]))
    return int(bad), s * c["cw"], r * s * c["cw"]


def commands(cfg, rng, n):
    """Commands whose factors are at least 1 (a 0 is the field checks' to reject). Most start
    from one that fits and push one product to its limit or one step past it (the largest
    product at or under the limit and the smallest over it, for random other factors); the
    rest are random, log-uniform, mostly over several limits at once."""
    tl = Geometry(cfg).tile_layout()
    width = {k: tl.members[k] if isinstance(tl.members[k], int) else tl.members[k].width
             for k in ("kt", "r", "s", "hb", "w", "ho", "wo", "cw", "pc")}
    top = {k: (1 << v) - 1 for k, v in width.items()}
    kmax = cfg.max_kernel

    def draw(k, hi=None):
        hi = min(top[k], hi or top[k])
        return int(min(hi, max(1, round(2 ** rng.uniform(0, np.log2(hi + 1))))))

    def straddle(limit, other):
        """A factor putting ``other * factor`` at or just over ``limit``."""
        f = max(1, limit // other + int(rng.integers(0, 2)))
        return f

    out = []
    for i in range(n):
        c = dict(r=1, s=1, cw=1, hb=1, w=1, ho=1, wo=1, pc=1, kt=1, wide=0, obuf=0, psplit=0,
                 pdeal=0)
        nk = 1
        mode = i % 6
        if mode == 0:       # weight words r * s * cw * nk
            c.update(r=int(rng.integers(1, kmax + 1)), s=int(rng.integers(1, kmax + 1)),
                     cw=draw("cw"))
            nk = min(top["kt"], straddle(cfg.weight_depth, c["r"] * c["s"] * c["cw"]))
        elif mode == 1:     # activation words hb * w * cw, a wide band's plane hb * w
            c.update(wide=int(rng.random() < 0.5), cw=draw("cw"), w=draw("w"))
            lim = cfg.act_depth if (c["wide"] and rng.random() < 0.5) else \
                cfg.act_depth * (1 + c["wide"])
            c["hb"] = min(top["hb"], straddle(lim, c["w"] * c["cw"]))
        elif mode == 2:     # output words ho * wo * nk
            c.update(obuf=int(rng.random() < 0.5), wo=draw("wo"), ho=draw("ho"))
            lim = cfg.out_depth // (1 + c["obuf"])
            nk = min(top["kt"], straddle(lim, c["ho"] * c["wo"]))
        elif mode == 3:     # a pixel split: pc * nk outputs, pc * cols covering ho * wo
            c.update(psplit=1, obuf=int(rng.random() < 0.5), pdeal=int(rng.random() < 0.3),
                     wo=draw("wo"), ho=draw("ho", 64))
            pix = c["ho"] * c["wo"]
            c["pc"] = min(top["pc"], straddle(pix - 1, cfg.cols) if rng.random() < 0.5
                          else -(-pix // cfg.cols))
            nk = min(top["kt"], straddle(cfg.out_depth // (1 + c["obuf"]), c["pc"]))
            if rng.random() < 0.1:
                c["pc"] = 0
        elif mode == 4:     # a dealt tile without the pixel split
            c.update(pdeal=1)
        else:
            c = {k: draw(k) for k in width}
            c.update(wide=int(rng.random() < 0.3), obuf=int(rng.random() < 0.5),
                     psplit=int(rng.random() < 0.4), pdeal=int(rng.random() < 0.15))
            nk = draw("kt")
        out.append((c, nk))
    return out


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_checks_match_the_products(name):
    cfg = CONFIGS[name]
    dut = IntakeCheck(cfg)
    cases = commands(cfg, np.random.default_rng(7), 240)
    got = []

    async def bench(ctx):
        for c, nk in cases:
            for k, v in c.items():
                ctx.set(getattr(dut.cmd, k), v)
            ctx.set(dut.nk, nk)
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            cycles = 1
            while not ctx.get(dut.last):
                await ctx.tick()
                cycles += 1
                assert cycles <= 4 * intake_cycles(cfg), "no last"
            # The result holds from the ``last`` cycle on.
            at_last = (ctx.get(dut.bad), ctx.get(dut.scw), ctx.get(dut.rscw))
            await ctx.tick()
            after = (ctx.get(dut.bad), ctx.get(dut.scw), ctx.get(dut.rscw))
            assert at_last == after, c
            got.append((cycles, *after))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    want_bad = []
    for (c, nk), (cycles, _, scw, rscw) in zip(cases, got, strict=True):
        assert cycles == intake_cycles(cfg)
        ebad, escw, erscw = expected(cfg, c, nk)
        want_bad.append(ebad)
        if not ebad:
            assert (scw, rscw) == (escw, erscw), c
    np.testing.assert_array_equal([g[1] for g in got], want_bad)
    # Both outcomes at every limit.
    for mode in range(4):
        assert 0.2 < np.mean(want_bad[mode::6]) < 0.8, mode


def test_width_holds_every_limit_and_the_pixel_cover():
    for cfg in CONFIGS.values():
        w = product_bits(cfg)
        assert max(2 * cfg.act_depth, cfg.weight_depth, cfg.out_depth) < 1 << w
        pc = Geometry(cfg).tile_layout().members["pc"]
        pc = pc if isinstance(pc, int) else pc.width
        assert ((1 << pc) - 1) * cfg.cols < 1 << w
