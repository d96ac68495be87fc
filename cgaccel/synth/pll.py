"""The board's system clock from an ECP5 PLL (``EHXPLLL``).

A board's oscillator is slower than the accelerator can run (the ULX3S's 25 MHz against the
57-71 MHz that `default`'s board top routes at, ``docs/synth.md``), so the board design can
clock everything from the PLL's primary output instead. The divider search is that of
nextpnr's ``ecppll`` tool: reference divider, feedback divider and output divider with the
phase-frequency detector at 3.125-400 MHz and the VCO at 400-800 MHz (Lattice TN1263), the
primary output as its own feedback (``FEEDBK_PATH = "CLKOP"``), so

    f_out = f_in * CLKFB_DIV / CLKI_DIV,    f_vco = f_out * CLKOP_DIV.

The primary output's coarse phase is half its period in VCO cycles, as ``ecppll`` sets it.
Not checked on silicon here (no board on the development machine): nextpnr places it, times
the output clock and the bitstream packs, which is what the flow can show.
"""

from dataclasses import dataclass

from amaranth.hdl import Const, Instance

__all__ = ["PllParams", "ecp5_pll_params", "ecp5_pll"]

PFD_MHZ = (3.125, 400.0)
VCO_MHZ = (400.0, 800.0)
OUT_MHZ = (10.0, 400.0)
# A requested clock the dividers miss by more than this is refused rather than rounded.
TOLERANCE = 0.01


@dataclass(frozen=True)
class PllParams:
    """Dividers of one ``EHXPLLL`` configuration and the clocks they give (MHz)."""

    in_mhz: float
    clki_div: int
    clkfb_div: int
    clkop_div: int

    @property
    def out_mhz(self):
        return self.in_mhz * self.clkfb_div / self.clki_div

    @property
    def vco_mhz(self):
        return self.out_mhz * self.clkop_div

    @property
    def clkop_cphase(self):
        return self.clkop_div // 2

    def as_dict(self):
        return {"in_mhz": self.in_mhz, "out_mhz": round(self.out_mhz, 6),
                "vco_mhz": round(self.vco_mhz, 6), "clki_div": self.clki_div,
                "clkfb_div": self.clkfb_div, "clkop_div": self.clkop_div}


def ecp5_pll_params(in_mhz, out_mhz):
    """Dividers that make ``out_mhz`` from ``in_mhz`` (nearest first, then the VCO nearest 600 MHz).

    Raises ``ValueError`` when the output is outside the PLL's range or no divider setting
    comes within 1% of it.
    """
    for name, value in (("PLL input", in_mhz), ("PLL output", out_mhz)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ValueError(f"{name} frequency must be a positive number of MHz, "
                             f"not {value!r}")
    if not OUT_MHZ[0] <= out_mhz <= OUT_MHZ[1]:
        raise ValueError(f"PLL output frequency must be {OUT_MHZ[0]:g}-{OUT_MHZ[1]:g} MHz, "
                         f"not {out_mhz:g}")
    best = None
    for clki_div in range(1, 129):
        pfd = in_mhz / clki_div
        if not PFD_MHZ[0] <= pfd <= PFD_MHZ[1]:
            continue
        for clkfb_div in range(1, 81):
            fout = pfd * clkfb_div
            if not OUT_MHZ[0] <= fout <= OUT_MHZ[1]:
                continue
            for clkop_div in range(1, 129):
                vco = fout * clkop_div
                if not VCO_MHZ[0] <= vco <= VCO_MHZ[1]:
                    continue
                # Among equal outputs, the VCO nearest the middle of its range (as ecppll).
                key = (abs(fout - out_mhz), abs(vco - sum(VCO_MHZ) / 2))
                if best is None or key < best[0]:
                    best = key, PllParams(in_mhz, clki_div, clkfb_div, clkop_div)
    if best is None or best[0][0] > TOLERANCE * out_mhz:
        near = "" if best is None else f" (nearest {best[1].out_mhz:g} MHz)"
        raise ValueError(f"PLL output frequency must be reachable from {in_mhz:g} MHz within "
                         f"1%, not {out_mhz:g}{near}")
    return best[1]


def ecp5_pll(params, clk_in, clk_out, locked):
    """The ``EHXPLLL`` instance of ``params``: ``clk_in`` in, ``clk_out`` and ``locked`` out.

    An ``Instance``: the design that holds it can be synthesized, not simulated by Amaranth.
    """
    return Instance(
        "EHXPLLL",
        a_FREQUENCY_PIN_CLKI=f"{params.in_mhz:g}",
        a_FREQUENCY_PIN_CLKOP=f"{params.out_mhz:.6g}",
        a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1",
        a_MFG_GMCREF_SEL="2",
        p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
        p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_OUTDIVIDER_MUXB="DIVB",
        p_OUTDIVIDER_MUXC="DIVC", p_OUTDIVIDER_MUXD="DIVD",
        p_CLKI_DIV=params.clki_div, p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=params.clkop_div,
        p_CLKOP_CPHASE=params.clkop_cphase, p_CLKOP_FPHASE=0, p_FEEDBK_PATH="CLKOP",
        p_CLKFB_DIV=params.clkfb_div,
        i_RST=Const(0, 1), i_STDBY=Const(0, 1), i_CLKI=clk_in, i_CLKFB=clk_out,
        i_PHASESEL0=Const(0, 1), i_PHASESEL1=Const(0, 1), i_PHASEDIR=Const(1, 1),
        i_PHASESTEP=Const(1, 1), i_PHASELOADREG=Const(1, 1), i_PLLWAKESYNC=Const(0, 1),
        i_ENCLKOP=Const(0, 1), o_CLKOP=clk_out, o_LOCK=locked)
