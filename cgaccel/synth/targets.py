"""FPGA targets of the open flow: device arguments, capacities and the board of each family.

Capacities are the device totals nextpnr reports (``utilization[...]["available"]``); they are
used to refuse a design that cannot fit before spending minutes placing it.
"""

from dataclasses import dataclass, field, replace

__all__ = ["Target", "TARGETS", "ECP5_SPEEDS", "target", "with_speed"]

#: The speed grades of ECP5 parts nextpnr has timing for (6 is the slowest: the ULX3S's
#: LFE5U-85F-6 and -25F-6; the OrangeCrab's LFE5U-25F is an -8).
ECP5_SPEEDS = (6, 7, 8)


@dataclass(frozen=True)
class Target:
    """One device the flow can build for.

    Parameters
    ----------
    name : str
        The ``--target`` name.
    family : str
        ``"ecp5"`` or ``"ice40"``: selects ``synth_<family>`` and ``nextpnr-<family>``.
    device_args : tuple of str
        nextpnr device and package arguments.
    capacity : dict
        Device totals by resource: ``luts`` (LUT4s on ECP5, logic cells on iCE40), ``ffs``,
        ``dsps``, ``brams``, ``sprams`` (iCE40 only), ``io``.
    board : str
        The board whose pins the ``board`` top uses.
    block_freq_mhz : float
        ``--freq`` given to nextpnr for ``--top block`` (a stretch target: it only steers the
        placer; the achieved Fmax is what is reported).
    pnr_args : tuple of str
        nextpnr options the flow adds by default (``synthesize(pnr_args=...)`` replaces them);
        each one measured in ``docs/synth.md`` ("nextpnr and yosys options").
    reset_dcc : str, optional
        ECP5: the nextpnr bel of the ``sync`` reset's global buffer (``cgaccel.synth.reset``).
    block_clock_pin : str, optional
        ECP5: the package pin of the ``block`` top's clock (a primary-clock input, the board's
        oscillator pin), so the clock reaches its global buffer by dedicated routing; the other
        pins stay unconstrained.
    """

    name: str
    family: str
    device_args: tuple
    capacity: dict = field(hash=False)
    board: str
    block_freq_mhz: float
    pnr_args: tuple = ()
    reset_dcc: str = None
    block_clock_pin: str = None

    @property
    def speed(self):
        """The speed grade in ``device_args`` (ECP5), else None."""
        args = list(self.device_args)
        return int(args[args.index("--speed") + 1]) if "--speed" in args else None


TARGETS = {
    "ecp5-85k": Target("ecp5-85k", "ecp5", ("--85k", "--package", "CABGA381", "--speed", "6"),
                       {"luts": 83640, "ffs": 83640, "dsps": 156, "brams": 208, "io": 205},
                       "ulx3s-85f", 100.0, reset_dcc="X67/Y0/TDCC2", block_clock_pin="G2"),
    "ecp5-25k": Target("ecp5-25k", "ecp5", ("--25k", "--package", "CABGA381", "--speed", "6"),
                       {"luts": 24288, "ffs": 24288, "dsps": 28, "brams": 56, "io": 197},
                       "ulx3s-25f", 100.0, reset_dcc="X31/Y0/TDCC2", block_clock_pin="G2"),
    "ice40-up5k": Target("ice40-up5k", "ice40", ("--up5k", "--package", "sg48"),
                         {"luts": 5280, "ffs": 5280, "dsps": 8, "brams": 30, "sprams": 4,
                          "io": 39},
                         "icebreaker", 40.0),
}


def target(name):
    """Return the :class:`Target` called ``name``."""
    if not isinstance(name, str):
        raise TypeError(f"Target must be a string, not {name!r}")
    try:
        return TARGETS[name]
    except KeyError:
        raise ValueError(f"Target must be one of {', '.join(TARGETS)}, not {name!r}") from None


def with_speed(tgt, speed):
    """``tgt`` (a :class:`Target`) at ECP5 speed grade ``speed``; None keeps its own (6)."""
    if speed is None:
        return tgt
    if isinstance(speed, bool) or not isinstance(speed, int):
        raise TypeError(f"Speed grade must be an int, not {speed!r}")
    if tgt.family != "ecp5":
        raise ValueError(f"Speed grade must be used with an ECP5 target, not {tgt.name!r}")
    if speed not in ECP5_SPEEDS:
        raise ValueError(f"Speed grade must be one of {', '.join(map(str, ECP5_SPEEDS))}, "
                         f"not {speed}")
    args = list(tgt.device_args)
    args[args.index("--speed") + 1] = str(speed)
    return replace(tgt, device_args=tuple(args))
