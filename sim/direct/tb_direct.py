"""cocotb bench of the ``host="mmio"`` top (:class:`cgaccel.direct.DirectTop`): the host
:class:`~cgaccel.direct_driver.DirectDriver` runs layers through an ``AxiLiteMaster`` on the emitted
Verilog (not a pytest module; see ``test_direct_cocotb.py``).

``$DIRECT_PARAMS`` (JSON): ``config`` (AccelConfig fields) and ``cases`` (``name``, ``vectors``
path, ``pause``: ``none``, ``random`` or ``bursty`` stalls on every AXI4-Lite channel,
``seed``, and the tiling options of :func:`cgaccel.driver.compile_layer`) and optionally
``out`` (``{"npz": path, "json": path}``: each case's ``y`` and counters, for ``cgaccel run``).
"""

import itertools
import json
import logging
import os
import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge, with_timeout
from cocotbext.axi import AxiLiteBus, AxiLiteMaster

from cgaccel.config import AccelConfig
from cgaccel.direct_driver import DirectDriver
from cgaccel.driver import LAYOUT_OPTIONS, compile_layer
from cgaccel.engine.tiling import expected_counts
from cgaccel.model.vectors import load_vectors
from cgaccel.regs import direct_register_map
from cgaccel.simulate import AxiLiteRegs


def set_pause(master, kind, seed):
    rng = random.Random(seed)
    for ch in (master.write_if.aw_channel, master.write_if.w_channel,
               master.write_if.b_channel, master.read_if.ar_channel,
               master.read_if.r_channel):
        if kind == "random":
            ch.set_pause_generator(iter(lambda: rng.random() < 0.3, None))
        elif kind == "bursty":
            ch.set_pause_generator(itertools.cycle([False] * 7 + [True] * 4))
        elif kind == "none":
            # Killing the pause coroutine leaves ``pause`` at its last value.
            ch.clear_pause_generator()
            ch.pause = False
        else:
            raise ValueError(f"pause must be none, random or bursty, not {kind!r}")


def check(config, compiled, vec, run):
    """Problems with one case's result: ``y`` against the golden model's, the counters against
    the plan's MAC and gate counts."""
    problems = []
    bad = np.flatnonzero(run.y.ravel() != vec["y"].ravel())
    if bad.size:
        problems.append(f"{bad.size} of {vec['y'].size} outputs differ")
    words, skipped, opens = expected_counts(compiled.plan, vec["gate"])
    want = {"macs_issued": words * config.rows, "macs_skipped": skipped * config.rows,
            "gate_open": opens}
    problems += [f"{k} {run.counters[k]} != expected {v}" for k, v in want.items()
                 if run.counters[k] != v]
    if not 0 < run.counters["busy"] <= run.counters["cycles"]:
        problems.append(f"busy {run.counters['busy']} must be in 1..{run.counters['cycles']}")
    return problems


@cocotb.test()
async def run_layers(dut):
    p = json.loads(os.environ["DIRECT_PARAMS"])
    config = AccelConfig(**p["config"])
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    master = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil_"), dut.clk, dut.rst)
    for model in (master.write_if, master.read_if):
        model.log.setLevel(logging.WARNING)
    dut.rst.value = 1
    await ClockCycles(dut.clk, 4)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    regs = AxiLiteRegs(master)
    reg = {r.name: r.offset for r in direct_register_map(config)}

    # A write-back read with nothing requested is refused, not waited for.
    resp = await master.read(reg["RD_DATA"], 4)
    assert int(resp.resp) == 2, f"RD_DATA with no read pending answered {resp.resp!r}"

    failures, results = [], {}
    for case in p["cases"]:
        name = case["name"]
        vec = load_vectors(case["vectors"])
        compiled = compile_layer(config, vec, **{k: case[k] for k in LAYOUT_OPTIONS
                                                 if k in case})
        set_pause(master, case.get("pause", "none"), case.get("seed", 0))
        drv = DirectDriver(config, regs, max_polls=100)
        try:
            # A hung bus never returns from a register access: bound the case in sim time.
            run = await with_timeout(drv.run_compiled(compiled), 1, "sec")
        except Exception as exc:  # noqa: BLE001 - reported per case below
            failures.append(f"{name}: {type(exc).__name__}: {exc}")
            continue
        dut._log.info(f"case {name}: {run.cycles} cycles, counters {run.counters}")
        results[name] = run
        failures += [f"{name}: {msg}" for msg in check(config, compiled, vec, run)]
    if p.get("out"):
        write_results(p["out"], results, failures)
    assert not failures, "\n".join(failures)
    for case in p["cases"]:
        np.testing.assert_array_equal(results[case["name"]].y,
                                      load_vectors(case["vectors"])["y"])


def write_results(out, results, failures):
    """``y`` per case (``<name>.y``) and a JSON report, as the DMA top's bench writes them."""
    report = {"failures": failures}
    for name, run in results.items():
        report[name] = {"counters": run.counters, "cycles": run.cycles, "polls": run.polls}
    if out.get("npz"):
        with open(out["npz"], "wb") as f:
            np.savez_compressed(f, **{f"{name}.y": run.y for name, run in results.items()})
    if out.get("json"):
        with open(out["json"], "w") as f:
            json.dump(report, f, indent=2, sort_keys=True)
