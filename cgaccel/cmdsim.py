"""Reference executor of command lists: the engine transactions the RTL controller must produce.

:func:`execute` interprets a command list (:mod:`cgaccel.commands`) against a byte-addressed
memory, exactly as the spec in ``commands.py`` reads, and returns the stream of engine
transactions it implies: buffer writes ``(target, col, bcast, bank, addr, data)``, tile commands
(RUN) and write-back reads ``(col, addr)`` with the DRAM byte each read value goes to. It applies
the controller's checks (unknown opcode, malformed command, transfers outside memory, a store
outside the output window) and stops with the error code the hardware would report.

Pure Python; :func:`run_on_engine` (the only part that imports the Amaranth simulator) feeds a
trace to the engine RTL the way :mod:`cgaccel.engine.sim` does and writes the results back.
"""

from dataclasses import dataclass, field

from .commands import COMMAND_BYTES, Op, decode
from .driver import unpack_tile
from .engine.geometry import Geometry, Target
from .regs import ERRORS

__all__ = ["Memory", "CommandError", "Trace", "TraceTile", "execute", "run_on_engine"]


class CommandError(RuntimeError):
    """The controller would stop the layer with an error.

    Members
    -------
    code : int
        Value of ``ERROR.code`` (:data:`cgaccel.regs.ERRORS`).
    name : str
    index : int or None
        Index of the offending command (None for descriptor errors).
    """

    def __init__(self, name, index, message):
        self.name = name
        self.code = ERRORS[name]
        self.index = index
        where = "" if index is None else f"command {index}: "
        super().__init__(f"{where}{message} (error {self.code}, {name})")


class Memory:
    """Sparse byte-addressed memory: a set of non-overlapping regions.

    Reading or writing bytes outside every region raises :class:`CommandError` ``dram_read`` /
    ``dram_write`` (what an AXI slave's DECERR would turn into).
    """

    def __init__(self, regions=()):
        self._regions = []  # (start, bytearray), sorted
        for addr, data in regions:
            self.add(addr, data)

    def add(self, addr, data):
        """Map a region at ``addr`` holding ``data`` (bytes) or ``data`` zero bytes (int)."""
        buf = bytearray(data)
        end = addr + len(buf)
        for start, b in self._regions:
            if addr < start + len(b) and start < end:
                raise ValueError(f"region {addr:#x}+{len(buf)} must not overlap "
                                 f"{start:#x}+{len(b)}")
        self._regions.append((addr, buf))
        self._regions.sort(key=lambda r: r[0])

    def _find(self, addr, n, kind):
        for start, buf in self._regions:
            if start <= addr and addr + n <= start + len(buf):
                return start, buf
        raise CommandError(f"dram_{kind}", None,
                           f"DRAM {kind} of {n} bytes at {addr:#x} must fall in mapped memory")

    def read(self, addr, n):
        start, buf = self._find(addr, n, "read")
        return bytes(buf[addr - start:addr - start + n])

    def write(self, addr, data):
        start, buf = self._find(addr, len(data), "write")
        buf[addr - start:addr - start + len(data)] = data


@dataclass
class TraceTile:
    """The transactions of one tile, grouped as the engine's loader issues them.

    Members
    -------
    writes : list of tuple
        Buffer writes other than ``OUT`` issued since the previous RUN.
    out_writes : list of tuple
        Residual preloads (``OUT``) issued since the previous RUN (after its write-back).
    cmd : dict
        The tile command (:func:`cgaccel.driver.unpack_tile`).
    reads : list of (col, addr)
        Write-back reads of this tile (issued after its RUN, before the next one).
    dram : list of int
        DRAM byte address each read's value is stored to.
    """

    writes: list = field(default_factory=list)
    out_writes: list = field(default_factory=list)
    cmd: dict = None
    reads: list = field(default_factory=list)
    dram: list = field(default_factory=list)


