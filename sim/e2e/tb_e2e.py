"""cocotb bench of the whole accelerator: the host :class:`~cgaccel.driver.Driver` runs layers on
the emitted top through cocotbext-axi models (not a pytest module; see ``test_e2e_cocotb.py``).

``AxiLiteMaster`` on ``s_axil_`` is the host's register bus, ``AxiRam`` on ``m_axi_`` is DRAM.
The bench reads its work from the JSON in ``$E2E_PARAMS``:

``config``
    AccelConfig fields of the emitted top.
``mode``
    ``"layers"``: run every case of ``cases`` (``vectors`` path, ``pause``, ``seed``, the
    tiling options ``k_tile``, ``band_rows``, ``double_out``, and ``axi_trace``: a JSON file to
    record the AXI master's handshakes in, :mod:`cgaccel.bench.axi_trace`) and compare;
    ``"errors"``: error
    statuses and recovery (on the first case); ``"handshake"``: identification and descriptor
    registers only (works without a controller). Several modes joined by ``+`` run in order in
    one simulation.
``out``
    Optional ``.npz``/``.json`` paths to write each case's ``y`` and counters to (CLI runs).
"""

import itertools
import json
import logging
import os
import random
import time

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import First, RisingEdge, Timer, with_timeout
from cocotbext.axi import AxiBus, AxiLiteBus, AxiLiteMaster, AxiRam

from cgaccel.config import AccelConfig
from cgaccel.driver import (
    LAYOUT_OPTIONS,
    AcceleratorError,
    Driver,
    HardwareMismatch,
    compile_layer,
)
from cgaccel.engine.tiling import expected_counts
from cgaccel.model.vectors import load_vectors
from cgaccel.regs import ERRORS
from cgaccel.simulate import AxiLiteRegs

POLL_CYCLES = 256


def params():
    return json.loads(os.environ["E2E_PARAMS"])


def config_from(d):
    return AccelConfig(**d)


def pause_gen(kind, rng):
    """Pause pattern for a cocotbext-axi channel (True = stall this cycle)."""
    if kind == "none":
        return None
    if kind == "random":
        return iter(lambda: rng.random() < 0.3, None)
    if kind == "bursty":
        return itertools.cycle([False] * 7 + [True] * 4)
    raise ValueError(f"pause must be none, random or bursty, not {kind!r}")


class TB:
    """Clock, reset, the two bus models and a Driver bound to them."""

    def __init__(self, dut, config, ram_size):
        self.dut = dut
        self.config = config
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil_"), dut.clk, dut.rst)
        self.ram = AxiRam(AxiBus.from_prefix(dut, "m_axi_"), dut.clk, dut.rst, size=ram_size)
        self.regs = AxiLiteRegs(self.axil)
        self.irqs = 0
        cocotb.start_soon(self._count_irqs())
        # Per-transaction INFO logs of the bus models cost more than the simulation.
        for model in (self.axil.write_if, self.axil.read_if, self.ram.write_if,
                      self.ram.read_if):
            model.log.setLevel(logging.WARNING)

    async def _count_irqs(self):
        while True:
            await RisingEdge(self.dut.irq)
            self.irqs += 1

    def driver(self, max_polls, config=None):
        return Driver(config or self.config, self.regs, self.ram, max_polls=max_polls,
                      wait=self.wait_irq)

    async def wait_irq(self):
        """Between STATUS polls: until the interrupt rises, at most POLL_CYCLES cycles (an
        irq that rose just before the wait started is caught by the next poll)."""
        await First(RisingEdge(self.dut.irq), Timer(POLL_CYCLES * 10, unit="ns"))

    def set_pause(self, kind, seed):
        rng = random.Random(seed)
        chans = [self.axil.write_if.aw_channel, self.axil.write_if.w_channel,
                 self.axil.write_if.b_channel, self.axil.read_if.ar_channel,
                 self.axil.read_if.r_channel, self.ram.write_if.aw_channel,
                 self.ram.write_if.w_channel, self.ram.write_if.b_channel,
                 self.ram.read_if.ar_channel, self.ram.read_if.r_channel]
        for ch in chans:
            gen = pause_gen(kind, rng)
            if gen is None:
                # Killing the pause coroutine leaves ``pause`` at its last value: a channel
                # caught paused would stall forever.
                ch.clear_pause_generator()
                ch.pause = False
            else:
                ch.set_pause_generator(gen)

    async def reset(self):
        self.dut.rst.value = 1
        for _ in range(4):
            await RisingEdge(self.dut.clk)
        self.dut.rst.value = 0
        for _ in range(2):
            await RisingEdge(self.dut.clk)


def tiling(case):
    """compile_layer's tiling options named in a case."""
    return {k: case[k] for k in LAYOUT_OPTIONS if k in case}


