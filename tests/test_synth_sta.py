"""The static timing of nextpnr's SDF (cgaccel.synth.sta) on hand-written SDF files.

The arrival times of the small design below are worked out by hand in the comments; the real
flow's SDF is checked against nextpnr's own critical path by the flow tests in
``tests/test_synth.py`` (``_check_report``).
"""

import json
import re

import pytest

from cgaccel.synth import flow, sta

# Delays in ps; the max of each (min:typ:max) triple counts.
#   A = cnt_TRELLIS_FF_Q    clk-to-Q 525; checks DI (setup 0), CE (setup max(120, 130) = 130)
#   B = cnt_TRELLIS_FF_Q_1  clk-to-Q 525; checks DI (setup 0), LSR (setup 424)
#   C = en_TRELLIS_FF_Q     clk-to-Q 500; no check of its own (CLK is a clock because the other
#                           TRELLIS_FFs check against it)
#   M = mac.prod0$115       (IOPATH (posedge CLK0) P0 ...): clock-to-out 1000, no checks
#   R = fifo.storage.0.3$DPRAM_COMB0, a LUT-RAM: checks WRE (setup 392), WD (setup 0) on WCK
#   L1, L2 LUTs; K0 -> K1 a carry (FCO -> FCI)
#
#   L1/A  = A/Q 525 + 300                              =  825
#   L2/D  = max(A/Q 525 + 100, C/Q 500 + 200)          =  700  (from C)
#   L2/F  = 700 + 236                                  =  936
#   L1/B  = 936 + 50                                   =  986
#   L1/F  = max(L1/A 825 + 236, L1/B 986 + 200)        = 1186  (reconvergent: via L2)
#   A/DI  = 1186 + 400 = 1586, + setup 0               -> 1586
#   A/CE  = 1186 + 150 = 1336, + setup 130             -> 1466
#   K0/A  = 525 + 200 = 725; K0/FCO = 725 + 300 = 1025; K1/FCI = 1025; K1/F = 1025 + 140 = 1165
#   B/DI  = 1165 + 350 = 1515, + setup 0               -> 1515
#   R/WRE = C/Q 500 + 1000 = 1500, + setup 392         -> 1892  (the worst)
#   R/WD  = M/P0 1000 + 800 = 1800, + setup 0          -> 1800
#   B/LSR is reached from a pin only: not timed.
P = "inner.inner."
A, B, C = f"{P}cnt_TRELLIS_FF_Q", f"{P}cnt_TRELLIS_FF_Q_1", f"{P}en_TRELLIS_FF_Q"
L1, L2 = f"{P}cnt_TRELLIS_FF_Q_DI_LUT4_Z", f"{P}cnt_TRELLIS_FF_Q_DI_LUT4_Z_B_LUT4_Z"
K0, K1 = (f"{P}cnt_TRELLIS_FF_Q_1_DI_CCU2C_S0$CCU2_COMB{i}" for i in (0, 1))
R, M = f"{P}fifo.storage.0.3$DPRAM_COMB0", f"{P}mac.prod0$115"
GBUF, IO = "$gbuf$clk$TRELLIS_IO_IN", "rst$tr_io"
WIRES = [
    (GBUF, "CLKO", A, "CLK", "0:0:0"),
    (GBUF, "CLKO", B, "CLK", "0:0:0"),
    (GBUF, "CLKO", C, "CLK", "0:0:0"),
    (GBUF, "CLKO", R, "WCK", "0:0:0"),
    (GBUF, "CLKO", M, "CLK0", "0:0:0"),
    (A, "Q", L1, "A", "250:280:300"),
    (A, "Q", L2, "D", "100:100:100"),
    (C, "Q", L2, "D", "150:180:200"),
    (L2, "F", L1, "B", "50:50:50"),
    (L1, "F", A, "DI", "400:400:400"),
    (L1, "F", A, "CE", "150:150:150"),
    (A, "Q", K0, "A", "200:200:200"),
    (K0, "FCO", K1, "FCI", "0:0:0"),
    (K1, "F", B, "DI", "350:350:350"),
    (C, "Q", R, "WRE", "1000:1000:1000"),
    (M, "P0", R, "WD", "800:800:800"),
    (IO, "O", B, "LSR", "4000:4000:4000"),
]


