"""cgaccel.synth.outreg: registers after ECP5 block-RAM reads into the DP16KD output register."""

import copy
import json

import pytest

from cgaccel.synth.outreg import absorb_file, absorb_output_registers

CLK, RST = 2, 3


def _ff(d, q, **kw):
    params = {"CEMUX": "1 ", "CLKMUX": "CLK", "GSR": "DISABLED", "LSRMUX": "LSR",
              "REGSET": "RESET", "SRMODE": "LSR_OVER_CE"}
    conn = {"CLK": [CLK], "DI": [d], "Q": [q]}
    for k, v in kw.items():
        (conn if k in ("CLK", "LSR", "CE") else params)[k] = v
    dirs = {"CLK": "input", "LSR": "input", "CE": "input", "DI": "input", "Q": "output"}
    return {"type": "TRELLIS_FF", "parameters": params, "connections": conn,
            "port_directions": {k: dirs[k] for k in conn}}


def _lut(inputs, out):
    conn = {p: [b] for p, b in zip("ABCD", inputs, strict=False)} | {"Z": [out]}
    return {"type": "LUT4", "parameters": {"INIT": "0" * 16}, "connections": conn,
            "port_directions": {p: "output" if p == "Z" else "input" for p in conn}}


def _bram(width=18, outs=(10, 11)):
    w = format(width, "032b")
    conn = {"CLKA": [CLK], "CLKB": [CLK], "OCEA": ["1"], "OCEB": ["1"], "RSTA": ["0"],
            "RSTB": ["0"], "ADB4": [4], "DOA0": [20], **{f"DOB{i}": [b] for i, b in
                                                          enumerate(outs)}}
    dirs = {p: "output" if p.startswith("DO") else "input" for p in conn}
    return {"type": "DP16KD", "connections": conn, "port_directions": dirs,
            "parameters": {"DATA_WIDTH_A": w, "DATA_WIDTH_B": w, "REGMODE_A": "NOREG",
                           "REGMODE_B": "NOREG"}}


def _netlist(cells):
    return {"modules": {"top": {"attributes": {"top": "00000000000000000000000000000001"},
                                "ports": {"y": {"direction": "output", "bits": [40, 41]}},
                                "cells": cells,
                                "netnames": {"q0": {"bits": [30]}, "d": {"bits": [10]}}}}}


def _plain():
    # DOB0 -> ff0 -> LUT, DOB1 -> ff1 -> output port y[1]; DOA0 unused.
    return _netlist({"ram": _bram(), "ff0": _ff(10, 30), "ff1": _ff(11, 41),
                     "lut": _lut([30, 5], 40)})


def test_plain_registers_move_into_the_block_ram():
    net = _plain()
    assert absorb_output_registers(net) == {"brams": 1, "ffs": 2}
    mod = net["modules"]["top"]
    assert set(mod["cells"]) == {"ram", "lut"}
    ram = mod["cells"]["ram"]
    assert ram["parameters"]["REGMODE_B"] == "OUTREG"
    assert ram["parameters"]["REGMODE_A"] == "NOREG"          # its output drives nothing
    # The registers' loads now hang on the block RAM's outputs.
    assert mod["cells"]["lut"]["connections"]["A"] == [10]
    assert mod["ports"]["y"]["bits"] == [40, 11]
    assert mod["netnames"]["q0"]["bits"] == [10]


@pytest.mark.parametrize("cell,change", [
    ("ff0", {"LSR": [RST]}),                 # a reset the output register would not have
    ("ff0", {"LSRMUX": "1"}),
    ("ff0", {"CEMUX": "CE", "CE": [7]}),     # loads only sometimes
    ("ff0", {"CEMUX": "0"}),
    ("ff1", {"CLK": [9]}),                   # another clock
    ("ff1", {"CLKMUX": "INV"}),
    ("ff1", {"REGSET": "SET"}),              # starts at 1
])
def test_registers_that_differ_stay(cell, change):
    net = _plain()
    ff = net["modules"]["top"]["cells"][cell]
    for key, value in change.items():
        if key in ("LSR", "CE", "CLK"):
            ff["connections"][key] = value
            ff["port_directions"][key] = "input"
        else:
            ff["parameters"][key] = value
    before = copy.deepcopy(net)
    assert absorb_output_registers(net) == {"brams": 0, "ffs": 0}
    assert net == before


def test_enables_tied_on_count_as_loading_every_cycle():
    for change in ({"CEMUX": "CE", "CE": ["1"]}, {"CEMUX": "INV", "CE": ["0"]},
                   {"CEMUX": "1 ", "CE": [7]}, {"LSRMUX": "0", "LSR": [RST]},
                   {"LSR": ["0"]}):
        net = _plain()
        ff = net["modules"]["top"]["cells"]["ff0"]
        for key, value in change.items():
            (ff["connections"] if key in ("CE", "LSR") else ff["parameters"])[key] = value
        assert absorb_output_registers(net) == {"brams": 1, "ffs": 2}, change


def test_registers_under_one_enable_move_with_it():
    # Both registers load under the same net: the output register takes it as ``OCE``.
    net = _plain()
    cells = net["modules"]["top"]["cells"]
    for ff in (cells["ff0"], cells["ff1"]):
        ff["parameters"]["CEMUX"] = "CE"
        ff["connections"]["CE"] = [7]
        ff["port_directions"]["CE"] = "input"
    both = copy.deepcopy(net)
    assert absorb_output_registers(net) == {"brams": 1, "ffs": 2}
    ram = net["modules"]["top"]["cells"]["ram"]
    assert ram["parameters"]["REGMODE_B"] == "OUTREG"
    assert ram["connections"]["OCEB"] == [7]
    assert ram["connections"]["OCEA"] == ["1"]
    # Two different enables, or one inverted, cannot share the output register's.
    for ff, change in (("ff1", {"CE": [8]}), ("ff0", {"CEMUX": "INV"})):
        net = copy.deepcopy(both)
        reg = net["modules"]["top"]["cells"][ff]
        for key, value in change.items():
            (reg["connections"] if key == "CE" else reg["parameters"])[key] = value
        before = copy.deepcopy(net)
        assert absorb_output_registers(net) == {"brams": 0, "ffs": 0}, change
        assert net == before


def test_a_port_with_other_loads_or_the_wide_mode_stays():
    # DOB0 also feeds a LUT directly: the whole port keeps its registers.
    net = _netlist({"ram": _bram(), "ff0": _ff(10, 30), "ff1": _ff(11, 31),
                    "lut": _lut([10, 31], 40)})
    before = copy.deepcopy(net)
    assert absorb_output_registers(net) == {"brams": 0, "ffs": 0}
    assert net == before
    # The 36-bit mode spreads one read over both ports: left alone.
    net = _netlist({"ram": _bram(width=36), "ff0": _ff(10, 30), "ff1": _ff(11, 31)})
    assert absorb_output_registers(net) == {"brams": 0, "ffs": 0}
    # A reset wired to the port, or its output enable driven: left alone.
    for port, bits in (("RSTB", [RST]), ("OCEB", [7])):
        net = _plain()
        net["modules"]["top"]["cells"]["ram"]["connections"][port] = bits
        assert absorb_output_registers(net) == {"brams": 0, "ffs": 0}


def test_absorb_file_rewrites_the_netlist(tmp_path):
    path = tmp_path / "n.json"
    path.write_text(json.dumps(_plain()))
    assert absorb_file(path, "top") == {"brams": 1, "ffs": 2}
    assert json.loads(path.read_text())["modules"]["top"]["cells"]["ram"]["parameters"][
        "REGMODE_B"] == "OUTREG"
