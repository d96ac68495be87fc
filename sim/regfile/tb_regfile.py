"""cocotb bench of ``cgaccel.regfile.RegFile`` through cocotbext-axi's AxiLiteMaster.

The toplevel is the bare register file: its hardware-side ports (``ro`` inputs, ``rw``/``w1p``
outputs, ``w1c`` set inputs) are driven and observed directly. The register map and the
constant values come from ``REGFILE_MAP`` (written by the pytest entry from ``cgaccel.regs``).
"""

import json
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge
from cocotbext.axi import AxiLiteBus, AxiLiteMaster, AxiResp

SPEC = json.loads(os.environ["REGFILE_MAP"])
REGS = SPEC["regs"]
CONSTANTS = SPEC["constants"]


class TB:
    def __init__(self, dut, seed=5):
        self.dut = dut
        self.rng = random.Random(seed)
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "bus_"), dut.clk, dut.rst)
        self.by_name = {r["name"]: r for r in REGS}
        self.ro_values = {}
        for reg in REGS:
            port = self.port(reg)
            if reg["access"] == "ro" and port is not None:
                port.value = 0
            if reg["access"] == "w1c":
                getattr(dut, reg["name"].lower() + "_set").value = 0

    def port(self, reg):
        if reg["name"] in CONSTANTS or reg["name"] in ("ID", "VERSION"):
            return None
        return getattr(self.dut, reg["name"].lower())

    async def reset(self):
        self.dut.rst.value = 1
        for _ in range(3):
            await RisingEdge(self.dut.clk)
        await FallingEdge(self.dut.clk)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)

    async def read(self, offset, expect_resp=AxiResp.OKAY):
        resp = await self.axil.read(offset, 4)
        assert resp.resp == expect_resp, f"read {offset:#x}: {resp.resp!r}"
        return int.from_bytes(resp.data, "little")

    async def write(self, offset, data, expect_resp=AxiResp.OKAY):
        resp = await self.axil.write(offset, data)
        assert resp.resp == expect_resp, f"write {offset:#x}: {resp.resp!r}"

    async def write32(self, offset, value, expect_resp=AxiResp.OKAY):
        await self.write(offset, value.to_bytes(4, "little"), expect_resp)


def expected_reset(reg):
    if reg["name"] in CONSTANTS:
        return CONSTANTS[reg["name"]]
    return reg["reset"]


@cocotb.test(timeout_time=2, timeout_unit="ms")
async def run_test_reset_values(dut):
    """Every register reads its reset value (ro inputs driven to 0) and answers OKAY."""
    tb = TB(dut)
    await tb.reset()
    for reg in REGS:
        got = await tb.read(reg["offset"])
        assert got == expected_reset(reg), f"{reg['name']}: {got:#x} != {expected_reset(reg):#x}"


@cocotb.test(timeout_time=5, timeout_unit="ms")
async def run_test_access_types(dut):
    """rw registers store and drive what is written; ro registers show their input and ignore
    writes; constants ignore writes."""
    tb = TB(dut)
    await tb.reset()
    for reg in REGS:
        off, port = reg["offset"], tb.port(reg)
        value = tb.rng.getrandbits(32)
        if reg["access"] == "rw":
            await tb.write32(off, value)
            assert await tb.read(off) == value, reg["name"]
            assert int(port.value) == value, f"{reg['name']} port"
        elif reg["access"] == "ro" and port is not None:
            await FallingEdge(dut.clk)
            port.value = value
            name = reg["name"]
            if name.endswith("_HI") and reg["offset"] >= 0x100:
                # Counter HI reads its latch: load it by reading LO first.
                await tb.read(off - 4)
            assert await tb.read(off) == value, name
            await tb.write32(off, value ^ 0xFFFFFFFF)
            if name.endswith("_HI") and reg["offset"] >= 0x100:
                await tb.read(off - 4)
            assert await tb.read(off) == value, f"{name} changed by a write"
        elif reg["access"] == "ro":
            await tb.write32(off, value)
            assert await tb.read(off) == expected_reset(reg), f"{reg['name']} changed"


@cocotb.test(timeout_time=2, timeout_unit="ms")
async def run_test_byte_strobes(dut):
    """Partial writes to rw registers change only the strobed bytes."""
    tb = TB(dut)
    await tb.reset()
    rw = [r for r in REGS if r["access"] == "rw"]
    for reg in tb.rng.sample(rw, min(6, len(rw))):
        off = reg["offset"]
        value = tb.rng.getrandbits(32)
        await tb.write32(off, value)
        for lane in range(4):
            byte = tb.rng.getrandbits(8)
            await tb.write(off + lane, bytes([byte]))
            value = (value & ~(0xFF << 8 * lane)) | byte << 8 * lane
            assert await tb.read(off) == value, f"{reg['name']} lane {lane}"
        await tb.write(off + 1, b"\x5a\xa5")
        value = (value & 0xFF0000FF) | 0xA55A << 8
        assert await tb.read(off) == value, f"{reg['name']} lanes 1-2"


