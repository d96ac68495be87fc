"""AXI4 DMA engines: :class:`ReadDMA` (DRAM to stream) and :class:`WriteDMA` (stream to DRAM)."""

from .common import (
    AXI4ReadSignature,
    AXI4WriteSignature,
    DMAError,
    DMAParams,
    command_layout,
    connect_axi,
    read_beat_layout,
    write_beat_layout,
)
from .reader import ReadDMA
from .writer import WriteDMA

__all__ = ["ReadDMA", "WriteDMA", "DMAError", "DMAParams", "command_layout", "read_beat_layout",
           "write_beat_layout", "AXI4ReadSignature", "AXI4WriteSignature", "connect_axi"]