def _esc(name):
    """SDF escapes, as nextpnr writes them."""
    return re.sub(r"([$\[\]])", r"\\\1", name)


SMALL_SDF = """(DELAYFILE
  (SDFVERSION "3.0")
  (DESIGN "top")
  (VENDOR "nextpnr")
  (DIVIDER /)
  (TIMESCALE 1ps)
  (CELL
    (CELLTYPE "top")
    (INSTANCE )
    (DELAY
      (ABSOLUTE
""" + "".join(f"        (INTERCONNECT {_esc(a)}/{pa} {_esc(b)}/{pb} ({t}) ({t}))\n"
              for a, pa, b, pb, t in WIRES) + r"""      )
    )
  )
  (CELL
    (CELLTYPE "TRELLIS_FF")
    (INSTANCE inner.inner.cnt_TRELLIS_FF_Q)
    (DELAY
      (ABSOLUTE
        (IOPATH CLK Q (430:477:525) (430:477:525))
      )
    )
    (TIMINGCHECK
      (SETUPHOLD (posedge DI) (posedge CLK) (0:0:0) (267:285:303))
      (SETUPHOLD (negedge DI) (posedge CLK) (0:0:0) (267:285:303))
      (SETUPHOLD (posedge CE) (posedge CLK) (100:110:120) (0:0:0))
      (SETUPHOLD (negedge CE) (posedge CLK) (100:115:130) (0:0:0))
    )
  )
  (CELL
    (CELLTYPE "TRELLIS_FF")
    (INSTANCE inner.inner.cnt_TRELLIS_FF_Q_1)
    (DELAY
      (ABSOLUTE
        (IOPATH CLK Q (430:477:525) (430:477:525))
      )
    )
    (TIMINGCHECK
      (SETUPHOLD (posedge DI) (posedge CLK) (0:0:0) (267:285:303))
      (SETUPHOLD (posedge LSR) (posedge CLK) (271:347:424) (0:0:0))
    )
  )
  (CELL
    (CELLTYPE "TRELLIS_FF")
    (INSTANCE inner.inner.en_TRELLIS_FF_Q)
    (DELAY
      (ABSOLUTE
        (IOPATH CLK Q (400:450:500) (400:450:500))
      )
    )
  )
  (CELL
    (CELLTYPE "MULT18X18D")
    (INSTANCE inner.inner.mac.prod0\$115)
    (DELAY
      (ABSOLUTE
        (IOPATH (posedge CLK0) P0 (900:950:1000) (900:950:1000))
      )
    )
  )
  (CELL
    (CELLTYPE "TRELLIS_COMB")
    (INSTANCE inner.inner.cnt_TRELLIS_FF_Q_DI_LUT4_Z)
    (DELAY
      (ABSOLUTE
        (IOPATH A F (200:218:236) (200:218:236))
        (IOPATH B F (150:175:200) (150:175:200))
      )
    )
  )
  (CELL
    (CELLTYPE "TRELLIS_COMB")
    (INSTANCE inner.inner.cnt_TRELLIS_FF_Q_DI_LUT4_Z_B_LUT4_Z)
    (DELAY
      (ABSOLUTE
        (IOPATH D F (200:218:236) (200:218:236))
      )
    )
  )
  (CELL
    (CELLTYPE "TRELLIS_COMB")
    (INSTANCE inner.inner.cnt_TRELLIS_FF_Q_1_DI_CCU2C_S0\$CCU2_COMB0)
    (DELAY
      (ABSOLUTE
        (IOPATH A F (200:218:236) (200:218:236))
        (IOPATH A FCO (200:250:300) (200:250:300))
      )
    )
  )
  (CELL
    (CELLTYPE "TRELLIS_COMB")
    (INSTANCE inner.inner.cnt_TRELLIS_FF_Q_1_DI_CCU2C_S0\$CCU2_COMB1)
    (DELAY
      (ABSOLUTE
        (IOPATH FCI F (100:120:140) (100:120:140))
      )
    )
  )
  (CELL
    (CELLTYPE "TRELLIS_COMB")
    (INSTANCE inner.inner.fifo.storage.0.3\$DPRAM_COMB0)
    (DELAY
      (ABSOLUTE
        (IOPATH A F (200:218:236) (200:218:236))
      )
    )
    (TIMINGCHECK
      (SETUPHOLD (posedge WRE) (posedge WCK) (254:323:392) (0:0:0))
      (SETUPHOLD (negedge WRE) (posedge WCK) (254:323:392) (0:0:0))
      (SETUPHOLD (posedge WD) (posedge WCK) (0:0:0) (202:249:297))
    )
  )
  (CELL
    (CELLTYPE "TRELLIS_IO")
    (INSTANCE rst\$tr_io)
    (DELAY
      (ABSOLUTE
        (IOPATH PAD O (300:300:300) (300:300:300))
      )
    )
  )
)
"""

