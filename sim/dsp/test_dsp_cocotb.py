"""pytest entries of the DSP benches: the MULT18X18D model, and blocks with instantiated DSPs
against their inferred form (``tb_mult18x18d.py``, ``tb_equiv.py``)."""

import json
from pathlib import Path

import pytest
from amaranth.lib.wiring import In

from cgaccel.engine.multiply import Primitives
from cgaccel.engine.output_unit import OutputUnit
from cgaccel.engine.pe import MacColumn
from cgaccel.rtl import to_verilog
from cgaccel.simulate import run_cocotb
from cgaccel.synth.models import model_sources

HERE = Path(__file__).resolve().parent
BUILD = HERE.parents[1] / "build" / "sim" / "dsp"

MODEL_VARIANTS = {
    "bypassed": {},
    "output": {"REG_OUTPUT_CLK": "CLK0"},
    "all_registers": {f"REG_{r}_CLK": "CLK0"
                      for r in ("INPUTA", "INPUTB", "INPUTC", "PIPELINE", "OUTPUT")},
    "mixed_controls_async": {
        "REG_INPUTA_CLK": "CLK1", "REG_INPUTA_CE": "CE1", "REG_INPUTA_RST": "RST2",
        "REG_INPUTB_CLK": "CLK2", "REG_INPUTB_CE": "CE3",
        "REG_PIPELINE_CLK": "CLK3", "REG_PIPELINE_CE": "CE2", "REG_PIPELINE_RST": "RST1",
        "REG_OUTPUT_CLK": "CLK0", "REG_OUTPUT_RST": "RST3", "RESETMODE": "ASYNC"},
}


def _bits(port, bus, n):
    return ", ".join(f".{port}{k}({bus}[{k}])" for k in range(n))


def model_top(params):
    """One MULT18X18D with ``params``; vector ports for the bench."""
    plist = ", ".join(f'.{k}("{v}")' for k, v in params.items())
    return f"""`timescale 1ns/1ps
module dsp_top(input clk, input [3:0] ce, input [3:0] rst, input [17:0] a, input [17:0] b,
               input [17:0] c, input signeda, input signedb, output [35:0] p,
               output signedp, output [17:0] roa, output [17:0] rob, output [17:0] roc);
    MULT18X18D #({plist}) dsp (
        {_bits("A", "a", 18)}, {_bits("B", "b", 18)}, {_bits("C", "c", 18)},
        .SIGNEDA(signeda), .SIGNEDB(signedb), .SOURCEA(1'b0), .SOURCEB(1'b0),
        .CLK0(clk), .CLK1(clk), .CLK2(clk), .CLK3(clk),
        {_bits("CE", "ce", 4)}, {_bits("RST", "rst", 4)},
        {_bits("P", "p", 36)}, .SIGNEDP(signedp),
        {_bits("ROA", "roa", 18)}, {_bits("ROB", "rob", 18)}, {_bits("ROC", "roc", 18)});
endmodule
"""


@pytest.mark.parametrize("variant", sorted(MODEL_VARIANTS))
def test_mult18x18d_model(variant):
    build = BUILD / "model" / variant
    build.mkdir(parents=True, exist_ok=True)
    top = build / "dsp_top.v"
    top.write_text(model_top(MODEL_VARIANTS[variant]))
    run_cocotb([top, *model_sources()], "dsp_top", "tb_mult18x18d", build, sim="icarus",
               test_dir=HERE, extra_env={"DSP_PARAMS": json.dumps(MODEL_VARIANTS[variant])})


def _ports(component):
    ins, outs = [], []
    for path, member, value in component.signature.flatten(component):
        name = "__".join(str(p) for p in path)
        (ins if member.flow == In else outs).append([name, len(value)])
    return ins, outs


def equivalence_top(make, name):
    """Verilog of both forms of ``make()`` and a top that runs them on the same inputs."""
    ref, dsp = make(), make()
    ref_v = to_verilog(ref, f"{name}_ref")
    dsp_v = to_verilog(dsp, f"{name}_dsp", Primitives("ecp5"))
    assert "MULT18X18D" not in ref_v and "MULT18X18D" in dsp_v
    ins, outs = _ports(ref)
    decl = [f"input [{w - 1}:0] {n}" for n, w in ins]
    decl += [f"output [{w - 1}:0] {f}_{n}" for n, w in outs for f in ("ref", "dsp")]
    conn = ", ".join(f".{n}({n})" for n, _w in ins)
    inst = "\n".join(
        f"    {name}_{f} {f} (.clk(clk), .rst(rst), {conn}, "
        + ", ".join(f".{n}({f}_{n})" for n, _w in outs) + ");" for f in ("ref", "dsp"))
    top = (f"`timescale 1ns/1ps\nmodule {name}_eq(input clk, input rst,\n    "
           + ",\n    ".join(decl) + ");\n" + inst + "\nendmodule\n")
    return ref_v, dsp_v, top, ins, outs


EQUIV = {
    "mac_column": (lambda: MacColumn(8, 8, 8, 32, 3), ["o_sum"]),
    "output_unit": (lambda: OutputUnit(8, 32, 12), []),
}


@pytest.mark.parametrize("block", sorted(EQUIV))
def test_instantiated_dsps_match_the_inferred_form(block):
    make, busy = EQUIV[block]
    build = BUILD / "equiv" / block
    build.mkdir(parents=True, exist_ok=True)
    ref_v, dsp_v, top, ins, outs = equivalence_top(make, block)
    files = []
    for suffix, text in (("ref", ref_v), ("dsp", dsp_v), ("eq", top)):
        path = build / f"{block}_{suffix}.v"
        path.write_text(text)
        files.append(path)
    spec = {"inputs": ins, "outputs": outs, "busy_outputs": busy, "cycles": 3000}
    run_cocotb([*files, *model_sources()], f"{block}_eq", "tb_equiv", build, sim="icarus",
               test_dir=HERE, extra_env={"DSP_EQUIV": json.dumps(spec)})