@cocotb.test(timeout_time=2, timeout_unit="ms")
async def run_test_unmapped(dut):
    """Unmapped word addresses answer SLVERR on reads and writes and change nothing."""
    tb = TB(dut)
    await tb.reset()
    mapped = {r["offset"] for r in REGS}
    holes = [a for a in range(0, 1 << SPEC["addr_width"], 4) if a not in mapped]
    picks = holes[:3] + tb.rng.sample(holes, 8) + holes[-2:]
    for addr in picks:
        assert await tb.read(addr, AxiResp.SLVERR) == 0
        await tb.write32(addr, 0xFFFFFFFF, AxiResp.SLVERR)
    for reg in REGS:
        if reg["access"] in ("rw", "w1c"):
            assert await tb.read(reg["offset"]) == expected_reset(reg), reg["name"]


@cocotb.test(timeout_time=2, timeout_unit="ms")
async def run_test_w1p(dut):
    """CTRL (w1p): the written ones appear for exactly one cycle; reads give 0."""
    tb = TB(dut)
    await tb.reset()
    ctrl = tb.by_name["CTRL"]
    seen = []

    async def watch():
        while True:
            await RisingEdge(dut.clk)
            await ReadOnly()
            seen.append(int(dut.ctrl.value))

    task = cocotb.start_soon(watch())
    for value in (0b01, 0b10, 0b11):
        seen.clear()
        await tb.write32(ctrl["offset"], value)
        for _ in range(3):
            await RisingEdge(dut.clk)
        nonzero = [v for v in seen if v]
        assert nonzero == [value], f"CTRL pulses {seen}"
        assert await tb.read(ctrl["offset"]) == 0
    task.cancel()


@cocotb.test(timeout_time=2, timeout_unit="ms")
async def run_test_w1c(dut):
    """IRQ (w1c): hardware sets bits, writing 0 keeps them, writing 1 clears them; a set in the
    same cycle as the clear wins."""
    tb = TB(dut)
    await tb.reset()
    off = tb.by_name["IRQ"]["offset"]
    assert await tb.read(off) == 0
    await FallingEdge(dut.clk)
    dut.irq_set.value = 1
    await FallingEdge(dut.clk)
    dut.irq_set.value = 0
    assert int(dut.irq.value) == 1
    assert await tb.read(off) == 1
    await tb.write32(off, 0)
    assert await tb.read(off) == 1, "writing 0 cleared a w1c bit"
    await tb.write32(off, 1)
    assert await tb.read(off) == 0
    assert int(dut.irq.value) == 0
    # Set held high while the host clears: the bit must stay set.
    await FallingEdge(dut.clk)
    dut.irq_set.value = 1
    await tb.write32(off, 1)
    await FallingEdge(dut.clk)
    dut.irq_set.value = 0
    assert await tb.read(off) == 1, "a hardware set was lost to a simultaneous clear"


@cocotb.test(timeout_time=2, timeout_unit="ms")
async def run_test_counter_latch(dut):
    """Reading a counter's LO latches its HI: LO then HI is one coherent 64-bit value even if the
    counter moves in between."""
    tb = TB(dut)
    await tb.reset()
    lo, hi = tb.by_name["CYCLES_LO"], tb.by_name["CYCLES_HI"]
    await FallingEdge(dut.clk)
    dut.cycles_lo.value = 0xFFFFFFFF
    dut.cycles_hi.value = 0x00000007
    assert await tb.read(hi["offset"]) == 0, "HI before any LO read must read the reset latch"
    assert await tb.read(lo["offset"]) == 0xFFFFFFFF
    await FallingEdge(dut.clk)
    dut.cycles_lo.value = 0
    dut.cycles_hi.value = 8
    assert await tb.read(hi["offset"]) == 7, "HI was not latched by the LO read"
    assert await tb.read(lo["offset"]) == 0
    assert await tb.read(hi["offset"]) == 8
    # Each counter has its own latch.
    other = tb.by_name["STALL_DRAM_HI"]
    await FallingEdge(dut.clk)
    dut.stall_dram_hi.value = 0x1234
    assert await tb.read(other["offset"]) == 0
    assert await tb.read(hi["offset"]) == 8
