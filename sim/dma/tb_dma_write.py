"""cocotb bench of ``cgaccel.dma.WriteDMA`` against a cocotbext-axi AxiRamWrite.

Every test compares the whole memory image with a Python model, so a byte written outside a
commanded region, or a wrong strobe, fails. Parameters come from ``DMA_PARAMS``.
"""

import itertools
import os

import cocotb
from cocotb.simtime import get_sim_time
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge
from cocotbext.axi import AxiResp, AxiWriteBus
from dmatb import (
    RAM_SIZE,
    BurstMonitor,
    TBBase,
    make_write_ram,
    pause_gen,
    random_cmds,
    set_pauses,
)

SEED = int(os.environ.get("DMA_SEED", "1"))
N_RANDOM = int(os.environ.get("DMA_N", "16"))


class TB(TBBase):
    def __init__(self, dut, seed=SEED, bad=()):
        super().__init__(dut, seed)
        self.ram = make_write_ram(AxiWriteBus.from_prefix(dut, "m_axi_"), dut, bad)
        self.image = bytearray(self.rng.randbytes(RAM_SIZE))
        self.ram.write(0, bytes(self.image))
        self.mon = BurstMonitor(dut, self.p, "aw", ("bvalid", "bready", None), dut._log)
        self.in_pause = itertools.repeat(False)
        self.sent_beats = 0
        self.source_task = None
        dut.i_stream__valid.value = 0
        dut.i_stream__payload.value = 0

    def set_backpressure(self, kind):
        set_pauses([self.ram.aw_channel, self.ram.w_channel, self.ram.b_channel], kind,
                   self.rng)

    def set_idle(self, kind):
        self.in_pause = pause_gen(kind, self.rng)

    def payloads(self, cmds):
        """Random bytes for each command, and the beats that carry them (tails padded with
        garbage the engine must ignore)."""
        nb = self.nbytes
        beats, datas = [], []
        for _, length in cmds:
            payload = self.rng.randbytes(length)
            datas.append(payload)
            padded = payload + self.rng.randbytes(-length % nb)
            beats += [int.from_bytes(padded[i:i + nb], "little")
                      for i in range(0, len(padded), nb)]
        return beats, datas

    async def _source(self, beats):
        dut = self.dut
        for beat in beats:
            await FallingEdge(dut.clk)
            while next(self.in_pause):
                dut.i_stream__valid.value = 0
                await FallingEdge(dut.clk)
            dut.i_stream__payload.value = beat
            dut.i_stream__valid.value = 1
            await ReadOnly()
            while not dut.i_stream__ready.value:
                await FallingEdge(dut.clk)
                await ReadOnly()
            self.sent_beats += 1
        await FallingEdge(dut.clk)
        dut.i_stream__valid.value = 0

    def start(self, cmds):
        """Start the command and data drivers; return the payloads written."""
        beats, datas = self.payloads(cmds)
        self.source_task = cocotb.start_soon(self._source(beats))
        self.start_cmds(cmds)
        return datas

    async def stop_source(self):
        self.source_task.cancel()
        await FallingEdge(self.dut.clk)
        self.dut.i_stream__valid.value = 0

    def apply(self, cmds, datas):
        for (addr, length), payload in zip(cmds, datas, strict=True):
            for i in range(length):
                self.image[(addr + i) % RAM_SIZE] = payload[i]

    async def wait_done(self, n, limit=400000):
        for _ in range(limit):
            await RisingEdge(self.dut.clk)
            if self.done >= n:
                return
        raise AssertionError(f"only {self.done} of {n} commands completed (hang)")

    def check_image(self):
        got = self.ram.read(0, RAM_SIZE)
        if got != bytes(self.image):
            bad = [i for i in range(RAM_SIZE) if got[i] != self.image[i]]
            raise AssertionError(f"{len(bad)} bytes differ, first at {bad[0]:#x}: "
                                 f"{got[bad[0]]:#04x} != {self.image[bad[0]]:#04x}")

    def check_bursts_inside(self, cmds):
        nb = self.nbytes
        covers = [(a // nb * nb, -(-(a + n) // nb) * nb) for a, n in cmds]
        for addr, beats in self.mon.bursts:
            end = addr + beats * nb
            assert any(lo <= addr and end <= hi for lo, hi in covers), (
                f"burst {addr:#x}+{beats} beats outside every command")


@cocotb.test(timeout_time=3, timeout_unit="ms")
@cocotb.parametrize(idle=["none", "random"], backpressure=["none", "random"])
async def run_test_random(dut, idle, backpressure):
    """Random lengths/alignments back to back; whole memory image checked byte-exact."""
    tb = TB(dut)
    tb.set_idle(idle)
    tb.set_backpressure(backpressure)
    await tb.reset()
    cmds = random_cmds(tb.rng, N_RANDOM, tb.nbytes)
    datas = tb.start(cmds)
    await tb.wait_done(len(cmds))
    await tb.wait_idle()
    tb.apply(cmds, datas)
    tb.check_image()
    tb.check_bursts_inside(cmds)
    assert tb.mon.in_flight == 0
    assert tb.done == len(cmds) and tb.error_done == 0 and int(dut.error.value) == 0
    assert tb.sent_beats == sum(-(-n // tb.nbytes) for _, n in cmds)
    assert int(dut.bytes_written.value) == sum(n for _, n in cmds)
    await tb.pulse("counter_clear")
    await ReadOnly()
    assert int(dut.bytes_written.value) == 0
    dut._log.info("%d commands, %d bytes, %d bursts, max %d in flight", len(cmds),
                  sum(n for _, n in cmds), len(tb.mon.bursts), tb.mon.max_in_flight)


@cocotb.test(timeout_time=3, timeout_unit="ms")
async def run_test_4k_and_top(dut):
    """Long commands across 4 KiB boundaries, one byte writes, the top of the address space."""
    tb = TB(dut)
    tb.set_idle("bursty")
    tb.set_backpressure("bursty")
    await tb.reset()
    top = 1 << tb.p["addr_width"]
    cmds = [(4096 - 1, 4096 + 2), (3 * 4096 - 5, 2 * 4096 + 10), (8192 + 3, 1),
            (top - 37, 37), (5 * 4096 + 1, 1), (6 * 4096 - 2, 2)]
    datas = tb.start(cmds)
    await tb.wait_done(len(cmds))
    await tb.wait_idle()
    tb.apply(cmds, datas)
    tb.check_image()
    tb.check_bursts_inside(cmds)


@cocotb.test(timeout_time=3, timeout_unit="ms")
async def run_test_descriptor_errors(dut):
    """Zero length, too long, beyond the address space: error, no burst, no input consumed,
    memory untouched; abort recovers."""
    tb = TB(dut)
    await tb.reset()
    top = 1 << tb.p["addr_width"]
    cases = [((100, 0), 3), ((0, (1 << 24) + 1), 4), ((top - 10, 11), 5)]
    dut.i_stream__valid.value = 1
    for n, ((addr, length), code) in enumerate(cases, start=1):
        await tb.send_cmds([(addr, length)])
        await tb.wait_idle(1000)
        assert int(dut.error.value) == 1
        assert int(dut.error_code.value) == code, f"{addr:#x}+{length}"
        assert tb.error_done == n
        assert not dut.cmd__ready.value and not dut.i_stream__ready.value
        await tb.pulse("abort")
        await tb.wait_idle(1000)
        assert int(dut.error.value) == 0
    await FallingEdge(dut.clk)
    dut.i_stream__valid.value = 0
    assert not tb.mon.bursts, "a burst was issued for a bad descriptor"
    tb.check_image()
    cmds = [(0x777, 100)]
    datas = tb.start(cmds)
    await tb.wait_done(1)
    tb.apply(cmds, datas)
    tb.check_image()


@cocotb.test(timeout_time=3, timeout_unit="ms")
@cocotb.parametrize(resp=[AxiResp.SLVERR, AxiResp.DECERR], backpressure=["none", "random"])
async def run_test_bus_error(dut, resp, backpressure):
    """An error response mid-command: sticky code, drained, no hang, nothing written outside the
    commands (every byte is its old or its new value), abort then a clean command works."""
    bad_at = 0x5000 + 24
    tb = TB(dut, bad=[(bad_at, bad_at + 1, resp)])
    tb.set_idle("random")
    tb.set_backpressure(backpressure)
    await tb.reset()
    cmds = [(0x1003, 300), (0x4F00, 2000), (0x7000, 500)]
    old = bytes(tb.image)
    datas = tb.start(cmds)
    await tb.wait_idle()
    assert tb.error_done == 1
    assert int(dut.error.value) == 1
    assert int(dut.error_code.value) == {AxiResp.SLVERR: 1, AxiResp.DECERR: 2}[resp]
    assert tb.mon.in_flight == 0, "bursts left in flight"
    tb.check_bursts_inside(cmds[:2])
    got = tb.ram.read(0, RAM_SIZE)
    new = bytearray(old)
    tb.apply(cmds, datas)
    new = bytes(tb.image)
    inside = set()
    for addr, length in cmds:
        inside.update(range(addr, addr + length))
    for i in range(RAM_SIZE):
        if i in inside:
            assert got[i] in (old[i], new[i]), f"byte {i:#x} is neither old nor new"
        else:
            assert got[i] == old[i], f"byte {i:#x} outside every command was written"
    assert got[bad_at] == old[bad_at]
    assert tb.done <= 1
    await tb.stop_source()
    await tb.stop_cmds()
    await tb.pulse("abort")
    await tb.wait_idle(1000)
    assert int(dut.error.value) == 0
    tb.image = bytearray(got)
    cmds = [(0x2001, 777)]
    datas = tb.start(cmds)
    await tb.wait_done(tb.done + 1)
    tb.apply(cmds, datas)
    tb.check_image()


@cocotb.test(timeout_time=3, timeout_unit="ms")
async def run_test_abort(dut):
    """Abort in the middle of a long command under backpressure: drains, writes only inside the
    command, then works again."""
    tb = TB(dut)
    tb.set_idle("random")
    tb.set_backpressure("random")
    await tb.reset()
    old = bytes(tb.image)
    cmds = [(0x123, 12000)]
    datas = tb.start(cmds)
    for _ in range(400):
        await RisingEdge(dut.clk)
    await tb.stop_source()
    await tb.stop_cmds()
    await tb.pulse("abort")
    await tb.wait_idle()
    assert tb.mon.in_flight == 0 and tb.done == 0 and int(dut.error.value) == 0
    assert tb.mon.bursts, "abort came before any burst"
    got = tb.ram.read(0, RAM_SIZE)
    tb.apply(cmds, datas)
    for i in range(RAM_SIZE):
        assert got[i] in (old[i], tb.image[i]), f"byte {i:#x} is neither old nor new"
    tb.image = bytearray(got)
    cmds = [(0x801, 333)]
    datas = tb.start(cmds)
    await tb.wait_done(1)
    tb.apply(cmds, datas)
    tb.check_image()


@cocotb.test(timeout_time=3, timeout_unit="ms")
async def run_test_throughput(dut):
    """No pauses anywhere: one long aligned command, then 32 short back-to-back commands.
    Memory checked; the cycles taken are logged (a figure, not a pass/fail target)."""
    tb = TB(dut)
    await tb.reset()
    long_cmd = [(0x2000, 8192)]
    short = [(0x8000 + 96 * i + i % tb.nbytes, 64) for i in range(32)]
    for name, cmds in (("long", long_cmd), ("short", short)):
        done0 = tb.done
        t0 = get_sim_time("ns")
        datas = tb.start(cmds)
        await tb.wait_done(done0 + len(cmds))
        cycles = round((get_sim_time("ns") - t0) / 10)
        tb.apply(cmds, datas)
        tb.check_image()
        nbytes = sum(n for _, n in cmds)
        dut._log.info("throughput %s: %d commands, %d bytes in %d cycles: %.2f bytes/cycle "
                      "(%.2f of the %d-byte bus)", name, len(cmds), nbytes, cycles,
                      nbytes / cycles, nbytes / cycles / tb.nbytes, tb.nbytes)
