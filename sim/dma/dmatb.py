"""Shared cocotb testbench pieces for the DMA engines: parameters, clock/reset, DRAM models with
injectable error responses, pause generators, command driver, AXI channel monitors.

Imported by the cocotb test modules ``tb_dma_read`` and ``tb_dma_write`` (not by pytest).
"""

import itertools
import json
import logging
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge
from cocotbext.axi import AxiRamRead, AxiRamWrite, AxiResp

RAM_SIZE = 1 << 16     # every command of the random tests lies below this
BOUNDARY = 4096


def params():
    """Engine parameters written by the pytest entry into ``DMA_PARAMS``."""
    return json.loads(os.environ["DMA_PARAMS"])


def pause_gen(kind, rng):
    """Pause pattern for cocotbext-axi channels (True = stall this cycle)."""
    if kind == "none":
        return itertools.repeat(False)
    if kind == "random":
        return iter(lambda: rng.random() < 0.35, None)
    if kind == "bursty":
        return itertools.cycle([False] * 5 + [True] * 3)
    raise ValueError(kind)


def inject_errors(model, channel, field, bad):
    """Make ``model`` (AxiRamRead/AxiRamWrite) answer ``bad`` regions with an error response.

    ``bad`` is a list of ``(start, end, resp)``: any access overlapping ``[start, end)`` raises
    inside the model (which then answers SLVERR and, for writes, leaves those bytes alone); the
    response is then rewritten to ``resp`` (SLVERR or DECERR) on its way to the bus.
    """
    pending = []
    orig_access = model._read if channel == "r" else model._write

    async def access(address, arg):
        length = arg if isinstance(arg, int) else len(arg)
        for lo, hi, resp in bad:
            if address < hi and lo < address + length:
                pending.append(resp)
                raise OSError("injected DRAM error")
        return await orig_access(address, arg)

    if channel == "r":
        model._read = access
        ch = model.r_channel
    else:
        model._write = access
        ch = model.b_channel
    orig_send = ch.send

    async def send(txn):
        if int(getattr(txn, field)) == AxiResp.SLVERR and pending:
            setattr(txn, field, pending[-1])
            pending.clear()
        await orig_send(txn)

    ch.send = send


class TBBase:
    """Clock, reset and command stream driver of a DMA engine toplevel."""

    def __init__(self, dut, seed=1):
        self.dut = dut
        self.p = params()
        self.nbytes = self.p["data_width"] // 8
        self.rng = random.Random(seed)
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        dut.cmd__valid.value = 0
        dut.cmd__payload.value = 0
        dut.abort.value = 0
        dut.counter_clear.value = 0
        self.done = 0
        self.error_done = 0
        cocotb.start_soon(self._watch_done())

    async def reset(self):
        self.dut.rst.value = 1
        for _ in range(3):
            await RisingEdge(self.dut.clk)
        await FallingEdge(self.dut.clk)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)

    async def _watch_done(self):
        # Sampled just before the rising edge that acts on the pulse (all drivers here change
        # signals on the falling edge, cocotbext-axi on the rising edge).
        while True:
            await FallingEdge(self.dut.clk)
            await ReadOnly()
            if self.dut.done.value:
                if self.dut.error.value:
                    self.error_done += 1
                else:
                    self.done += 1

    def cmd_value(self, addr, length):
        return addr | length << self.p["addr_width"]

    async def send_cmds(self, cmds, max_gap=0, limit=400000):
        """Drive ``cmds`` (addr, length) on the command stream, with random idle gaps; fail if a
        command waits more than ``limit`` cycles."""
        dut = self.dut
        for addr, length in cmds:
            gap = self.rng.randint(0, max_gap) if max_gap else 0
            for _ in range(gap):
                await FallingEdge(dut.clk)
                dut.cmd__valid.value = 0
            await FallingEdge(dut.clk)
            dut.cmd__payload.value = self.cmd_value(addr, length)
            dut.cmd__valid.value = 1
            await ReadOnly()
            waited = 0
            while not dut.cmd__ready.value:
                waited += 1
                assert waited < limit, f"command {addr:#x}+{length} not accepted (hang)"
                await FallingEdge(dut.clk)
                await ReadOnly()
        await FallingEdge(dut.clk)
        dut.cmd__valid.value = 0

    def start_cmds(self, cmds, max_gap=0):
        """Drive ``cmds`` in the background (see :meth:`stop_cmds`)."""
        self.cmd_task = cocotb.start_soon(self.send_cmds(cmds, max_gap))

    async def stop_cmds(self):
        """Stop the background command driver and idle the command stream."""
        self.cmd_task.cancel()
        await FallingEdge(self.dut.clk)
        self.dut.cmd__valid.value = 0

    async def pulse(self, name):
        await FallingEdge(self.dut.clk)
        getattr(self.dut, name).value = 1
        await FallingEdge(self.dut.clk)
        getattr(self.dut, name).value = 0

    async def wait_idle(self, limit=200000):
        """Wait until ``busy`` is low for a few cycles; fail after ``limit`` cycles (a hang)."""
        quiet = 0
        for _ in range(limit):
            await RisingEdge(self.dut.clk)
            await ReadOnly()
            quiet = quiet + 1 if not self.dut.busy.value else 0
            if quiet >= 4:
                return
        raise AssertionError(f"engine still busy after {limit} cycles (hang)")


