"""The board's system clock from the ECP5 PLL (cgaccel.synth.pll, BoardTop(clock_mhz=...))."""

import re

import pytest
from amaranth.back.verilog import convert

from cgaccel.config import preset
from cgaccel.synth.board import BOARDS, BoardTop
from cgaccel.synth.pll import OUT_MHZ, PFD_MHZ, VCO_MHZ, ecp5_pll_params


def test_dividers_of_the_usual_clocks():
    # ecppll -i 25 -o 50 gives these dividers.
    p = ecp5_pll_params(25, 50)
    assert (p.clki_div, p.clkfb_div, p.clkop_div, p.out_mhz, p.vco_mhz) == (1, 2, 12, 50, 600)
    assert p.clkop_cphase == 6
    p = ecp5_pll_params(25, 62.5)
    assert (p.clki_div, p.clkfb_div, p.out_mhz) == (2, 5, 62.5)


def _nearest(fin, fout):
    """The nearest output any divider setting in range gives (brute force)."""
    outs = [fin * fb / ki for ki in range(1, 129) for fb in range(1, 81)
            if PFD_MHZ[0] <= fin / ki <= PFD_MHZ[1] and OUT_MHZ[0] <= fin * fb / ki <= OUT_MHZ[1]
            and any(VCO_MHZ[0] <= fin * fb / ki * od <= VCO_MHZ[1] for od in range(1, 129))]
    return min(outs, key=lambda f: abs(f - fout))


@pytest.mark.parametrize("fin", [12, 25, 100])
def test_every_setting_is_in_range_and_nearest(fin):
    for fout in [10, 13.3, 33.333, 40, 50, 66.67, 75, 99.5, 150, 400]:
        nearest = _nearest(fin, fout)
        if abs(nearest - fout) > 0.01 * fout:
            with pytest.raises(ValueError, match="within 1%"):
                ecp5_pll_params(fin, fout)
            continue
        p = ecp5_pll_params(fin, fout)
        assert PFD_MHZ[0] <= fin / p.clki_div <= PFD_MHZ[1]
        assert VCO_MHZ[0] <= p.vco_mhz <= VCO_MHZ[1]
        assert p.out_mhz == fin * p.clkfb_div / p.clki_div
        assert abs(p.out_mhz - fout) == pytest.approx(abs(nearest - fout))


def test_unreachable_clocks_are_refused():
    with pytest.raises(ValueError, match="PLL output frequency must be 10-400 MHz, not 500"):
        ecp5_pll_params(25, 500)
    # 12 MHz in: the PFD allows reference dividers 1-3, so the outputs are multiples of 4 or
    # 6 MHz, and the lowest of at least 10 MHz is 12.
    with pytest.raises(ValueError, match=r"PLL output frequency must be reachable from 12 MHz "
                                         r"within 1%, not 10.5 \(nearest 12 MHz\)"):
        ecp5_pll_params(12, 10.5)
    with pytest.raises(ValueError, match="PLL output frequency must be a positive number of "
                                         "MHz, not True"):
        ecp5_pll_params(25, True)


def _module_text(verilog, name):
    m = re.search(rf"\n  {name} #\((.*?)\n  \);", verilog, re.S)
    assert m, f"no {name} instance"
    return m.group(1)


def test_board_design_runs_on_the_pll():
    board = BOARDS["ulx3s-85f"]
    dut = BoardTop(preset("small"), board, clock_mhz=50, dram="ram", global_reset=True)
    assert dut.clock_mhz == 50 and dut.pll.out_mhz == 50
    assert dut.divisor == round(50e6 / 115200)
    text = convert(dut, name="b")
    pll = _module_text(text, "EHXPLLL")
    for param, value in [("CLKI_DIV", 1), ("CLKFB_DIV", 2), ("CLKOP_DIV", 12),
                         ("CLKOP_CPHASE", 6)]:
        assert f".{param}(32'd{value})" in pll
    assert '.FEEDBK_PATH("CLKOP")' in pll
    assert re.search(r"\.CLKI\(clk_25mhz\)", pll) and re.search(r"\.LOCK\((\w+)\)", pll)
    # The oscillator pin reaches the PLL only: every register runs on its output.
    assert re.findall(r"\(clk_25mhz\)", text) == ["(clk_25mhz)"]
    assert "posedge clk_25mhz" not in text and "posedge clk)" in text
    # On the oscillator's own frequency there is no PLL, and the design simulates as before.
    plain = BoardTop(preset("small"), board, clock_mhz=25.0)
    assert plain.pll is None and plain.clock_mhz == 25
    assert "EHXPLLL" not in convert(plain, name="b")


def test_pll_clock_is_refused_where_it_cannot_be():
    with pytest.raises(ValueError, match="Clock must be the 12 MHz oscillator of icebreaker, "
                                         "which has no PLL here, not 30"):
        BoardTop(preset("small"), BOARDS["icebreaker"], clock_mhz=30)
    with pytest.raises(ValueError, match=r"Clock must be at most 25 MHz with dram='sdram' \(the "
                                         r"read capture's half-cycle budget, docs/synth.md\), "
                                         r"not 50"):
        BoardTop(preset("small"), BOARDS["ulx3s-85f"], clock_mhz=50)
    # A slower clock than the oscillator's is allowed with the SDRAM.
    slow = BoardTop(preset("small"), BOARDS["ulx3s-85f"], clock_mhz=20)
    assert slow.sdram_port is not None and "EHXPLLL" in convert(slow, name="b")
    assert slow._sdram.beats.timing == BOARDS["ulx3s-85f"].sdram.cycles(20)
    # With on-chip RAM as DRAM nothing limits the clock but the design's timing.
    dut = BoardTop(preset("small"), BOARDS["ulx3s-85f"], clock_mhz=62.5, dram="ram")
    assert dut.clock_mhz == 62.5 and "EHXPLLL" in convert(dut, name="b")
    with pytest.raises(ValueError, match=r"Baud rate must be at most 2500000 for the 10 MHz "
                                         r"clock of ulx3s-85f, not 3000000"):
        BoardTop(preset("small"), BOARDS["ulx3s-85f"], clock_mhz=10, baud=3_000_000)
