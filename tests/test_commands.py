"""Command format: every field lands in its documented bits, and decode inverts encode."""

import struct

import pytest

from cgaccel.commands import COMMAND_BYTES, Command, Op, decode, encode


def test_word0_bit_positions():
    """Each flag alone sets exactly the bit the format table gives it."""
    for field, value, word in [("target", 7, 7 << 4), ("bcast", 1, 1 << 7), ("bank", 1, 1 << 8),
                               ("chan", 1, 1 << 9), ("item_log2", 7, 7 << 10),
                               ("deal", 1, 1 << 13), ("col", 0xFFFF, 0xFFFF << 16)]:
        w = struct.unpack("<8I", encode(Command(op=Op.LOAD, **{field: value})))
        assert w[0] == Op.LOAD | word, field


def test_roundtrip():
    cmds = [
        Command(op=Op.LOAD, target=6, deal=1, bank=1, item_log2=3, buf_addr=9, buf_stride=2,
                inner=128, outer=1, dram=0x1_2345_6789, dram_stride=0),
        Command(op=Op.LOAD, target=1, chan=1, item_log2=1, col=0, buf_addr=3, buf_stride=27,
                inner=27, outer=64, dram=0x2000, dram_stride=54),
        Command(op=Op.LOAD, target=0, bcast=1, col=5, inner=1, outer=2, dram=4, dram_stride=8),
        Command(op=Op.STORE, chan=1, col=3, buf_addr=1, buf_stride=4, inner=2, outer=3,
                dram=0x3000, dram_stride=10),
        Command(op=Op.RUN, tile=(1 << 127) | 0xABCDEF),
        Command(op=Op.END),
    ]
    for cmd in cmds:
        blob = encode(cmd)
        assert len(blob) == COMMAND_BYTES
        assert decode(blob) == cmd


def test_field_errors():
    with pytest.raises(ValueError, match="Command deal must fit 1 unsigned bits, not 2"):
        Command(op=Op.LOAD, deal=2)
    with pytest.raises(TypeError, match="Command deal must be an integer, not True"):
        Command(op=Op.LOAD, deal=True)
    with pytest.raises(ValueError, match="Command must be 32 bytes, not 31"):
        decode(bytes(31))
