"""AXI4 and AXI4-Lite bus signatures.

Members are flat and named exactly as cocotbext-axi expects, so a port ``m_axi`` of an emitted
Verilog module binds with ``AxiBus.from_prefix(dut, "m_axi_")`` (Amaranth joins the port name and
the member name with a double underscore, which leaves the single trailing underscore of the
prefix). Signatures are written from the manager (master) side; use ``.flip()`` for a subordinate.
"""

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["AXI4Signature", "AXI4LiteSignature", "RESP_OKAY", "RESP_EXOKAY", "RESP_SLVERR",
           "RESP_DECERR", "BURST_INCR"]

RESP_OKAY = 0b00
RESP_EXOKAY = 0b01
RESP_SLVERR = 0b10
RESP_DECERR = 0b11
BURST_INCR = 0b01


def _check_width(name, value, allowed):
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(str, allowed))}, not {value}")


_DATA_WIDTHS = (8, 16, 32, 64, 128, 256, 512, 1024)


class AXI4LiteSignature(wiring.Signature):
    """AXI4-Lite manager signature.

    Parameters
    ----------
    addr_width : int
        Address width in bits (1..64).
    data_width : int
        Data width, 32 or 64.
    """

    def __init__(self, *, addr_width, data_width=32):
        if not isinstance(addr_width, int) or isinstance(addr_width, bool):
            raise TypeError(f"Address width must be an integer, not {addr_width!r}")
        if not 1 <= addr_width <= 64:
            raise ValueError(f"Address width must be an integer between 1 and 64, "
                             f"not {addr_width}")
        _check_width("Data width", data_width, (32, 64))
        self._addr_width = addr_width
        self._data_width = data_width
        super().__init__({
            "awaddr": Out(addr_width), "awprot": Out(3), "awvalid": Out(1), "awready": In(1),
            "wdata": Out(data_width), "wstrb": Out(data_width // 8), "wvalid": Out(1),
            "wready": In(1),
            "bresp": In(2), "bvalid": In(1), "bready": Out(1),
            "araddr": Out(addr_width), "arprot": Out(3), "arvalid": Out(1), "arready": In(1),
            "rdata": In(data_width), "rresp": In(2), "rvalid": In(1), "rready": Out(1),
        })

    @property
    def addr_width(self):
        return self._addr_width

    @property
    def data_width(self):
        return self._data_width

    def __eq__(self, other):
        return (isinstance(other, AXI4LiteSignature) and self.addr_width == other.addr_width
                and self.data_width == other.data_width)

    def __hash__(self):
        return hash((type(self), self._addr_width, self._data_width))

    def __repr__(self):
        return f"AXI4LiteSignature(addr_width={self.addr_width}, data_width={self.data_width})"


class AXI4Signature(wiring.Signature):
    """AXI4 (full) manager signature, all five channels.

    Parameters
    ----------
    addr_width : int
        Address width in bits (12..64).
    data_width : int
        Data width, a power of two from 8 to 1024.
    id_width : int
        Transaction ID width (1..16).
    """

    def __init__(self, *, addr_width, data_width, id_width):
        if not isinstance(addr_width, int) or isinstance(addr_width, bool):
            raise TypeError(f"Address width must be an integer, not {addr_width!r}")
        if not 12 <= addr_width <= 64:
            raise ValueError(f"Address width must be an integer between 12 and 64, "
                             f"not {addr_width}")
        _check_width("Data width", data_width, _DATA_WIDTHS)
        if not isinstance(id_width, int) or isinstance(id_width, bool):
            raise TypeError(f"ID width must be an integer, not {id_width!r}")
        if not 1 <= id_width <= 16:
            raise ValueError(f"ID width must be an integer between 1 and 16, not {id_width}")
        self._addr_width = addr_width
        self._data_width = data_width
        self._id_width = id_width
        members = {}
        for ch in ("aw", "ar"):
            members.update({
                f"{ch}id": Out(id_width), f"{ch}addr": Out(addr_width), f"{ch}len": Out(8),
                f"{ch}size": Out(3), f"{ch}burst": Out(2), f"{ch}lock": Out(1),
                f"{ch}cache": Out(4), f"{ch}prot": Out(3), f"{ch}qos": Out(4),
                f"{ch}valid": Out(1), f"{ch}ready": In(1),
            })
        members.update({
            "wdata": Out(data_width), "wstrb": Out(data_width // 8), "wlast": Out(1),
            "wvalid": Out(1), "wready": In(1),
            "bid": In(id_width), "bresp": In(2), "bvalid": In(1), "bready": Out(1),
            "rid": In(id_width), "rdata": In(data_width), "rresp": In(2), "rlast": In(1),
            "rvalid": In(1), "rready": Out(1),
        })
        super().__init__(members)

    @property
    def addr_width(self):
        return self._addr_width

    @property
    def data_width(self):
        return self._data_width

    @property
    def id_width(self):
        return self._id_width

    def __eq__(self, other):
        return (isinstance(other, AXI4Signature) and self.addr_width == other.addr_width
                and self.data_width == other.data_width and self.id_width == other.id_width)

    def __hash__(self):
        return hash((type(self), self._addr_width, self._data_width, self._id_width))

    def __repr__(self):
        return (f"AXI4Signature(addr_width={self.addr_width}, data_width={self.data_width}, "
                f"id_width={self.id_width})")