@dataclass
class Trace:
    """Result of :func:`execute`.

    Members
    -------
    events : list of tuple
        In order: ``("write", (target, col, bcast, bank, addr, data))``, ``("run", cmd_dict)``,
        ``("read", (col, addr), dram_addr)``, ``("store",)`` before the reads of each STORE,
        ``("end",)``.
    read_bytes : int
        DRAM bytes read (command list and LOAD data).
    write_bytes : int
        DRAM bytes the STOREs write.
    store_requests : int
        Read requests the controller sends the engine for them: one per byte, one per
        row of ``cols`` bytes (all columns at one address) in a dealt STORE when
        :attr:`Geometry.store_rows <cgaccel.engine.geometry.Geometry.store_rows>`, or one
        per word of ``out_word`` bytes in any other STORE whose ``buf_addr`` and
        ``buf_stride`` are word-aligned (:meth:`Geometry.store_step
        <cgaccel.engine.geometry.Geometry.store_step>`; an iteration's last row or word may
        be shorter). The ``read`` events name every byte either way.
    """

    events: list
    read_bytes: int
    write_bytes: int
    store_requests: int = 0

    def tiles(self):
        """Group the events per tile (:class:`TraceTile`).

        Buffer writes belong to the next RUN; write-back reads belong to the oldest tile not
        yet read back completely (``kt * ho * wo`` reads: one STORE per tile, or one per
        column of a pixel-split tile without dealt pixels), so tiles are written back in
        order.

        Raises
        ------
        ValueError
            The order breaks the engine protocol: a tile's residual preload or RUN before the
            write-back of the tile that last used its output bank (the previous tile, or the
            one before with ``obuf``), a STORE before its tile's RUN, or writes left over.
        """
        tiles = []
        pending = TraceTile()
        done = 0            # tiles read back completely
        store_open = False  # a STORE of tile ``done`` has started
        done_at_out = None
        for ev in self.events:
            kind = ev[0]
            if kind == "write":
                if ev[1][0] == Target.OUT:
                    if done_at_out is None:
                        done_at_out = done
                    pending.out_writes.append(ev[1])
                else:
                    if pending.out_writes:
                        raise ValueError("buffer writes must precede the residual preload of "
                                         "their tile, not follow it")
                    pending.writes.append(ev[1])
            elif kind == "run":
                n = len(tiles)
                back = 2 if ev[1].get("obuf") else 1
                first = done if done_at_out is None else done_at_out
                if first < n - back + 1:
                    raise ValueError(f"tile {n}'s residual preload and RUN must follow the "
                                     f"write-back of tile {n - back}, not precede it (they "
                                     f"share the output bank)")
                pending.cmd = ev[1]
                tiles.append(pending)
                pending = TraceTile()
                done_at_out = None
            elif kind == "store":
                if done >= len(tiles):
                    raise ValueError(f"the STORE of tile {done} must follow its RUN, "
                                     f"not precede it")
                store_open = True
            elif kind == "read":
                if not store_open:
                    raise ValueError("a write-back read must follow a STORE, not precede it")
                t = tiles[done]
                t.reads.append(ev[1])
                t.dram.append(ev[2])
                if len(t.reads) == t.cmd["kt"] * t.cmd["ho"] * t.cmd["wo"]:
                    done += 1
                    store_open = False
        if pending.writes or pending.out_writes:
            raise ValueError("buffer writes must be followed by a RUN, not left unused")
        return tiles


