"""cocotb bench of ``cgaccel.dma.ReadDMA`` against a cocotbext-axi AxiRamRead.

Parameters come from ``DMA_PARAMS`` (see ``test_dma_cocotb.py``); ``DMA_SEED`` picks the seed.
"""

import itertools
import os

import cocotb
from cocotb.simtime import get_sim_time
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge
from cocotbext.axi import AxiReadBus, AxiResp
from dmatb import RAM_SIZE, BurstMonitor, TBBase, make_read_ram, pause_gen, random_cmds, set_pauses

SEED = int(os.environ.get("DMA_SEED", "1"))
N_RANDOM = int(os.environ.get("DMA_N", "16"))


class TB(TBBase):
    def __init__(self, dut, seed=SEED, bad=()):
        super().__init__(dut, seed)
        self.ram = make_read_ram(AxiReadBus.from_prefix(dut, "m_axi_"), dut, bad)
        self.image = self.rng.randbytes(RAM_SIZE)
        self.ram.write(0, self.image)
        self.mon = BurstMonitor(dut, self.p, "ar", ("rvalid", "rready", "rlast"), dut._log)
        self.beats = []
        self.n_last = 0
        self.out_pause = itertools.repeat(False)
        dut.o_stream__ready.value = 0
        cocotb.start_soon(self._sink())

    def set_idle(self, kind):
        set_pauses([self.ram.ar_channel, self.ram.r_channel], kind, self.rng)

    def set_backpressure(self, kind):
        self.out_pause = pause_gen(kind, self.rng)

    async def _sink(self):
        dut = self.dut
        width = self.p["data_width"]
        cbits = self.nbytes.bit_length()
        while True:
            await FallingEdge(dut.clk)
            dut.o_stream__ready.value = 0 if next(self.out_pause) else 1
            await ReadOnly()
            if dut.o_stream__valid.value and dut.o_stream__ready.value:
                v = int(dut.o_stream__payload.value)
                self.beats.append(((v & ((1 << width) - 1)).to_bytes(self.nbytes, "little"),
                                   (v >> width) & ((1 << cbits) - 1),
                                   (v >> (width + cbits)) & 1))
                self.n_last += self.beats[-1][2]

    def messages(self):
        msgs, cur = [], []
        for beat in self.beats:
            cur.append(beat)
            if beat[2]:
                msgs.append(cur)
                cur = []
        return msgs, cur

    def expected(self, addr, length):
        return bytes(self.image[(addr + i) % RAM_SIZE] for i in range(length))

    def check_message(self, beats, addr, length):
        nbytes = self.nbytes
        n = -(-length // nbytes)
        assert len(beats) == n, f"cmd {addr:#x}+{length}: {len(beats)} beats, expected {n}"
        for i, (_, count, last) in enumerate(beats):
            want = nbytes if i < n - 1 else (length - 1) % nbytes + 1
            assert count == want, f"cmd {addr:#x}+{length} beat {i}: count {count} != {want}"
            assert last == (i == n - 1)
        got = b"".join(d[:c] for d, c, _ in beats)
        assert got == self.expected(addr, length), f"cmd {addr:#x}+{length}: data mismatch"

    def check_bursts_inside(self, cmds):
        """Every burst read lies inside the beat-aligned cover of some command."""
        nb = self.nbytes
        covers = [(a // nb * nb, -(-(a + n) // nb) * nb) for a, n in cmds]
        for addr, beats in self.mon.bursts:
            end = addr + beats * nb
            assert any(lo <= addr and end <= hi for lo, hi in covers), (
                f"burst {addr:#x}+{beats} beats outside every command")

    async def wait_messages(self, n, limit=400000):
        for _ in range(limit):
            await RisingEdge(self.dut.clk)
            if self.n_last >= n:
                return
        raise AssertionError(f"only {len(self.messages()[0])} of {n} commands completed (hang)")

    def check_prefix(self, cmds):
        """What was delivered before an error/abort is a correct prefix of the command stream."""
        msgs, partial = self.messages()
        for beats, (addr, length) in zip(msgs, cmds, strict=False):
            self.check_message(beats, addr, length)
        if partial:
            addr, length = cmds[len(msgs)]
            got = b"".join(d[:c] for d, c, _ in partial)
            assert all(c == self.nbytes for _, c, _ in partial)
            assert got == self.expected(addr, length)[:len(got)]


@cocotb.test(timeout_time=3, timeout_unit="ms")
@cocotb.parametrize(idle=["none", "random"], backpressure=["none", "random"])
async def run_test_random(dut, idle, backpressure):
    """Random lengths/alignments back to back, checked byte-exact, plus counters."""
    tb = TB(dut)
    tb.set_idle(idle)
    tb.set_backpressure(backpressure)
    await tb.reset()
    cmds = random_cmds(tb.rng, N_RANDOM, tb.nbytes)
    await tb.send_cmds(cmds, max_gap=3 if idle == "random" else 0)
    await tb.wait_messages(len(cmds))
    await tb.wait_idle()
    msgs, partial = tb.messages()
    assert not partial and len(msgs) == len(cmds)
    for beats, (addr, length) in zip(msgs, cmds, strict=True):
        tb.check_message(beats, addr, length)
    tb.check_bursts_inside(cmds)
    assert tb.mon.in_flight == 0
    assert tb.done == len(cmds) and tb.error_done == 0
    assert int(dut.error.value) == 0
    assert int(dut.bytes_read.value) == sum(n for _, n in cmds)
    stall = int(dut.stall_cycles.value)
    assert stall > 0   # DRAM latency alone makes the consumer wait at each command start
    # Bursts are only issued with buffer room for all their beats: R is never held off.
    assert tb.mon.data_stalls == 0, f"rready low for {tb.mon.data_stalls} cycles of R data"
    await tb.pulse("counter_clear")
    await ReadOnly()
    assert int(dut.bytes_read.value) == 0 and int(dut.stall_cycles.value) == 0
    dut._log.info("%d commands, %d bytes, %d bursts, max %d in flight, %d stall cycles, "
                  "%d cycles with rvalid & ~rready", len(cmds), sum(n for _, n in cmds),
                  len(tb.mon.bursts), tb.mon.max_in_flight, stall, tb.mon.data_stalls)


@cocotb.test(timeout_time=3, timeout_unit="ms")
async def run_test_4k_and_top(dut):
    """Long commands across 4 KiB boundaries, and a command ending at the top of the address
    space (which is valid)."""
    tb = TB(dut)
    tb.set_idle("bursty")
    tb.set_backpressure("bursty")
    await tb.reset()
    top = 1 << tb.p["addr_width"]
    cmds = [(4096 - 1, 4096 + 2), (3 * 4096 - 5, 2 * 4096 + 10), (8192, 4096),
            (top - 37, 37), (5 * 4096 + 1, 1)]
    await tb.send_cmds(cmds)
    await tb.wait_messages(len(cmds))
    msgs, _ = tb.messages()
    for beats, (addr, length) in zip(msgs, cmds, strict=True):
        tb.check_message(beats, addr, length)
    tb.check_bursts_inside(cmds)
    crossing = [a for a, n in cmds if a // 4096 != (a + n - 1) // 4096]
    assert crossing, "the commands must span 4 KiB boundaries"


@cocotb.test(timeout_time=3, timeout_unit="ms")
async def run_test_descriptor_errors(dut):
    """Zero length, too long and beyond the address space: error, no burst, abort recovers."""
    tb = TB(dut)
    await tb.reset()
    top = 1 << tb.p["addr_width"]
    cases = [((100, 0), 3), ((0, (1 << 24) + 1), 4), ((top - 10, 11), 5), ((top - 1, 2), 5)]
    for n, ((addr, length), code) in enumerate(cases, start=1):
        await tb.send_cmds([(addr, length)])
        await tb.wait_idle(1000)
        assert int(dut.error.value) == 1
        assert int(dut.error_code.value) == code, f"{addr:#x}+{length}"
        assert tb.error_done == n
        assert not tb.mon.bursts, "a burst was issued for a bad descriptor"
        assert not dut.cmd__ready.value, "commands must be refused until abort"
        await tb.pulse("abort")
        await tb.wait_idle(1000)
        assert int(dut.error.value) == 0
    await tb.send_cmds([(17, 100)])
    await tb.wait_messages(1)
    tb.check_message(tb.messages()[0][0], 17, 100)


@cocotb.test(timeout_time=3, timeout_unit="ms")
@cocotb.parametrize(resp=[AxiResp.SLVERR, AxiResp.DECERR], backpressure=["none", "random"])
async def run_test_bus_error(dut, resp, backpressure):
    """An error response mid-command: sticky code, outstanding bursts drained, no hang, data
    delivered before it is correct, abort then a clean command works."""
    bad_at = 0x5000 + 24
    tb = TB(dut, bad=[(bad_at, bad_at + 1, resp)])
    tb.set_idle("random")
    tb.set_backpressure(backpressure)
    await tb.reset()
    cmds = [(0x1003, 300), (0x4F00, 2000), (0x7000, 500)]
    tb.start_cmds(cmds)
    await tb.wait_idle()
    assert tb.error_done == 1
    assert int(dut.error.value) == 1
    assert int(dut.error_code.value) == {AxiResp.SLVERR: 1, AxiResp.DECERR: 2}[resp]
    assert tb.mon.in_flight == 0, "bursts left in flight"
    tb.check_prefix(cmds)
    assert len(tb.messages()[0]) < 2, "the failing command must not complete"
    tb.check_bursts_inside(cmds)
    await tb.stop_cmds()
    await tb.pulse("abort")
    await tb.wait_idle(1000)
    tb.beats.clear()
    tb.n_last = 0
    assert int(dut.error.value) == 0
    await tb.send_cmds([(0x2001, 777)])
    await tb.wait_messages(1)
    tb.check_message(tb.messages()[0][0], 0x2001, 777)


@cocotb.test(timeout_time=3, timeout_unit="ms")
async def run_test_abort(dut):
    """Abort in the middle of long commands under backpressure: drains, then works again."""
    tb = TB(dut)
    tb.set_idle("random")
    tb.set_backpressure("random")
    await tb.reset()
    cmds = [(0x123, 12000)]
    await tb.send_cmds(cmds)
    for _ in range(300):
        await RisingEdge(dut.clk)
    await tb.pulse("abort")
    await tb.wait_idle()
    assert tb.mon.in_flight == 0
    assert int(dut.error.value) == 0 and tb.error_done == 0
    tb.check_prefix(cmds)
    assert len(tb.messages()[0]) == 0, "abort came too late to test anything"
    tb.beats.clear()
    tb.n_last = 0
    await tb.send_cmds([(0x801, 333)])
    await tb.wait_messages(1)
    tb.check_message(tb.messages()[0][0], 0x801, 333)


@cocotb.test(timeout_time=3, timeout_unit="ms")
async def run_test_throughput(dut):
    """No pauses anywhere: one long aligned command, then 32 short back-to-back commands.
    Data checked; the cycles taken are logged (a figure, not a pass/fail target)."""
    tb = TB(dut)
    await tb.reset()
    long_cmd = [(0x2000, 8192)]
    short = [(0x8000 + 96 * i + i % tb.nbytes, 64) for i in range(32)]
    for name, cmds in (("long", long_cmd), ("short", short)):
        tb.beats.clear()
        tb.n_last = 0
        t0 = get_sim_time("ns")
        await tb.send_cmds(cmds)
        await tb.wait_messages(len(cmds))
        cycles = round((get_sim_time("ns") - t0) / 10)
        msgs, _ = tb.messages()
        for beats, (addr, length) in zip(msgs, cmds, strict=True):
            tb.check_message(beats, addr, length)
        nbytes = sum(n for _, n in cmds)
        dut._log.info("throughput %s: %d commands, %d bytes in %d cycles: %.2f bytes/cycle "
                      "(%.2f of the %d-byte bus)", name, len(cmds), nbytes, cycles,
                      nbytes / cycles, nbytes / cycles / tb.nbytes, tb.nbytes)
