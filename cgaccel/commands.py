"""Command lists: how the host describes a layer to the accelerator.

The host driver compiles a layer (its tiling, see :mod:`cgaccel.engine.tiling`) into a list of
fixed-size commands in DRAM; the controller (:mod:`cgaccel.controller`) fetches and executes them.
Programming a layer is then: write tensors and the list to DRAM, write ``CMD_ADDR``/``CMD_LEN``
and the output window ``Y_ADDR``/``Y_LEN``, pulse ``CTRL.start``. Keeping the tile loops in
software keeps the RTL small and lets tiling policy change without new hardware; the controller
still checks every command (unknown opcode, engine-rejected tile, DRAM error, a store outside the
output window) and stops with an error code instead of running garbage.

Format: every command is 8 little-endian 32-bit words (32 bytes).

====  =====================================================================================
word  contents
====  =====================================================================================
0     ``op[3:0]``, ``target[6:4]``, ``bcast[7]``, ``bank[8]``, ``chan[9]``,
      ``item_log2[12:10]``, ``deal[13]``, ``col[31:16]`` (bits 15:14 are 0)
1     ``buf_addr``: engine buffer address of the first item
2     ``buf_stride``: buffer address step per outer iteration (``chan``: per wrap of
      ``cols``)
3     ``inner``: items per outer iteration
4     ``outer``: outer iterations (one DMA transfer each)
5, 6  ``dram``: byte address (low, high word)
7     ``dram_stride``: byte step per outer iteration
====  =====================================================================================

Opcodes:

``END`` (0)
    Wait until the engine is idle and every write has completed; then the layer is done.
``LOAD`` (1)
    For ``n`` in ``range(outer)``: read ``inner << item_log2`` bytes at ``dram + n*dram_stride``
    and write them as ``inner`` items of ``1 << item_log2`` bytes to engine buffer ``target``,
    bank ``bank``, at addresses ``base + 0 .. base + inner - 1``. With ``chan`` set, iteration
    ``n`` goes to column ``n % cols`` and ``base = buf_addr + (n // cols) * buf_stride`` (one
    output channel per iteration, as the engine deals channels to columns); otherwise to column
    ``col`` (or every column with ``bcast``) and ``base = buf_addr + n * buf_stride``.
    With ``deal`` set, the items themselves are dealt: item ``m`` of iteration ``n`` goes to
    column ``(m - n) % cols`` at ``buf_addr + n * buf_stride + m // cols`` (rotated a column
    per iteration, register-map minor 4; before, column ``m % cols``). One transfer of ``kt``
    items then loads a per-channel table (``BIAS``, ``THR``, ``MULT``, ``CFG``: one item per
    channel) exactly as ``kt`` single-item ``chan`` iterations do, without paying a DMA
    transfer per channel; ``OUT`` with ``deal`` preloads the residuals of a dealt-pixel tile
    (tile flag ``pdeal``: pixel ``p`` of channel ``n`` in column ``(p - n) % cols`` at
    ``n * pc + p // cols``) with one iteration per channel. (Before register-map minor 3 the
    count went on across iterations; the driver never emitted ``deal`` with ``outer > 1``.)
    ``deal`` excludes ``chan`` and ``bcast`` and the ``ACT``/``WGT`` targets (whose items
    the controller writes several at a time); the controller rejects those combinations.
``RUN`` (2)
    Start one tile: words 1..4 hold the engine's tile command, packed LSB first
    (:meth:`cgaccel.engine.geometry.Geometry.tile_layout`). The controller goes on with the next
    command (loads into the other bank overlap the tile); the engine holds off what must wait.
``STORE`` (3)
    For ``n`` in ``range(outer)``: read ``inner`` output bytes and write them to
    ``dram + n*dram_stride``. With ``chan`` set they are output channel ``n`` (column
    ``n % cols``, output-bank address ``buf_addr + (n // cols) * buf_stride + 0 .. inner-1``);
    otherwise column ``col`` at ``buf_addr + n * buf_stride + 0 .. inner-1`` (pixel-split tiles:
    a column's chunk of every channel). With ``deal`` set (register-map minor 3), byte ``m``
    comes from column ``(m - n) % cols`` (minor 4; before, ``m % cols``) at ``buf_addr + n *
    buf_stride + m // cols``, as ``LOAD`` deals items: dealt-pixel tiles (``pdeal``) are
    written back channel by channel, one iteration of contiguous DRAM bytes each. Every byte
    must fall in the output window. ``bcast`` and ``target`` must be 0, ``deal`` excludes
    ``chan``.
"""