def execute(config, memory, cmd_addr, cmd_len, y_addr, y_len, *, max_commands=1 << 20):
    """Execute a command list as the controller does.

    Parameters
    ----------
    config : AccelConfig
    memory : Memory (or any object with ``read(addr, n) -> bytes``)
    cmd_addr, cmd_len : int
        ``CMD_ADDR`` / ``CMD_LEN``.
    y_addr, y_len : int
        The output window.

    Returns
    -------
    Trace

    Raises
    ------
    CommandError
        With the error code the hardware reports.
    """
    geo = Geometry(config)
    cols = config.cols
    data_mask = (1 << geo.data_width) - 1
    limit = 1 << config.axi_addr_width
    if cmd_addr % COMMAND_BYTES or cmd_len % COMMAND_BYTES:
        raise CommandError("misaligned", None, f"CMD_ADDR {cmd_addr:#x} and CMD_LEN {cmd_len} "
                           f"must be multiples of {COMMAND_BYTES}")
    if cmd_len // COMMAND_BYTES > max_commands:
        raise ValueError(f"command list must hold at most {max_commands} commands, "
                         f"not {cmd_len // COMMAND_BYTES}")
    events = []
    read_bytes = write_bytes = requests = 0

    def check_range(i, addr, n):
        if addr + n > limit:
            raise CommandError("out_of_range", i, f"transfer {addr:#x}+{n} must stay below "
                               f"{limit:#x}")

    def dram_read(i, addr, n):
        check_range(i, addr, n)
        try:
            return memory.read(addr, n)
        except CommandError as exc:
            raise CommandError("dram_read", i, str(exc)) from None

    for i in range(cmd_len // COMMAND_BYTES):
        raw = dram_read(i, cmd_addr + i * COMMAND_BYTES, COMMAND_BYTES)
        read_bytes += COMMAND_BYTES
        try:
            cmd = decode(raw)
        except (TypeError, ValueError) as exc:
            raise CommandError("command", i, str(exc)) from None
        if cmd.op == Op.END:
            events.append(("end",))
            return Trace(events=events, read_bytes=read_bytes, write_bytes=write_bytes,
                         store_requests=requests)
        if cmd.op == Op.RUN:
            events.append(("run", unpack_tile(config, cmd.tile)))
            continue
        if cmd.op == Op.LOAD:
            if cmd.chan and cmd.bcast:
                raise CommandError("command", i, "LOAD must not set both chan and bcast")
            if cmd.deal and (cmd.chan or cmd.bcast):
                raise CommandError("command", i, "LOAD deal must not be combined with chan "
                                   "or bcast")
            if cmd.deal and cmd.target in (Target.ACT, Target.WGT):
                raise CommandError("command", i, f"LOAD deal target must not be ACT or WGT, "
                                   f"not {Target(cmd.target).name}")
            if not (cmd.chan or cmd.bcast or cmd.deal) and cmd.col >= cols:
                raise CommandError("command", i, f"LOAD col must be below {cols}, "
                                   f"not {cmd.col}")
            item = 1 << cmd.item_log2
            for n in range(cmd.outer):
                data = dram_read(i, cmd.dram + n * cmd.dram_stride, cmd.inner * item)
                read_bytes += len(data)
                for m in range(cmd.inner):
                    if cmd.deal:    # item m of iteration n: column (m - n) % cols, row m // cols
                        col, bcast = (m - n) % cols, 0
                        addr = cmd.buf_addr + n * cmd.buf_stride + m // cols
                    elif cmd.chan:
                        col, bcast = n % cols, 0
                        addr = cmd.buf_addr + (n // cols) * cmd.buf_stride + m
                    else:
                        col, bcast = cmd.col, cmd.bcast
                        addr = cmd.buf_addr + n * cmd.buf_stride + m
                    value = int.from_bytes(data[m * item:(m + 1) * item], "little") & data_mask
                    events.append(("write", (Target(cmd.target), col, bcast, cmd.bank,
                                             addr, value)))
            continue
        if cmd.op == Op.STORE:
            if cmd.bcast or cmd.target:
                raise CommandError("command", i, "STORE must not set bcast or target")
            if cmd.deal and cmd.chan:
                raise CommandError("command", i, "STORE deal must not be combined with chan")
            if not (cmd.chan or cmd.deal) and cmd.col >= cols:
                raise CommandError("command", i, f"STORE col must be below {cols}, "
                                   f"not {cmd.col}")
            # The whole STORE is checked before any of it is issued.
            if cmd.outer:
                last = cmd.dram + (cmd.outer - 1) * cmd.dram_stride + cmd.inner
                check_range(i, cmd.dram, last - cmd.dram)
                if not (y_addr <= cmd.dram and last <= y_addr + y_len):
                    raise CommandError("out_of_range", i, f"STORE {cmd.dram:#x}..{last:#x} "
                                       f"must fall in the output window {y_addr:#x}+{y_len}")
            # Marks the start of one STORE: the reads that follow are one tile's write-back.
            events.append(("store",))
            for n in range(cmd.outer):
                dst = cmd.dram + n * cmd.dram_stride
                if cmd.chan:
                    col, base = n % cols, cmd.buf_addr + (n // cols) * cmd.buf_stride
                else:
                    col, base = cmd.col, cmd.buf_addr + n * cmd.buf_stride
                for m in range(cmd.inner):
                    if cmd.deal:    # byte m of iteration n: column (m - n) % cols, row m // cols
                        events.append(("read", ((m - n) % cols, base + m // cols), dst + m))
                    else:
                        events.append(("read", (col, base + m), dst + m))
                write_bytes += cmd.inner
                # Rows (dealt) or words of an iteration: full ones and a shorter last.
                step = geo.store_step(cmd.deal, cmd.buf_addr, cmd.buf_stride)
                requests += -(-cmd.inner // step)
            continue
        raise CommandError("command", i, f"opcode must be one of 0..3, not {cmd.op}")
    raise CommandError("command", None, "command list must end with END, not run out")


def run_on_engine(config, trace, memory, *, gaps=False, seed=0, engine=None):
    """Feed ``trace`` to the engine RTL (Amaranth simulator) and store the read values.

    The loader/reader protocol is that of :func:`cgaccel.engine.sim.run_plans`: each tile's
    buffer writes, then (after the previous tile's write-back) its residual preloads and its
    command; then its write-back reads, whose int8 values are written to ``memory`` at the
    DRAM addresses the STOREs named.

    Returns
    -------
    SimResult
        Of :func:`~cgaccel.engine.sim.run_plans` (``ys`` is empty).
    """
    from .engine.sim import run_plans

    tiles = trace.tiles()
    work = sum(len(t.writes) + len(t.out_writes) + len(t.reads) for t in tiles)
    compute = 0
    for t in tiles:
        c = t.cmd
        nk = -(-c["kt"] // config.cols)
        # Each output pixel reduces at most two list segments of cw words per tap.
        compute += nk * c["ho"] * c["wo"] * c["r"] * c["s"] * (2 * c["cw"] + 1) + 64
    timeout = 10 * work + 4 * compute + 10000

    class _Stream:
        def __init__(self):
            self.tiles = tiles

        def assemble(self, values):
            for tile, vals in zip(tiles, values, strict=True):
                for addr, v in zip(tile.dram, vals, strict=True):
                    memory.write(addr, bytes([int(v) & 0xFF]))
            return None

    result = run_plans(config, [_Stream()], gaps=gaps, seed=seed, engine=engine,
                       timeout=timeout)
    result.ys = []
    return result