@pytest.fixture
def small():
    return sta.Timing(SMALL_SDF.splitlines(keepends=True))


def test_arrivals_endpoints_and_worst_paths(small):
    assert sta.endpoints(small) == {f"{A}/DI": 1586, f"{A}/CE": 1466, f"{B}/DI": 1515,
                                    f"{R}/WRE": 1892, f"{R}/WD": 1800}
    assert small.loops == 0
    assert small.clocks == {"TRELLIS_FF": ["CLK"], "TRELLIS_COMB": ["WCK"],
                            "MULT18X18D": ["CLK0"]}
    # Reconvergent: the longer way into L1 comes from C through L2, not from A directly.
    assert sta.worst_path(small, f"{A}/DI") == [
        (f"{C}/CLK", 0), (f"{C}/Q", 500), (f"{L2}/D", 700), (f"{L2}/F", 936), (f"{L1}/B", 986),
        (f"{L1}/F", 1186), (f"{A}/DI", 1586)]
    assert small.logic_levels(f"{A}/DI") == 2
    # Through the carry chain: two cell arcs, the FCO -> FCI hop a zero-delay wire.
    assert small.worst_path(f"{B}/DI") == [
        (f"{A}/CLK", 0), (f"{A}/Q", 525), (f"{K0}/A", 725), (f"{K0}/FCO", 1025),
        (f"{K1}/FCI", 1025), (f"{K1}/F", 1165), (f"{B}/DI", 1515)]
    assert small.logic_levels(f"{B}/DI") == 2
    assert small.worst_path(f"{R}/WD") == [(f"{M}/CLK0", 0), (f"{M}/P0", 1000),
                                           (f"{R}/WD", 1800)]
    assert small.setup_of(f"{A}/CE") == 130 and small.setup_of(f"{B}/LSR") == 424
    with pytest.raises(KeyError, match="No timed path into"):
        small.worst_path(f"{B}/LSR")                    # from a pin: not timed


def test_summary_counts_and_groups(small):
    s = sta.summary(small, 650, top=5, target_mhz=600)      # 1538 ps and 1667 ps
    assert (s["endpoints"], s["failing"], s["failing_at_target"]) == (5, 3, 2)
    assert s["worst_ns"] == 1.892 and s["worst_to"] == f"{R}/WRE"
    assert s["worst_from"] == f"{C}/Q" and s["worst_levels"] == 0
    assert s["groups_total"] == 2
    assert s["groups"] == [
        {"group": "fifo.storage", "endpoints": 2, "failing": 2, "failing_at_target": 2,
         "worst_ns": 1.892, "from": "en", "logic_levels": 0},
        {"group": "cnt", "endpoints": 3, "failing": 1, "failing_at_target": 0,
         "worst_ns": 1.586, "from": "en", "logic_levels": 2},
    ]
    assert sta.summary(small, 100, top=1)["groups"][0]["failing_at_target"] is None
    assert sta.summary(small, 100)["failing"] == 0
    with pytest.raises(ValueError, match="Frequency must be a positive number of MHz, not 0"):
        sta.summary(small, 0)
    with pytest.raises(ValueError, match="Group count must be a non-negative integer, not -1"):
        sta.summary(small, 100, top=-1)