def poll_budget(config, compiled):
    """STATUS polls allowed for one layer: a generous bound on its cycles."""
    dram = compiled.load_bytes + compiled.store_bytes + compiled.cmd_len
    macs = sum(t.kt * t.ho * compiled.shape[2] * t.cmd["r"] * t.cmd["s"] * t.cmd["cw"] * 2
               for t in compiled.plan.tiles)
    cycles = 40 * dram + 4 * macs // max(1, config.cols) + 50000
    return cycles // POLL_CYCLES + 100


def ram_size_for(config, cases):
    end = 1 << 16
    for case in cases:
        c = compile_layer(config, load_vectors(case["vectors"]), **tiling(case))
        end = max(end, c.end_addr)
    return 1 << (end - 1).bit_length()


def check_counters(config, compiled, vectors, counters):
    """Counters against the golden model's gate map and the compiled transfers.

    MAC and gate counts must be exact. DRAM byte counts must be at least the bytes the commands
    move (plus the command list for reads) and at most that plus two bus beats per transfer, so
    a counter of whole AXI beats passes while a missing or repeated transfer does not.
    """
    words, skipped, opens = expected_counts(compiled.plan, vectors["gate"])
    problems = []
    want = {"macs_issued": words * config.rows, "macs_skipped": skipped * config.rows,
            "gate_open": opens}
    for name, value in want.items():
        if counters[name] != value:
            problems.append(f"{name} {counters[name]} != expected {value}")
    slack = 2 * config.axi_bytes
    n_cmds = len(compiled.commands)
    loads = sum(c.outer for c in compiled.commands if c.op == 1)
    stores = sum(c.outer for c in compiled.commands if c.op == 3)
    for name, lo, transfers in (("dram_rd_bytes", compiled.load_bytes + compiled.cmd_len,
                                 loads + n_cmds),
                                ("dram_wr_bytes", compiled.store_bytes, stores)):
        if not lo <= counters[name] <= lo + slack * transfers:
            problems.append(f"{name} {counters[name]} must be in {lo}..{lo + slack * transfers}")
    c = counters
    if not 0 < c["busy"] <= c["cycles"]:
        problems.append(f"busy {c['busy']} must be in 1..cycles ({c['cycles']})")
    if c["stall_dram"] > c["cycles"]:
        problems.append(f"stall_dram {c['stall_dram']} exceeds cycles {c['cycles']}")
    return problems


@cocotb.test()
async def run_e2e(dut):
    p = params()
    config = config_from(p["config"])
    modes = p["mode"].split("+")
    cases = p.get("cases", [])
    tb = TB(dut, config, ram_size_for(config, cases) if cases else 1 << 20)
    await tb.reset()
    for mode in modes:
        # One build serves several checks: they run one after the other on the same top.
        if mode == "handshake":
            await handshake(tb)
        elif mode == "layers":
            await layers(tb, cases, p.get("out"))
        elif mode == "errors":
            await errors(tb, cases)
        else:
            raise ValueError(f"mode must be handshake, layers or errors, not {mode!r}")


async def handshake(tb):
    drv = tb.driver(100)
    await drv.check_hardware()
    for name in ("STATUS", "ERROR", "IRQ"):
        value = await drv.read(name)
        assert value == 0, f"{name} after reset reads {value:#x}, not 0"
    wrong = tb.config.with_overrides(cols=tb.config.cols + 1)
    try:
        await tb.driver(100, wrong).check_hardware()
    except HardwareMismatch as exc:
        assert "HWCFG0" in str(exc), exc
    else:
        raise AssertionError("a driver for another configuration accepted this hardware")
    values = {"CMD_ADDR_LO": 0x12340, "CMD_ADDR_HI": 0, "CMD_LEN": 0x60,
              "Y_ADDR_LO": 0x56000, "Y_ADDR_HI": 0, "Y_LEN": 0x123, "IRQ_EN": 1}
    for name, v in values.items():
        await drv.write(name, v)
    for name, v in values.items():
        got = await drv.read(name)
        assert got == v, f"{name} reads {got:#x}, wrote {v:#x}"


async def axi_monitor(dut, events):
    """Record every handshake on the AXI4 master (``cgaccel.bench.axi_trace``)."""
    cycle = 0
    while True:
        await RisingEdge(dut.clk)
        cycle += 1
        if dut.m_axi__arvalid.value and dut.m_axi__arready.value:
            events.append((cycle, "AR", int(dut.m_axi__araddr.value),
                           int(dut.m_axi__arlen.value)))
        if dut.m_axi__rvalid.value and dut.m_axi__rready.value:
            events.append((cycle, "R", 0, 0))
        if dut.m_axi__awvalid.value and dut.m_axi__awready.value:
            events.append((cycle, "AW", int(dut.m_axi__awaddr.value),
                           int(dut.m_axi__awlen.value)))
        if dut.m_axi__bvalid.value and dut.m_axi__bready.value:
            events.append((cycle, "B", 0, 0))


