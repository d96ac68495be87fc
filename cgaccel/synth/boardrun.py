"""Run a layer on a loaded board design (``cgaccel synth --top board``) over its UART.

The host :class:`~cgaccel.driver.Driver` wants ``regs`` (``async read(offset)``, ``async
write(offset, value)``) and ``mem`` (``read(addr, n)``, ``write(addr, data)``); a
:class:`BridgeBus` gives it both through the board's UART-to-AXI4-Lite bridge, whose RAM stands
in for DRAM (AXI address ``a`` is RAM byte ``a``). Any transport will do: an ``async
transact(command, reply_len) -> bytes``; :func:`serial_transport` makes one from a pyserial
port (``cgaccel board-run``), the tests one from the simulated board's UART pins.

``cgaccel board-run --config small --port /dev/ttyUSB0 --vectors v.npz`` checks the hardware's
identity and configuration registers, writes the layer into the board RAM, runs it and compares
``y`` with the vectors file's bit for bit (exit status 0 only then). With a ``host="mmio"``
configuration (``--config tiny``, the iCEBreaker bitstream) there is no board RAM: the
:class:`~cgaccel.direct_driver.DirectDriver` hands the engine every transaction through the
bridge's register window.
"""

import asyncio
import struct
import sys
import time

import numpy as np

from ..commands import COMMAND_BYTES
from .bridge import MEM_BASE
from .host import BridgeError, decode_reply, encode_read, encode_write

__all__ = ["BridgeBus", "serial_transport", "run_on_board", "add_arguments", "run"]

_RESP_NAMES = {0: "OKAY", 1: "EXOKAY", 2: "SLVERR", 3: "DECERR"}


def serial_transport(port):
    """``transact`` over a port with ``write(bytes)`` and ``read(n)`` (a ``serial.Serial``
    with a timeout): a short reply is an error, not a hang."""
    async def transact(command, reply_len):
        port.write(command)
        reply = port.read(reply_len)
        if len(reply) != reply_len:
            raise BridgeError(f"board must answer {reply_len} bytes within the port's timeout, "
                              f"not {len(reply)} (is the bitstream loaded, the baud rate "
                              f"right?)")
        return reply
    return transact


class _Regs:
    def __init__(self, bus):
        self._bus = bus

    async def read(self, offset):
        return await self._bus.read32(offset)

    async def write(self, offset, value):
        await self._bus.write32(offset, value)


class _Mem:
    def __init__(self, bus):
        self._bus = bus

    async def read(self, addr, n):
        return await self._bus.read_ram(addr, n)

    async def write(self, addr, data):
        await self._bus.write_ram(addr, data)


class BridgeBus:
    """Register and RAM access through the board's bridge, as the driver wants them.

    Parameters
    ----------
    transact : coroutine function
        ``transact(command, reply_len) -> bytes``: send one bridge command, return its reply.
    dram_bytes : int
        Size of the board RAM; accesses past it are refused before they are sent.

    Members
    -------
    regs, mem
        The driver's ``regs`` and ``mem`` objects.
    """

    def __init__(self, transact, dram_bytes):
        if not callable(transact):
            raise TypeError(f"Transport must be a coroutine function, not {transact!r}")
        if isinstance(dram_bytes, bool) or not isinstance(dram_bytes, int) or dram_bytes <= 0:
            raise ValueError(f"RAM size must be a positive number of bytes, not {dram_bytes!r}")
        self._transact = transact
        self.dram_bytes = dram_bytes
        self.regs = _Regs(self)
        self.mem = _Mem(self)
        #: Bridge commands sent (reads and writes).
        self.transactions = 0

    async def _access(self, command, is_read):
        reply = await self._transact(command, 5 if is_read else 1)
        self.transactions += 1
        resp, data = decode_reply(reply, is_read=is_read)
        if resp not in (0, 1):
            raise BridgeError(f"bridge access answered {_RESP_NAMES[resp]}: {command.hex()}")
        return data

    async def read32(self, addr):
        return await self._access(encode_read(addr), True)

    async def write32(self, addr, value):
        await self._access(encode_write(addr, value), False)

    def _check_range(self, addr, n):
        if addr < 0 or n < 0 or addr + n > self.dram_bytes:
            raise ValueError(f"RAM access must lie within the board's {self.dram_bytes} bytes, "
                             f"not {n} bytes at {addr:#x}")

    async def read_ram(self, addr, n):
        """``n`` bytes of RAM from byte ``addr`` (any alignment)."""
        self._check_range(addr, n)
        first, end = addr & ~3, (addr + n + 3) & ~3
        words = [await self.read32(MEM_BASE + a) for a in range(first, end, 4)]
        data = b"".join(struct.pack("<I", w) for w in words)
        return data[addr - first:addr - first + n]

    async def write_ram(self, addr, data):
        """Write ``data`` to RAM from byte ``addr``; partial words at either end are merged
        with what the RAM holds (read, modify, write)."""
        data = bytes(data)
        self._check_range(addr, len(data))
        if not data:
            return
        first, end = addr & ~3, (addr + len(data) + 3) & ~3
        buf = bytearray(end - first)
        if addr != first:
            buf[0:4] = struct.pack("<I", await self.read32(MEM_BASE + first))
        if (addr + len(data)) % 4 and end - 4 >= first + (4 if addr != first else 0):
            buf[-4:] = struct.pack("<I", await self.read32(MEM_BASE + end - 4))
        buf[addr - first:addr - first + len(data)] = data
        for a in range(first, end, 4):
            off = a - first
            await self.write32(MEM_BASE + a, struct.unpack("<I", buf[off:off + 4])[0])