def test_blocks_add_up_failing_endpoints(small):
    # At 650 MHz (1538 ps): R/WRE and R/WD (no logic level) and A/DI (2 levels) fail.
    assert sta.blocks(small, 650) == [
        {"block": "fifo", "endpoints": 2, "failing": 2, "failing_shallow": 2,
         "worst_ns": 1.892},
        {"block": "cnt", "endpoints": 3, "failing": 1, "failing_shallow": 1,
         "worst_ns": 1.586},
    ]
    # Deeper names, a stricter "shallow", and a clock every endpoint misses (1429 ps).
    rows = sta.blocks(small, 700, depth=2, shallow=1)
    assert [(r["block"], r["failing"], r["failing_shallow"]) for r in rows] == [
        ("cnt", 3, 0), ("fifo.storage", 2, 2)]
    assert sta.blocks(small, 100) == []             # nothing fails: no row
    assert sta.format_blocks(sta.blocks(small, 650), 650).splitlines() == [
        " fail@650 <=4 levels   ends worst ns  block",
        "        2          2      2    1.892  fifo",
        "        1          1      3    1.586  cnt",
        "        3          3      5           (blocks listed)",
    ]
    with pytest.raises(ValueError, match="Block depth must be a positive integer, not 0"):
        sta.blocks(small, 650, depth=0)
    with pytest.raises(ValueError, match="Shallow level count must be a non-negative integer"):
        sta.blocks(small, 650, shallow=-1)
    with pytest.raises(ValueError, match="Frequency must be a positive number of MHz"):
        sta.blocks(small, -5)


def test_nets_on_the_failing_paths(small):
    # At 650 MHz (1538 ps) R/WRE (C/Q -> R/WRE, 1000 ps), R/WD (M/P0 -> R/WD, 800) and A/DI
    # (C/Q -> L2/D 200, L2/F -> L1/B 50, L1/F -> A/DI 400) fail: C/Q's net is on two of them.
    assert small.wire_hops(f"{A}/DI") == [(f"{C}/Q", 200), (f"{L2}/F", 50), (f"{L1}/F", 400)]
    # The carry hop K0/FCO -> K1/FCI has no delay: not a wire to shorten.
    assert small.wire_hops(f"{B}/DI") == [(f"{A}/Q", 200), (f"{K1}/F", 350)]
    assert (small.fanout(f"{C}/Q"), small.fanout(f"{L1}/F"), small.fanout(f"{A}/Q")) == (2, 2, 3)
    assert sta.nets(small, 650) == [
        {"net": f"{C}/Q", "group": "en", "fanout": 2, "failing": 2, "longest_ns": 1.0},
        {"net": f"{M}/P0", "group": "mac.prod0$115", "fanout": 1, "failing": 1,
         "longest_ns": 0.8},
        {"net": f"{L1}/F", "group": "cnt", "fanout": 2, "failing": 1, "longest_ns": 0.4},
        {"net": f"{L2}/F", "group": "cnt", "fanout": 1, "failing": 1, "longest_ns": 0.05},
    ]
    assert sta.nets(small, 650, top=1)[0]["net"] == f"{C}/Q"
    assert sta.nets(small, 100) == []
    assert sta.format_nets(sta.nets(small, 650, top=2), 650).splitlines() == [
        " fail@650 fanout wire ns  net (driver pin)",
        f"        2      2   1.000  {C}/Q",
        f"        1      1   0.800  {M}/P0",
    ]
    with pytest.raises(ValueError, match="Net count must be a non-negative integer, not -2"):
        sta.nets(small, 650, top=-2)
    with pytest.raises(ValueError, match="Frequency must be a positive number of MHz"):
        sta.nets(small, 0)


def test_what_if_wires_and_clock_to_out():
    lines = SMALL_SDF.splitlines(keepends=True)
    # No wire delay: A/Q 525 -> L2 236 -> L1/B 200 = 961 into A/DI, + setup 130 at A/CE;
    # K0 300 + K1 140 after A/Q into B/DI; C/Q 500 + 392 at R/WRE; M's 1000 at R/WD.
    t = sta.Timing(lines, wire_scale=0)
    assert t.endpoints() == {f"{A}/DI": 961, f"{A}/CE": 1091, f"{B}/DI": 965,
                             f"{R}/WRE": 892, f"{R}/WD": 1000}
    # Half the wire: L1/A 525 + 150 + 236 = 911 against L2's 500 + 100 + 236 + 25 + 200 = 1061.
    assert sta.Timing(lines, wire_scale=0.5).endpoints()[f"{A}/DI"] == 1061 + 200
    # The DSP through a faster register (100 ps): R/WD 100 + 800; the rest as before.
    ends = sta.Timing(lines, clock_to_out={"MULT18X18D": 100}).endpoints()
    assert ends[f"{R}/WD"] == 900 and ends[f"{R}/WRE"] == 1892 and ends[f"{A}/DI"] == 1586
    ends = sta.Timing(lines, wire_scale=0, clock_to_out={"TRELLIS_FF": 0}).endpoints()
    assert ends == {f"{A}/DI": 436, f"{A}/CE": 566, f"{B}/DI": 440, f"{R}/WRE": 392,
                    f"{R}/WD": 1000}
    with pytest.raises(ValueError, match="Wire scale must be a non-negative number, not -1"):
        sta.Timing(lines, wire_scale=-1)
    with pytest.raises(ValueError, match="Clock-to-out of DP16KD must be a non-negative"):
        sta.Timing(lines, clock_to_out={"DP16KD": "fast"})