async def layers(tb, cases, out):
    failures = []
    results = {}
    for n, case in enumerate(cases):
        name = case["name"]
        vec = load_vectors(case["vectors"])
        compiled = compile_layer(tb.config, vec, **tiling(case))
        tb.set_pause(case.get("pause", "none"), case.get("seed", n))
        drv = tb.driver(poll_budget(tb.config, compiled))
        t0 = time.monotonic()
        tb.dut._log.info(f"case {name}: {len(compiled.plan.tiles)} tiles, "
                         f"{len(compiled.commands)} commands, pause {case.get('pause')}")
        irqs = tb.irqs
        events = []
        monitor = cocotb.start_soon(axi_monitor(tb.dut, events)) if case.get("axi_trace") \
            else None
        try:
            # A hung bus never returns from a register access: bound the case in sim time too.
            run = await with_timeout(drv.run_compiled(compiled),
                                     2 * poll_budget(tb.config, compiled) * POLL_CYCLES * 10,
                                     "ns")
        except Exception as exc:  # noqa: BLE001 - reported per case below
            failures.append(f"{name}: {type(exc).__name__}: {exc}")
            tb.dut._log.error(f"case {name}: {type(exc).__name__}: {exc}")
            if monitor is not None:
                monitor.cancel()
            await with_timeout(drv.soft_reset(), 100000, "ns")
            continue
        if monitor is not None:
            monitor.cancel()
            with open(case["axi_trace"], "w") as f:
                json.dump(events, f)
        tb.dut._log.info(f"case {name}: {run.cycles} cycles, {time.monotonic() - t0:.1f} s")
        results[name] = run
        if tb.irqs != irqs + 1:
            failures.append(f"{name}: irq rose {tb.irqs - irqs} times, not once")
        bad = np.flatnonzero(run.y.ravel() != vec["y"].ravel())
        if bad.size:
            idx = np.unravel_index(bad[:5], vec["y"].shape)
            first = [(tuple(int(a[i]) for a in idx), int(run.y[tuple(a[i] for a in idx)]),
                      int(vec["y"][tuple(a[i] for a in idx)])) for i in range(len(idx[0]))]
            failures.append(f"{name}: {bad.size} of {vec['y'].size} outputs differ, first "
                            f"(k, oy, ox, got, want): {first}")
        failures += [f"{name}: {msg}" for msg in check_counters(tb.config, compiled, vec,
                                                                run.counters)]
    if out:
        write_results(out, results, failures)
    assert not failures, "\n".join(failures)
    # The summary above carries detail; this pins y bit for bit with numpy's own report.
    for case in cases:
        np.testing.assert_array_equal(results[case["name"]].y,
                                      load_vectors(case["vectors"])["y"])


def write_results(out, results, failures):
    arrays = {}
    report = {"failures": failures}
    for name, run in results.items():
        arrays[f"{name}.y"] = run.y
        report[name] = {"counters": run.counters, "cycles": run.cycles, "polls": run.polls}
    if out.get("npz"):
        with open(out["npz"], "wb") as f:
            np.savez_compressed(f, **arrays)
    if out.get("json"):
        with open(out["json"], "w") as f:
            json.dump(report, f, indent=2, sort_keys=True)


async def errors(tb, cases):
    """Error statuses the host must see, and recovery with a soft reset."""
    tb.set_pause("none", 0)
    case = cases[0]
    vec = load_vectors(case["vectors"])
    compiled = compile_layer(tb.config, vec)
    # An error must be reported within the time the (small) layer itself takes.
    drv = tb.driver(min(100, poll_budget(tb.config, compiled)))

    log = tb.dut._log
    log.info("errors: store outside the output window")
    # A store that leaves the output window by one byte.
    short = compile_layer(tb.config, vec)
    short.y_len -= 1
    await expect_error(drv, short, "out_of_range")
    log.info("errors: misaligned CMD_LEN")
    # A command list length that is not a multiple of 32 bytes.
    await drv.load(compiled)
    for reg, value in (("CMD_ADDR_LO", compiled.cmd_addr), ("CMD_ADDR_HI", 0),
                       ("CMD_LEN", compiled.cmd_len - 4), ("Y_ADDR_LO", compiled.y_addr),
                       ("Y_ADDR_HI", 0), ("Y_LEN", compiled.y_len)):
        await drv.write(reg, value)
    await drv.write("CTRL", 1)
    code, _ = await drv.wait_done()
    assert code == ERRORS["misaligned"], f"misaligned CMD_LEN gave error {code}"
    await drv.soft_reset()
    status = await drv.read("STATUS")
    assert status == 0, f"STATUS after soft reset is {status:#x}, not 0"
    log.info("errors: a good layer after the errors")
    # A good layer still runs after the errors.
    run = await drv.run_compiled(compiled)
    np.testing.assert_array_equal(run.y, vec["y"])


async def expect_error(drv, compiled, name):
    try:
        await drv.run_compiled(compiled)
    except AcceleratorError as exc:
        assert exc.name == name, f"error {exc.name}, expected {name}"
    else:
        raise AssertionError(f"layer ran without the expected {name} error")
    await drv.soft_reset()