async def run_on_board(config, vectors, bus, *, max_polls=100000, **tiling):
    """Compile ``vectors`` for the board RAM, run the layer and return the driver's
    :class:`~cgaccel.driver.LayerRun` (``y`` not yet compared). With ``config.host`` "mmio"
    the layer stays in host memory and the direct driver runs it through ``bus.regs``.

    Raises
    ------
    ValueError
        The layer does not fit the board RAM.
    cgaccel.driver.DriverError
        Identity or configuration registers differ from ``config``, the layer stopped with an
        error status, or it did not finish within ``max_polls`` STATUS reads.
    BridgeError
        The bridge answered an error or the transport failed.
    """
    from ..driver import Driver, compile_layer

    if config.host == "mmio":
        from ..direct_driver import DirectDriver
        return await DirectDriver(config, bus.regs, max_polls=max_polls).run_compiled(
            compile_layer(config, vectors, **tiling))
    # Regions packed (not on 4 KiB pages): a board RAM is tens of KiB.
    compiled = compile_layer(config, vectors, base_addr=0,
                             region_align=max(COMMAND_BYTES, config.axi_bytes), **tiling)
    if compiled.end_addr > bus.dram_bytes:
        raise ValueError(f"layer must fit the board RAM of {bus.dram_bytes} bytes, not need "
                         f"{compiled.end_addr} (a larger --dram-kib, or a smaller layer)")
    driver = Driver(config, bus.regs, bus.mem, base_addr=0, max_polls=max_polls)
    return await driver.run_compiled(compiled)


# CLI ------------------------------------------------------------------------------------------

def add_arguments(parser):
    parser.add_argument("--port", required=True,
                        help="serial port of the board's USB UART (/dev/ttyUSB0, COM3, or a "
                             "pyserial URL such as socket://host:port)")
    parser.add_argument("--vectors", required=True, metavar="FILE.npz",
                        help="vectors file (cgaccel vectors)")
    parser.add_argument("--baud", type=int, default=115200,
                        help="UART baud rate of the bitstream (default: %(default)s)")
    parser.add_argument("--dram", choices=("ram", "sdram"), default=None,
                        help="the bitstream's DRAM, as built by `cgaccel synth`: on-chip RAM "
                             "or the board's SDRAM (default: the SDRAM on the ULX3S unless "
                             "--dram-kib is given)")
    parser.add_argument("--dram-kib", type=int, default=None,
                        help="on-chip RAM size of the bitstream in KiB (default: the board's, "
                             "ULX3S 85F 64, 25F 32)")
    parser.add_argument("--board", default="ulx3s-85f",
                        help="board the bitstream was built for (default: %(default)s; its "
                             "RAM size is the default with --dram ram)")
    parser.add_argument("--timeout", type=float, default=2.0,
                        help="seconds to wait for each bridge reply (default: %(default)s)")


def run(args):
    from ..driver import DriverError
    from ..driver_cli import mismatch_summary
    from ..model.vectors import load_vectors
    from .board import BOARDS

    prog = "cgaccel board-run"
    if args.board not in BOARDS:
        print(f"{prog}: board must be one of {', '.join(BOARDS)}, not {args.board!r}",
              file=sys.stderr)
        return 2
    board = BOARDS[args.board]
    kind = args.dram
    if args.config_obj.host == "mmio":
        if args.dram is not None or args.dram_kib is not None:
            print(f"{prog}: --dram and --dram-kib must not be given with host='mmio' (the "
                  f"bitstream has no DRAM)", file=sys.stderr)
            return 2
        kind = "none"
    elif kind is None:
        kind = "sdram" if board.sdram is not None and args.dram_kib is None else "ram"
    if kind == "sdram":
        if board.sdram is None or args.dram_kib is not None:
            print(f"{prog}: --dram sdram needs a board with SDRAM and no --dram-kib",
                  file=sys.stderr)
            return 2
        dram = board.sdram.size_bytes
    elif kind == "none":
        dram = 4        # BridgeBus's RAM window, unused
    else:
        dram = args.dram_kib * 1024 if args.dram_kib is not None else board.default_dram_bytes
    try:
        vec = load_vectors(args.vectors)
    except (OSError, TypeError, ValueError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    try:
        import serial
    except ModuleNotFoundError:
        print(f"{prog}: pyserial must be installed to open {args.port}: pip install pyserial",
              file=sys.stderr)
        return 2
    try:
        port = serial.serial_for_url(args.port, args.baud, timeout=args.timeout)
    except (serial.SerialException, ValueError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    try:
        bus = BridgeBus(serial_transport(port), dram)
        result = asyncio.run(run_on_board(args.config_obj, vec, bus))
    except ValueError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    except (DriverError, BridgeError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    finally:
        port.close()
    elapsed = time.monotonic() - t0
    c = result.counters
    print(f"{prog}: {result.cycles} cycles, MACs issued {c['macs_issued']} skipped "
          f"{c['macs_skipped']}; {bus.transactions} bridge transactions in {elapsed:.1f} s",
          file=sys.stderr)
    summary = mismatch_summary(result.y, np.asarray(vec["y"]))
    if summary:
        print(f"{prog}: MISMATCH: {summary}", file=sys.stderr)
        return 1
    print(f"{prog}: y matches the expected output bit for bit ({result.y.size} values)",
          file=sys.stderr)
    return 0
