"""Host side of the board's UART bridge: the same byte protocol as the RTL, for a real serial
port or for a simulated one.

>>> client = BridgeClient(serial.Serial("/dev/ttyUSB0", 115200, timeout=1))  # doctest: +SKIP
>>> hex(client.read32(0x000))                                               # doctest: +SKIP
'0x43474143'
"""

import struct

from .bridge import CMD_READ, CMD_WRITE, MEM_BASE, REPLY_TAG

__all__ = ["encode_write", "encode_read", "decode_reply", "BridgeClient", "BridgeError",
           "MEM_BASE"]

_RESP_NAMES = {0: "OKAY", 1: "EXOKAY", 2: "SLVERR", 3: "DECERR"}


class BridgeError(IOError):
    """The bridge answered an error response, or garbage."""


def _check_u32(name, value):
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if not 0 <= value < 1 << 32:
        raise ValueError(f"{name} must be an unsigned 32-bit integer, not {value:#x}")


def encode_write(addr, data):
    """Bytes of a write command."""
    _check_u32("Address", addr)
    _check_u32("Data", data)
    return struct.pack("<BII", CMD_WRITE, addr, data)


def encode_read(addr):
    """Bytes of a read command."""
    _check_u32("Address", addr)
    return struct.pack("<BI", CMD_READ, addr)


def decode_reply(reply, *, is_read):
    """``(resp, data)`` from the reply bytes of one command (data is None for a write)."""
    want = 5 if is_read else 1
    if len(reply) != want or reply[0] & 0xFC != REPLY_TAG:
        raise BridgeError(f"Reply must be {want} bytes starting with 0xA0..0xA3, not "
                          f"{bytes(reply).hex() or 'nothing'}")
    resp = reply[0] & 3
    data = struct.unpack("<I", bytes(reply[1:5]))[0] if is_read else None
    return resp, data


class BridgeClient:
    """Register and memory access through the board's UART bridge.

    Parameters
    ----------
    port : object
        Anything with ``write(bytes)`` and ``read(n) -> bytes`` (a ``serial.Serial`` with a
        timeout, or a simulated port).
    """

    def __init__(self, port):
        self._port = port

    def _transact(self, command, is_read):
        self._port.write(command)
        reply = self._port.read(5 if is_read else 1)
        resp, data = decode_reply(reply, is_read=is_read)
        if resp not in (0, 1):
            raise BridgeError(f"Bridge access answered {_RESP_NAMES[resp]}: {command.hex()}")
        return data

    def write32(self, addr, value):
        """Write one 32-bit word at host address ``addr``."""
        self._transact(encode_write(addr, value), False)

    def read32(self, addr):
        """Read one 32-bit word at host address ``addr``."""
        return self._transact(encode_read(addr), True)

    def write_mem(self, offset, data):
        """Write ``data`` (bytes, length a multiple of 4) to RAM byte ``offset`` onwards."""
        if len(data) % 4 or offset % 4:
            raise ValueError(f"RAM writes must be whole aligned words, not {len(data)} bytes at "
                             f"{offset:#x}")
        for i in range(0, len(data), 4):
            self.write32(MEM_BASE + offset + i, struct.unpack("<I", data[i:i + 4])[0])

    def read_mem(self, offset, length):
        """Read ``length`` bytes (a multiple of 4) of RAM from byte ``offset``."""
        if length % 4 or offset % 4:
            raise ValueError(f"RAM reads must be whole aligned words, not {length} bytes at "
                             f"{offset:#x}")
        return b"".join(struct.pack("<I", self.read32(MEM_BASE + offset + i))
                        for i in range(0, length, 4))