import struct
from dataclasses import dataclass

__all__ = ["Op", "Command", "COMMAND_BYTES", "encode", "decode"]

COMMAND_BYTES = 32


class Op:
    END = 0
    LOAD = 1
    RUN = 2
    STORE = 3


@dataclass(frozen=True)
class Command:
    op: int
    target: int = 0
    bcast: int = 0
    bank: int = 0
    chan: int = 0
    item_log2: int = 0
    col: int = 0
    deal: int = 0
    buf_addr: int = 0
    buf_stride: int = 0
    inner: int = 0
    outer: int = 0
    dram: int = 0
    dram_stride: int = 0
    tile: int = 0       # RUN only: packed tile command (up to 128 bits)

    def __post_init__(self):
        checks = (("op", self.op, 4), ("target", self.target, 3), ("bcast", self.bcast, 1),
                  ("bank", self.bank, 1), ("chan", self.chan, 1), ("item_log2", self.item_log2, 3),
                  ("col", self.col, 16), ("deal", self.deal, 1), ("buf_addr", self.buf_addr, 32),
                  ("buf_stride", self.buf_stride, 32), ("inner", self.inner, 32),
                  ("outer", self.outer, 32), ("dram", self.dram, 64),
                  ("dram_stride", self.dram_stride, 32), ("tile", self.tile, 128))
        for name, value, bits in checks:
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"Command {name} must be an integer, not {value!r}")
            if not 0 <= value < 1 << bits:
                raise ValueError(f"Command {name} must fit {bits} unsigned bits, not {value}")
        if self.op == Op.RUN and (self.buf_addr or self.inner or self.outer):
            raise ValueError("Command RUN must carry only its tile, not transfer fields")


def encode(cmd):
    """32 bytes of one command."""
    w0 = (cmd.op | cmd.target << 4 | cmd.bcast << 7 | cmd.bank << 8 | cmd.chan << 9
          | cmd.item_log2 << 10 | cmd.deal << 13 | cmd.col << 16)
    if cmd.op == Op.RUN:
        t = cmd.tile
        words = [w0] + [(t >> (32 * i)) & 0xFFFFFFFF for i in range(4)] + [0, 0, 0]
    else:
        words = [w0, cmd.buf_addr, cmd.buf_stride, cmd.inner, cmd.outer,
                 cmd.dram & 0xFFFFFFFF, cmd.dram >> 32, cmd.dram_stride]
    return struct.pack("<8I", *words)


def decode(blob):
    """The inverse of :func:`encode`."""
    if len(blob) != COMMAND_BYTES:
        raise ValueError(f"Command must be {COMMAND_BYTES} bytes, not {len(blob)}")
    w = struct.unpack("<8I", blob)
    common = dict(op=w[0] & 0xF, target=(w[0] >> 4) & 7, bcast=(w[0] >> 7) & 1,
                  bank=(w[0] >> 8) & 1, chan=(w[0] >> 9) & 1, item_log2=(w[0] >> 10) & 7,
                  deal=(w[0] >> 13) & 1, col=w[0] >> 16)
    if common["op"] == Op.RUN:
        return Command(**common, tile=w[1] | w[2] << 32 | w[3] << 64 | w[4] << 96)
    return Command(**common, buf_addr=w[1], buf_stride=w[2], inner=w[3], outer=w[4],
                   dram=w[5] | w[6] << 32, dram_stride=w[7])
