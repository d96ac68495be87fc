"""Open FPGA flow (yosys + nextpnr via YoWASP) for ECP5 and iCE40: ``cgaccel synth``."""

from .flow import FlowError, ResourceError, add_arguments, run, synthesize
from .targets import TARGETS

__all__ = ["synthesize", "add_arguments", "run", "FlowError", "ResourceError", "TARGETS"]
