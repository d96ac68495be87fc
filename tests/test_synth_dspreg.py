"""cgaccel.synth.dspreg: operand registers into the ECP5 MULT18X18D's input registers."""

import copy
import json

import pytest

from cgaccel.synth.dspreg import absorb_file, absorb_input_registers

CLK, RST, CE = 2, 3, 7


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


def _dsp(a, b):
    """A MULT18X18D as ``cgaccel.engine.multiply`` instantiates it: output register on
    CLK0 / CE0 (tied on) / RST0, A and B from the nets ``a`` and ``b`` (bit lists, the last
    bit repeated up to 18: sign extension)."""
    conn = {"CLK0": [CLK], "CE0": ["1"], "RST0": [RST], "SIGNEDA": ["1"], "SIGNEDB": ["1"]}
    for op, bits in (("A", a), ("B", b)):
        for k in range(18):
            conn[f"{op}{k}"] = [bits[min(k, len(bits) - 1)]]
    for k in range(36):
        conn[f"P{k}"] = [100 + k]
    dirs = {p: "output" if p.startswith("P") else "input" for p in conn}
    params = {f"REG_{r}_{x}": v for r in ("INPUTA", "INPUTB", "INPUTC", "PIPELINE")
              for x, v in (("CLK", "NONE"), ("CE", "CE0"), ("RST", "RST0"))}
    params.update(REG_OUTPUT_CLK="CLK0", REG_OUTPUT_CE="CE0", REG_OUTPUT_RST="RST0")
    return {"type": "MULT18X18D", "connections": conn, "port_directions": dirs,
            "parameters": params}


def _netlist(cells):
    return {"modules": {"top": {"attributes": {"top": "00000000000000000000000000000001"},
                                "ports": {"y": {"direction": "output", "bits": [40]}},
                                "cells": cells, "netnames": {}}}}


def _plain():
    # Two-bit operands a (nets 30, 31 from ffa0/ffa1) and b (32 from ffb, 0 above it).
    return _netlist({
        "dsp": _dsp([30, 31], [32, "0"]),
        "ffa0": _ff(10, 30), "ffa1": _ff(11, 31), "ffb": _ff(12, 32),
    })


def test_operand_registers_move_into_the_dsp():
    net = _plain()
    assert absorb_input_registers(net) == {"operands": 2, "ffs": 3}
    mod = net["modules"]["top"]
    assert set(mod["cells"]) == {"dsp"}
    dsp = mod["cells"]["dsp"]
    p, c = dsp["parameters"], dsp["connections"]
    for op in "AB":
        assert p[f"REG_INPUT{op}_CLK"] == "CLK0"
        assert p[f"REG_INPUT{op}_CE"] == "CE0"                 # tied on: loads every cycle
        assert c[p[f"REG_INPUT{op}_RST"]] == ["0"]             # never cleared
        assert p[f"REG_INPUT{op}_RST"] != "RST0"               # RST0 clears the output
    # The pins now take what the flip-flops took; the sign extension follows.
    assert [c[f"A{k}"] for k in range(3)] == [[10], [11], [11]]
    assert c["A17"] == [11] and c["B0"] == [12] and c["B1"] == ["0"]
    assert p["REG_INPUTC_CLK"] == "NONE" and p["REG_OUTPUT_CLK"] == "CLK0"


def test_a_register_with_other_loads_is_copied():
    net = _plain()
    net["modules"]["top"]["cells"]["lut"] = _lut([31], 40)
    assert absorb_input_registers(net) == {"operands": 2, "ffs": 2}
    cells = net["modules"]["top"]["cells"]
    assert "ffa1" in cells and cells["lut"]["connections"]["A"] == [31]
    assert cells["dsp"]["connections"]["A1"] == [11]


def test_one_enable_goes_to_a_free_ce_pin():
    net = _plain()
    cells = net["modules"]["top"]["cells"]
    for name in ("ffa0", "ffa1"):
        cells[name]["parameters"]["CEMUX"] = "CE"
        cells[name]["connections"]["CE"] = [CE]
        cells[name]["port_directions"]["CE"] = "input"
    assert absorb_input_registers(net) == {"operands": 2, "ffs": 3}
    dsp = cells["dsp"]
    pin = dsp["parameters"]["REG_INPUTA_CE"]
    assert pin != "CE0" and dsp["connections"][pin] == [CE]
    assert dsp["parameters"]["REG_INPUTB_CE"] == "CE0"


@pytest.mark.parametrize("cell,change", [
    ("ffa0", {"LSR": [RST]}),                 # a reset the input register would not have
    ("ffa0", {"CEMUX": "CE", "CE": [CE]}),    # an enable the other bit does not have
    ("ffa1", {"CLK": [9]}),                   # another clock
    ("ffa1", {"CLKMUX": "INV"}),
    ("ffa1", {"REGSET": "SET"}),              # starts at 1
])
def test_operand_a_stays_when_a_register_differs(cell, change):
    net = _plain()
    ff = net["modules"]["top"]["cells"][cell]
    for key, value in change.items():
        if key in ("LSR", "CE", "CLK"):
            ff["connections"][key] = value
            ff["port_directions"][key] = "input"
        else:
            ff["parameters"][key] = value
    assert absorb_input_registers(net) == {"operands": 1, "ffs": 1}
    dsp = net["modules"]["top"]["cells"]["dsp"]
    assert dsp["parameters"]["REG_INPUTA_CLK"] == "NONE"
    assert dsp["connections"]["A0"] == [30] and dsp["parameters"]["REG_INPUTB_CLK"] == "CLK0"


def test_operands_from_logic_or_already_registered_stay():
    net = _plain()
    cells = net["modules"]["top"]["cells"]
    cells["lut"] = _lut([5], 31)                      # A1 from a LUT, not a flip-flop
    del cells["ffa1"]
    cells["dsp"]["parameters"]["REG_INPUTB_CLK"] = "CLK0"
    before = copy.deepcopy(net)
    assert absorb_input_registers(net) == {"operands": 0, "ffs": 0}
    assert net == before


def test_absorb_file_rewrites_the_netlist(tmp_path):
    path = tmp_path / "n.json"
    path.write_text(json.dumps(_plain()))
    assert absorb_file(path, "top") == {"operands": 2, "ffs": 3}
    dsp = json.loads(path.read_text())["modules"]["top"]["cells"]["dsp"]
    assert dsp["parameters"]["REG_INPUTA_CLK"] == "CLK0"
