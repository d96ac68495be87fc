"""cocotb bench: a block's inferred form and its form with instantiated DSPs, cycle for cycle.

The toplevel (written by ``test_dsp_cocotb.py``) holds both forms on the same inputs and
brings out each output twice, ``ref_<name>`` and ``dsp_<name>``. ``DSP_EQUIV`` lists the inputs
and outputs as ``[name, width]``. Every cycle every input gets a new value (lane bytes often at
their extremes) and the reset is pulsed now and then; both forms must agree on every output
at every clock edge, and the outputs must change (so the check compares real products).
"""

import json
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

SPEC = json.loads(os.environ["DSP_EQUIV"])
EXTREMES = (0x00, 0x01, 0x7F, 0x80, 0xFF)


def stimulus(rng, width):
    value = rng.getrandbits(width)
    if rng.random() < 0.4:
        for k in range(0, width, 8):
            if rng.random() < 0.5:
                value &= ~(0xFF << k)
                value |= rng.choice(EXTREMES) << k
        value &= (1 << width) - 1
    return value


@cocotb.test()
async def outputs_agree_every_cycle(dut):
    rng = random.Random(int(os.environ.get("DSP_SEED", "1")))
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    for name, _width in SPEC["inputs"]:
        getattr(dut, name).value = 0
    seen = {name: set() for name, _w in SPEC["outputs"]}
    for cycle in range(SPEC["cycles"]):
        await RisingEdge(dut.clk)
        await ReadOnly()
        for name, _width in SPEC["outputs"]:
            ref = int(getattr(dut, f"ref_{name}").value)
            dsp = int(getattr(dut, f"dsp_{name}").value)
            assert ref == dsp, f"cycle {cycle}: {name} inferred {ref:#x}, with DSPs {dsp:#x}"
            seen[name].add(ref)
        await FallingEdge(dut.clk)
        dut.rst.value = 1 if cycle < 2 or rng.random() < 0.02 else 0
        for name, width in SPEC["inputs"]:
            getattr(dut, name).value = stimulus(rng, width)
    for name in SPEC["busy_outputs"]:
        assert len(seen[name]) > SPEC["cycles"] // 4, f"{name} barely changed: {len(seen[name])}"
