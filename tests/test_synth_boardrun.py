"""cgaccel.synth.boardrun: the host driver over the board's UART bridge.

The byte protocol and the board design behind it are checked in simulation in
``test_synth.py`` (``test_board_design_over_uart``, ``test_driver_over_the_board_uart``); here
the adapter runs against a Python model of the bridge's answers.
"""

import asyncio
import random
import struct

import pytest

from cgaccel.config import preset
from cgaccel.model.resnet18 import LayerShape
from cgaccel.model.vectors import make_vectors, save_vectors
from cgaccel.synth.boardrun import BridgeBus, run_on_board, serial_transport
from cgaccel.synth.bridge import MEM_BASE
from cgaccel.synth.host import BridgeError


class FakeBridge:
    """The bridge's answers: RAM at ``MEM_BASE``, a few registers below, DECERR elsewhere."""

    def __init__(self, ram_bytes, regs):
        self.ram = bytearray(ram_bytes)
        self.regs = dict(regs)
        self.log = []

    async def transact(self, command, reply_len):
        op, addr = command[0], struct.unpack("<I", command[1:5])[0]
        self.log.append((chr(op), addr))
        if MEM_BASE <= addr < MEM_BASE + len(self.ram):
            off = addr - MEM_BASE
            if op == 0x57:
                self.ram[off:off + 4] = command[5:9]
                return b"\xa0"
            return b"\xa0" + bytes(self.ram[off:off + 4])
        if addr < MEM_BASE and addr in self.regs:
            if op == 0x57:
                self.regs[addr] = struct.unpack("<I", command[5:9])[0]
                return b"\xa0"
            return b"\xa0" + struct.pack("<I", self.regs[addr])
        resp = 0xA2 if addr < MEM_BASE else 0xA3
        return bytes([resp]) + (b"\0" * 4 if reply_len == 5 else b"")


def _run(coro):
    return asyncio.run(coro)


def test_ram_access_at_any_alignment_keeps_the_neighbours():
    rng = random.Random(3)
    fake = FakeBridge(256, {})
    fake.ram[:] = bytes(rng.getrandbits(8) for _ in range(256))
    want = bytearray(fake.ram)
    bus = BridgeBus(fake.transact, 256)
    for _ in range(200):
        addr = rng.randrange(0, 250)
        n = rng.randrange(0, min(13, 256 - addr) + 1)
        data = bytes(rng.getrandbits(8) for _ in range(n))
        _run(bus.mem.write(addr, data))
        want[addr:addr + n] = data
        assert fake.ram == want
        a = rng.randrange(0, 256)
        m = rng.randrange(0, 256 - a + 1)
        assert _run(bus.mem.read(a, m)) == bytes(want[a:a + m])
    # Whole words cost one access each; a write inside one word reads it once first.
    fake.log.clear()
    _run(bus.mem.write(8, b"abcdefgh"))
    assert fake.log == [("W", MEM_BASE + 8), ("W", MEM_BASE + 12)]
    fake.log.clear()
    _run(bus.mem.write(17, b"xy"))
    assert fake.log == [("R", MEM_BASE + 16), ("W", MEM_BASE + 16)]
    assert fake.ram[16:20] == bytes([want[16]]) + b"xy" + bytes([want[19]])


def test_registers_errors_and_bad_parameters():
    fake = FakeBridge(64, {0x0: 0x43474143, 0x40: 5})
    bus = BridgeBus(fake.transact, 64)
    assert _run(bus.regs.read(0x0)) == 0x43474143
    _run(bus.regs.write(0x40, 0x1234))
    assert fake.regs[0x40] == 0x1234 and bus.transactions == 2
    with pytest.raises(BridgeError, match="bridge access answered SLVERR: 52fc0f0000"):
        _run(bus.regs.read(0xFFC))
    with pytest.raises(ValueError, match="RAM access must lie within the board's 64 bytes, "
                                         "not 8 bytes at 0x3c"):
        _run(bus.mem.write(60, bytes(8)))
    assert bus.transactions == 3            # refused before anything was sent
    with pytest.raises(ValueError, match="RAM size must be a positive number of bytes, not 0"):
        BridgeBus(fake.transact, 0)
    with pytest.raises(TypeError, match="Transport must be a coroutine function, not 3"):
        BridgeBus(3, 64)

    class Silent:
        def write(self, data):
            pass

        def read(self, n):
            return b"\xa0"

    with pytest.raises(BridgeError, match="board must answer 5 bytes within the port's "
                                          "timeout, not 1"):
        _run(BridgeBus(serial_transport(Silent()), 64).regs.read(0))


def _small_layer():
    return make_vectors(LayerShape("t", 4, 5, 5, 4, 3, 3, 1, 1), 2, 0.5, seed=1)


def test_a_layer_must_fit_the_board_ram():
    fake = FakeBridge(256, {})
    with pytest.raises(ValueError, match="layer must fit the board RAM of 256 bytes, not need "
                                         r"\d+ \(a larger --dram-kib"):
        _run(run_on_board(preset("small"), _small_layer(), BridgeBus(fake.transact, 256)))
    assert fake.log == []


def test_cli_reports_a_board_that_does_not_answer(tmp_path, capsys):
    from cgaccel.cli import main

    path = tmp_path / "v.npz"
    save_vectors(path, _small_layer())
    # pyserial's loopback port echoes each command: not a bridge reply.
    assert main(["board-run", "--config", "small", "--port", "loop://", "--vectors", str(path),
                 "--timeout", "0.2"]) == 1
    assert "Reply must be 5 bytes starting with 0xA0..0xA3, not 5200000000" \
        in capsys.readouterr().err
    assert main(["board-run", "--config", "small", "--port", "loop://", "--vectors", str(path),
                 "--board", "nexys"]) == 2
    assert "board must be one of ulx3s-85f, ulx3s-25f, icebreaker, not 'nexys'" \
        in capsys.readouterr().err
    assert main(["board-run", "--config", "small", "--port", "loop://", "--vectors", str(path),
                 "--dram-kib", "0"]) == 2
    assert "RAM size must be a positive number of bytes, not 0" in capsys.readouterr().err
    assert main(["board-run", "--config", "small", "--port", "loop://", "--vectors", str(path),
                 "--dram", "sdram", "--board", "icebreaker"]) == 2
    assert "--dram sdram needs a board with SDRAM and no --dram-kib" in capsys.readouterr().err
    # The direct-host bitstream (tiny) has no DRAM to size; it still needs an answering board.
    assert main(["board-run", "--config", "tiny", "--port", "loop://", "--vectors", str(path),
                 "--dram-kib", "64", "--board", "icebreaker"]) == 2
    assert "--dram and --dram-kib must not be given with host='mmio'" in capsys.readouterr().err
    dense = tmp_path / "dense.npz"
    save_vectors(dense, make_vectors(LayerShape("d", 4, 3, 3, 2, 1, 1, 1, 0), 1, 0.0, seed=1))
    assert main(["board-run", "--config", "tiny", "--port", "loop://", "--vectors", str(dense),
                 "--board", "icebreaker", "--timeout", "0.2"]) == 1
    assert "Reply must be 5 bytes starting with 0xA0..0xA3" in capsys.readouterr().err