def test_unreadable_sdf(tmp_path):
    with pytest.raises(sta.SdfError, match="Cannot read .*none.sdf"):
        sta.load(tmp_path / "none.sdf")
    with pytest.raises(sta.SdfError, match=r"Not an SDF file \(no DELAYFILE\)"):
        sta.Timing(["{}\n"])
    with pytest.raises(sta.SdfError, match=r"No timing checks \(SETUPHOLD\) in the SDF"):
        sta.Timing(["(DELAYFILE\n", ")\n"])
    with pytest.raises(sta.SdfError, match="Unreadable INTERCONNECT"):
        sta.Timing(["(DELAYFILE\n", "(INTERCONNECT a/B)\n"])
    # The flow records why, and goes on.
    assert flow.timing_summary(tmp_path / "none.sdf", 100) == {
        "error": f"SdfError: Cannot read {tmp_path / 'none.sdf'}: No such file or directory"}


def test_combinational_loop_is_counted_not_timed():
    sdf = ["(DELAYFILE\n",
           '(CELL (CELLTYPE "FF")\n', "(INSTANCE a)\n", "(IOPATH CLK Q (1:1:1))\n",
           "(SETUPHOLD (posedge D) (posedge CLK) (5:5:5) (0:0:0))\n", ")\n",
           '(CELL (CELLTYPE "LUT")\n', "(INSTANCE l1)\n", "(IOPATH A F (1:1:1))\n",
           "(IOPATH B F (1:1:1))\n", ")\n",
           '(CELL (CELLTYPE "LUT")\n', "(INSTANCE l2)\n", "(IOPATH A F (1:1:1))\n", ")\n",
           "(INTERCONNECT a/Q l1/A (1:1:1))\n", "(INTERCONNECT l1/F l2/A (1:1:1))\n",
           "(INTERCONNECT l2/F l1/B (1:1:1))\n", "(INTERCONNECT a/Q a/D (7:7:7))\n", ")\n"]
    t = sta.Timing(sdf)
    assert t.loops == 4                              # l1/B, l1/F, l2/A, l2/F
    assert t.endpoints() == {"a/D": 1 + 7 + 5}