class BurstMonitor:
    """Checks every address-channel handshake against the burst rules and counts bursts in
    flight (address accepted, last data/response not yet seen)."""

    def __init__(self, dut, p, prefix, end_name, log):
        self.dut = dut
        self.p = p
        self.prefix = prefix          # "ar" or "aw"
        self.end_name = end_name      # handshake signal pair that retires a burst
        self.bursts = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.data_stalls = 0     # cycles the DUT held off the subordinate's R data
        self.log = log
        cocotb.start_soon(self._run())

    def sig(self, name):
        return getattr(self.dut, f"m_axi__{name}")

    async def _run(self):
        nbytes = self.p["data_width"] // 8
        while True:
            await FallingEdge(self.dut.clk)
            await ReadOnly()
            pre = self.prefix
            if self.sig(f"{pre}valid").value and self.sig(f"{pre}ready").value:
                addr = int(self.sig(f"{pre}addr").value)
                beats = int(self.sig(f"{pre}len").value) + 1
                size = int(self.sig(f"{pre}size").value)
                assert size == nbytes.bit_length() - 1, f"{pre}size {size} is not full width"
                assert int(self.sig(f"{pre}burst").value) == 1, "burst is not INCR"
                assert int(self.sig(f"{pre}id").value) == 0
                assert addr % nbytes == 0, f"unaligned burst address {addr:#x}"
                assert beats <= self.p["max_burst"], f"burst of {beats} beats"
                end = addr + beats * nbytes
                assert addr // BOUNDARY == (end - 1) // BOUNDARY, (
                    f"burst {addr:#x}+{beats} crosses a 4 KiB boundary")
                self.bursts.append((addr, beats))
                self.in_flight += 1
            if pre == "ar" and self.sig("rvalid").value and not self.sig("rready").value:
                self.data_stalls += 1
            valid, ready, last = self.end_name
            if self.sig(valid).value and self.sig(ready).value and (
                    last is None or self.sig(last).value):
                self.in_flight -= 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            assert self.in_flight <= self.p["max_outstanding"], (
                f"{self.in_flight} {pre} bursts in flight, limit {self.p['max_outstanding']}")


def quiet(model):
    """cocotbext-axi logs every burst at INFO: too slow and too long for thousands of bursts."""
    for name in ("log",):
        getattr(model, name).setLevel(logging.WARNING)
    for ch in ("ar_channel", "r_channel", "aw_channel", "w_channel", "b_channel"):
        if hasattr(model, ch):
            getattr(model, ch).log.setLevel(logging.WARNING)


def make_read_ram(bus, dut, bad=()):
    ram = AxiRamRead(bus, dut.clk, dut.rst, size=RAM_SIZE)
    quiet(ram)
    inject_errors(ram, "r", "rresp", list(bad))
    return ram


def make_write_ram(bus, dut, bad=()):
    ram = AxiRamWrite(bus, dut.clk, dut.rst, size=RAM_SIZE)
    quiet(ram)
    inject_errors(ram, "b", "bresp", list(bad))
    return ram


def set_pauses(channels, kind, rng):
    for ch in channels:
        ch.set_pause_generator(pause_gen(kind, rng))


def random_cmds(rng, n, nbytes, max_len=600, long_every=12, limit=RAM_SIZE):
    """``n`` random (addr, length) commands below ``limit``: every alignment, short and long,
    some across 4 KiB boundaries."""
    cmds = []
    for i in range(n):
        if i % long_every == long_every - 1:
            length = rng.randint(BOUNDARY // 2, 2 * BOUNDARY + nbytes)
            page = rng.randrange(1, limit // BOUNDARY - 3)
            addr = page * BOUNDARY - rng.randint(1, BOUNDARY // 2)
        else:
            length = rng.choice([1, 2, 3, nbytes - 1, nbytes, nbytes + 1,
                                 rng.randint(1, 4 * nbytes), rng.randint(1, max_len)])
            length = max(1, length)
            addr = rng.randrange(0, limit - length)
            if rng.random() < 0.2:   # land right before a 4 KiB boundary
                addr = rng.randrange(1, limit // BOUNDARY) * BOUNDARY - rng.randint(1, 3 * nbytes)
        cmds.append((addr, length))
    return cmds