# Cell names from real runs: ECP5 (one engine column, block top: the design under
# ``inner.inner.``, the scan wrapper under ``inner.``, the reset top at the top) and iCE40
# (AxiRam, block top: the design under ``inner.``, the scan wrapper at the top).
ECP5_NAMES = {
    "inner.inner.free_TRELLIS_FF_Q_6": "free",
    "inner.inner.setup_fifo.storage.0.18_DO_LUT4_Z_2_D_LUT4_Z": "setup_fifo.storage",
    "inner.inner.setup_fifo.storage.0.12$RAMW_SLICE": "setup_fifo.storage",
    "inner.inner.slot_mem.0.12$DPRAM_COMB3": "slot_mem",
    "inner.inner.thr_mem.0.0": "thr_mem",
    "inner.inner.mult_mem.0.0_DOA0_TRELLIS_FF_Q_1_DI_LUT4_Z": "mult_mem",
    "inner.inner.wgt_mem.0.3_DOB4_TRELLIS_FF_Q": "wgt_mem",
    "inner.inner.d.gated_LUT4_C": "d.gated",
    "inner.inner.acc_TRELLIS_FF_Q_DI_CCU2C_S0$CCU2_COMB1": "acc",
    "inner.inner.output_unit.o6_t_TRELLIS_FF_Q_53_DI_PFUMX_Z_BLUT_LUT4_Z": "output_unit.o6_t",
    "inner.inner.g_oy_TRELLIS_FF_Q_DI_PFUMX_Z_C0_LUT4_Z_B_CCU2C_S0_1_COUT_CCU2C_CIN_S1_CCU2C_S1"
    "$CCU2_COMB1": "g_oy",
    "inner.inner.mac.t1_0_TRELLIS_FF_Q_16_DI_CCU2C_S0$CCU2_COMB0": "mac.t1_0",
    "inner.inner.mac.prod9$124": "mac.prod9$124",
    "inner.inner.$signal$282_TRELLIS_FF_Q_7": "$signal$282",
    "inner.inner.$signal$276_TRELLIS_FF_Q_2_DI_LUT4_Z_C_CCU2C_S1_A0_LUT4_Z_C_CCU2C_S0_COUT_CCU2C"
    "_CIN_COUT_CCU2C_CIN$CCU2_COMB0": "$signal$276",
    "inner.inner.port$1015$0_TRELLIS_FF_Q_217": "port$1015$0",
    "inner.inner.i_valid$169_TRELLIS_FF_Q": "i_valid$169",
    "inner.inner.output_unit.$99_TRELLIS_FF_Q": "output_unit.$99",
    "inner.inner._10__TRELLIS_FF_Q_9": "_10_",
    "inner.inner.st_past_LUT4_B": "st_past",
    "inner.inner.out_mem1.0.0_DOB15_LUT4_D": "out_mem1",
    "inner.inner.setup_fifo.w_port__data_TRELLIS_FF_Q_87_DI_CCU2C_S1_A0_LUT4_Z_D_LUT4_Z_1_D"
    "_LUT4_Z_1_D_LUT4_D": "setup_fifo.w_port__data",
    "$nextpnr_CCU2C_134$CCU2_COMB1": "$nextpnr",
    "$gbuf$clk$TRELLIS_IO_IN": "$gbuf",
    "inner.descs[0].bank_TRELLIS_FF_Q": "wrapper:descs[0].bank",
    "inner.misr_TRELLIS_FF_Q_12": "wrapper:misr",
    "sync_rst_q_TRELLIS_FF_Q": "wrapper:sync_rst_q",
    "rst$tr_io": "wrapper:rst",
}
ICE40_NAMES = {
    "inner.cur_SB_DFFESR_Q_5_D_SB_LUT4_O_LC": "cur",
    "inner.err_SB_DFFESR_Q_D_SB_LUT4_O_I2_SB_CARRY_CO$CARRY": "err",
    "inner.left_SB_DFFESR_Q_D_SB_LUT4_O_I2_SB_LUT4_O_I2_SB_CARRY_CO_CI_SB_LUT4_I3_LC": "left",
    "inner.mem.0.3_RAM": "mem",
    "inner.mem.0.3_WADDR_7_SB_LUT4_O_LC": "mem",
    "inner.lite__rready_SB_DFFSR_Q_DFFLC": "lite__rready",
    "$nextpnr_ICESTORM_LC_8": "$nextpnr",
    "$gbuf_clk$SB_IO_IN_$glb_clk": "$gbuf",
    "chain_SB_DFFSR_Q_47_DFFLC": "wrapper:chain",
    "axi__araddr_SB_DFFSR_Q_7_DFFLC": "wrapper:axi__araddr",
    "misr_SB_DFFSR_Q_3_D_SB_LUT4_O_LC": "wrapper:misr",
    "\\$2_SB_DFFSR_Q_5_D_SB_LUT4_O_LC": "wrapper:$2",
}


@pytest.mark.parametrize("names, prefix", [(ECP5_NAMES, "inner.inner."), (ICE40_NAMES, "inner.")])
def test_group_names_from_real_runs(names, prefix):
    assert {n: sta.group(n, prefix) for n in names} == names
    assert sta._design_prefix(names) == prefix
    # With a pin, and without a known prefix (every leading "inner." goes).
    assert sta.group(f"{prefix}free_TRELLIS_FF_Q_6/Q", prefix) == "free"
    assert sta.group("inner.misr_TRELLIS_FF_Q_12") == "misr"
    assert sta.group("inner.inner.engine.col1.free_TRELLIS_FF_Q[3]") == "engine.col1.free"


def test_sdf_names_are_unescaped(small):
    assert sta._pin(r"inner.inner.a\[3\]\$x/Q") == "inner.inner.a[3]$x/Q"
    assert sta._pin(r"a\/b/Q") == "a/b/Q"                 # an escaped "/" is part of the name
    assert sta._pin(r"a\\/Q") == "a\\/Q"                  # an escaped "\": "/" cuts the pin
    assert sta._pin("scan_in") == "/scan_in"              # a top-level port
    assert f"{M}/P0" in small.pins and f"{R}/WRE" in small.pins


def test_cli_prints_the_table_and_a_path(tmp_path, capsys):
    sdf = tmp_path / "routed.sdf"
    sdf.write_text(SMALL_SDF)
    assert sta.main([str(sdf), "--mhz", "650", "--top", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1:] == [
        "5 endpoints, 1 of 2 groups shown; worst 1.892 ns (528.54 MHz, 0 logic levels)",
        "3 endpoints fail at 650 MHz",
        " fail@650  ends worst ns levels  group <- worst path from",
        "        2     2    1.892      0  fifo.storage <- en",
    ]
    # A flow directory: its report.json's target is counted too.
    (tmp_path / "report.json").write_text(json.dumps({"freq_target_mhz": 600}))
    assert sta.main([str(tmp_path), "--mhz", "650", "--path", "cnt"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[2] == "3 endpoints fail at 650 MHz, 2 at the target 600 MHz"
    assert out[3] == " fail@650  fail@600  ends worst ns levels  group <- worst path from"
    assert out[5] == "        1         0     3    1.586      2  cnt <- en"
    assert out[7:] == [
        "worst path into cnt: 1.586 ns (2 logic levels), 3 endpoints in the group",
        "      ps  pin (group)",
        f"       0  {C}/CLK  (en)",
        f"     500  {C}/Q",
        f"     700  {L2}/D  (cnt)",
        f"     936  {L2}/F",
        f"     986  {L1}/B",
        f"    1186  {L1}/F",
        f"    1586  {A}/DI",
        "    1586  setup 0 ps",
    ]
    assert sta.main([str(sdf), "--mhz", "650", "--top", "0", "--blocks", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-4:] == [
        " fail@650 <=4 levels   ends worst ns  block",
        "        2          2      2    1.892  fifo.storage",
        "        1          1      3    1.586  cnt",
        "        3          3      5           (blocks listed)",
    ]
    assert sta.main([str(sdf), "--mhz", "650", "--top", "0", "--nets", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-2:] == [" fail@650 fanout wire ns  net (driver pin)",
                        f"        2      2   1.000  {C}/Q"]
    assert sta.main([str(sdf), "--nets", "-1"]) == 1
    assert "Net count must be a non-negative integer, not -1" in capsys.readouterr().err
    assert sta.main([str(sdf), "--mhz", "650", "--top", "1", "--wire-scale", "0",
                     "--clock-to-out", "MULT18X18D=0.1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("; what if wire_scale = 0.0; what if clock_to_out = "
                           "{'MULT18X18D': 100.0}")
    assert out[1] == "5 endpoints, 1 of 2 groups shown; worst 1.091 ns (916.59 MHz, 2 logic levels)"
    for bad in ("DP16KD", "=1", "DP16KD=x", "DP16KD=-1"):
        assert sta.main([str(sdf), "--clock-to-out", bad]) == 1
        assert "sta: error:" in capsys.readouterr().err
    assert sta.main([str(sdf), "--blocks", "0"]) == 1
    assert "Block depth must be a positive integer, not 0" in capsys.readouterr().err
    assert sta.main([str(sdf), "--path", "nothing"]) == 1
    assert "No timed endpoint in group 'nothing'" in capsys.readouterr().err
    assert sta.main([str(tmp_path / "none.sdf")]) == 1
    assert "sta: error: Cannot read" in capsys.readouterr().err


def test_flow_logic_bound(tmp_path):
    sdf = tmp_path / "routed.sdf"
    sdf.write_text(SMALL_SDF)
    tm = flow.timing_summary(sdf, 600)
    # With no wire delay the worst endpoint is A/CE at 1091 ps (test_what_if_...).
    assert tm["logic_bound_mhz"] == 916.59 and tm["worst_ns"] == 1.892
    rep = {"target": "ecp5-25k", "top": "block", "design": "Top", "fmax_mhz": 528.54,
           "freq_target_mhz": 600, "timing_met": False, "seconds": 1.0,
           "files": {"bitstream": "x.bit"}, "util_pct": {},
           **{k: 0 for k in ("luts", "ffs", "dsps", "brams", "io")}, "timing": tm}
    assert flow.format_summary(rep).splitlines()[-2] == (
        "  2 of 5 endpoints fail at 600 MHz (0 at 150); worst groups: fifo.storage, cnt; "
        "916.59 MHz with no wire delay")


def test_flow_blocks_at_the_second_frequency(monkeypatch):
    monkeypatch.setattr(flow, "STA_MHZ", 650)
    tm = flow.timing_summary(sta.Timing(SMALL_SDF.splitlines(keepends=True)), 600)
    assert tm["failing_at_650_mhz"] == 3
    assert tm["blocks"] == [
        {"block": "fifo", "endpoints": 2, "failing_at_650_mhz": 2, "failing_shallow": 2,
         "worst_ns": 1.892},
        {"block": "cnt", "endpoints": 3, "failing_at_650_mhz": 1, "failing_shallow": 1,
         "worst_ns": 1.586},
    ]
    rep = {"target": "ecp5-25k", "top": "block", "design": "Top", "fmax_mhz": 528.54,
           "freq_target_mhz": 600, "timing_met": False, "seconds": 1.0,
           "files": {"bitstream": "x.bit"}, "util_pct": {},
           **{k: 0 for k in ("luts", "ffs", "dsps", "brams", "io")}, "timing": tm}
    assert flow.format_summary(rep).splitlines()[-2] == (
        "  failing at 650 MHz by block (of which <= 4 logic levels): fifo 2 (2), cnt 1 (1)")


def test_flow_summary_line():
    small = sta.Timing(SMALL_SDF.splitlines(keepends=True))
    tm = flow.timing_summary(small, 600)
    assert tm["endpoints"] == 5 and tm["failing_at_target"] == 2
    assert tm["failing_at_150_mhz"] == 0 and tm["worst_ns"] == 1.892
    assert [g["group"] for g in tm["groups"]] == ["fifo.storage", "cnt"]
    rep = {"target": "ecp5-25k", "top": "block", "design": "Top", "fmax_mhz": 528.54,
           "freq_target_mhz": 600, "timing_met": False, "seconds": 1.0,
           "files": {"bitstream": "x.bit"}, "util_pct": {},
           **{k: 0 for k in ("luts", "ffs", "dsps", "brams", "io")}, "timing": tm}
    # At 600 MHz (1667 ps) R/WRE and R/WD fail, through C/Q's net and M/P0's.
    assert tm["nets"] == [
        {"net": f"{C}/Q", "group": "en", "fanout": 2, "failing": 1, "longest_ns": 1.0},
        {"net": f"{M}/P0", "group": "mac.prod0$115", "fanout": 1, "failing": 1,
         "longest_ns": 0.8}]
    assert flow.format_summary(rep).splitlines()[-2:] == [
        "  2 of 5 endpoints fail at 600 MHz (0 at 150); worst groups: fifo.storage, cnt",
        "  nets on the most paths failing at 600 MHz: en on 1 (fanout 2, wire 1.0 ns), "
        "mac.prod0$115 on 1 (fanout 1, wire 0.8 ns)"]
    assert flow.timing_summary(small, 500)["nets"] == []    # nothing fails: no net
    # Nets of one group are named once, by the first (most used) of them.
    rep["timing"] = {**tm, "nets": [{**tm["nets"][0], "group": "cnt"}, tm["nets"][1],
                                    {**tm["nets"][0], "failing": 0}]}
    assert flow.format_summary(rep).splitlines()[-1] == (
        "  nets on the most paths failing at 600 MHz: cnt on 1 (fanout 2, wire 1.0 ns), "
        "mac.prod0$115 on 1 (fanout 1, wire 0.8 ns), en on 0 (fanout 2, wire 1.0 ns)")
    rep["timing"]["nets"][2]["group"] = "cnt"
    assert flow.format_summary(rep).splitlines()[-1].endswith("mac.prod0$115 on 1 (fanout 1, "
                                                              "wire 0.8 ns)")
    rep["timing"] = {"error": "SdfError: Cannot read routed.sdf"}
    assert flow.format_summary(rep).splitlines()[-1] == (
        "  no endpoint table (python -m cgaccel.synth.sta): SdfError: Cannot read routed.sdf")
