"""Host driver of the ``host="mmio"`` top (:class:`cgaccel.direct.DirectTop`).

The host does the controller's work: it compiles the layer (:func:`cgaccel.driver.compile_layer`,
the same command list as for the DMA top), executes the list against the layer's bytes in host
memory (:func:`cgaccel.cmdsim.execute`, the controller's reference) and hands the engine the
transactions that gives, in order, through :func:`cgaccel.regs.direct_register_map`: each buffer
write as ``WR_DATA`` + ``WR``, each tile as ``TILE`` + ``RUN``, each write-back read as ``RD`` +
``RD_DATA`` (a word of ``out_word`` bytes at a time where a STORE reads whole words). The engine's
backpressure arrives as late write responses, so the order alone keeps its protocol.

``regs`` is the same interface as :class:`cgaccel.driver.Driver`'s: ``await regs.read(offset)``
and ``await regs.write(offset, value)`` (cocotb's ``AxiLiteMaster``, a UART bridge).
"""

import asyncio

from .cmdsim import CommandError, Memory, execute
from .driver import (
    AcceleratorError,
    AcceleratorTimeout,
    HardwareMismatch,
    LayerRun,
    _maybe_await,
    check_driver_args,
    check_version_and_hwcfg,
    compile_layer,
    pack_tile,
)
from .regs import (
    DIRECT_COUNTERS,
    ERRORS,
    MAGIC_DIRECT,
    direct_register_map,
    direct_words,
)

__all__ = ["DirectDriver", "transactions"]


def transactions(config, trace):
    """The register accesses that replay ``trace`` (:class:`cgaccel.cmdsim.Trace`).

    Returns
    -------
    list of tuple
        ``("w", offset, value)`` and ``("r", offset, dram)`` in order, where ``dram`` lists the
        DRAM byte address of each byte of the read value (lowest first); ``WR_DATA`` and
        ``TILE`` words equal to the last value written are not written again.
    """
    reg = {r.name: r.offset for r in direct_register_map(config)}
    n_data, n_tile = direct_words(config)
    word = config.out_word
    last = {}
    ops = []

    def put(name, value):
        if last.get(name) != value:
            ops.append(("w", reg[name], value))
            last[name] = value

    events = trace.events
    i = 0
    while i < len(events):
        ev = events[i]
        kind = ev[0]
        i += 1
        if kind == "write":
            target, col, bcast, bank, addr, value = ev[1]
            for k in range(n_data):
                put(f"WR_DATA{k}", (value >> (32 * k)) & 0xFFFFFFFF)
            ops.append(("w", reg["WR"], (addr & 0xFFFFF) | int(target) << 20 | bank << 23
                        | bcast << 24 | col << 25))
        elif kind == "run":
            value = pack_tile(config, ev[1])
            for k in range(n_tile):
                put(f"TILE{k}", (value >> (32 * k)) & 0xFFFFFFFF)
            ops.append(("w", reg["RUN"], 1))
        elif kind == "read":
            (col, addr), dram = ev[1], ev[2]
            # A run of reads that covers one whole output word of a column: one word read.
            run = events[i - 1:i - 1 + word]
            if (word > 1 and addr % word == 0 and len(run) == word
                    and all(e[0] == "read" and e[1] == (col, addr + n)
                            for n, e in enumerate(run))):
                ops.append(("w", reg["RD"], (addr & 0xFFFFF) | col << 20 | 1 << 27))
                ops.append(("r", reg["RD_DATA"], [e[2] for e in run]))
                i += word - 1
            else:
                ops.append(("w", reg["RD"], (addr & 0xFFFFF) | col << 20))
                ops.append(("r", reg["RD_DATA"], [dram]))
    return ops


class DirectDriver:
    """Runs compiled layers on a ``host="mmio"`` accelerator.

    Parameters
    ----------
    config : AccelConfig
        With ``host="mmio"``; checked against ``HWCFG``.
    regs : object
        ``async read(offset) -> int`` and ``async write(offset, value)``.
    wait : coroutine function, optional
        Awaited between STATUS polls; by default ``asyncio.sleep(0)``.
    max_polls : int
        STATUS reads, once every transaction is handed over, before
        :class:`~cgaccel.driver.AcceleratorTimeout`.
    fill : int
        Byte the output window holds before the layer, so that a byte the engine never
        returned cannot pass as a result.
    """

    def __init__(self, config, regs, *, wait=None, max_polls=1000, fill=0xA5):
        check_driver_args(config, {"regs": regs}, max_polls, fill)
        if config.host != "mmio":
            raise ValueError(f"config host must be 'mmio' for DirectDriver, not "
                             f"{config.host!r} (cgaccel.driver.Driver runs that one)")
        self.config = config
        self.regs = regs
        self.wait = wait
        self.max_polls = max_polls
        self.fill = fill
        self.reg = {r.name: r.offset for r in direct_register_map(config)}

    async def read(self, name):
        return int(await self.regs.read(self.reg[name]))

    async def write(self, name, value):
        await self.regs.write(self.reg[name], int(value) & 0xFFFFFFFF)

    async def check_hardware(self):
        """Check ID, VERSION and HWCFG0/1 against the configuration.

        Raises
        ------
        HardwareMismatch
        """
        ident = await self.read("ID")
        if ident != MAGIC_DIRECT:
            raise HardwareMismatch(f"ID must be {MAGIC_DIRECT:#010x} (a direct-host top), "
                                   f"not {ident:#010x}")
        await check_version_and_hwcfg(self.read, self.config)

    async def read_counters(self):
        """The free-running counters (32 bits), lower-case names."""
        return {name.lower(): await self.read(name) for name, _ in DIRECT_COUNTERS}

    async def run_compiled(self, compiled, *, check=True):
        """Run a compiled layer; see :meth:`run_layer`. ``counters`` are the layer's
        differences of the free-running counters (modulo ``2**32``)."""
        if check:
            await self.check_hardware()
        memory = Memory(compiled.image())
        memory.add(compiled.y_addr, bytes([self.fill]) * compiled.y_len)
        try:
            trace = execute(self.config, memory, compiled.cmd_addr, compiled.cmd_len,
                            compiled.y_addr, compiled.y_len)
        except CommandError as exc:
            # What the controller would stop the layer with, found before the engine is used.
            raise AcceleratorError(exc.code) from exc
        ops = transactions(self.config, trace)
        await self.write("CTRL", 1)
        before = await self.read_counters()
        for op in ops:
            if op[0] == "w":
                await self.regs.write(op[1], op[2])
            else:
                value = int(await self.regs.read(op[1]))
                for n, addr in enumerate(op[2]):
                    memory.write(addr, bytes([(value >> (8 * n)) & 0xFF]))
        runs = sum(1 for ev in trace.events if ev[0] == "run")
        polls = await self._wait_done(runs)
        after = await self.read_counters()
        counters = {k: (after[k] - before[k]) & 0xFFFFFFFF for k in after}
        status = await self.read("STATUS")
        if status & 0b10:
            raise AcceleratorError(ERRORS["shape"], counters)
        y = compiled.decode_y(memory.read(compiled.y_addr, compiled.y_len))
        return LayerRun(y=y, counters=counters, cycles=counters["cycles"], error=0,
                        compiled=compiled, polls=polls)

    async def _wait_done(self, runs):
        for polls in range(1, self.max_polls + 1):
            status = await self.read("STATUS")
            if not status & 1 and status >> 16 == runs & 0xFFFF:
                return polls
            if self.wait is not None:
                await _maybe_await(self.wait())
            else:
                await asyncio.sleep(0)
        raise AcceleratorTimeout(f"the engine must finish its {runs} tiles within "
                                 f"{self.max_polls} STATUS polls, not stay busy "
                                 f"(STATUS {status:#x})")

    async def run_layer(self, vectors, **options):
        """Compile ``vectors`` (tiling options as :func:`~cgaccel.driver.compile_layer`), run the
        layer and return a :class:`~cgaccel.driver.LayerRun`.

        Raises
        ------
        HardwareMismatch
            The hardware is not the configuration given.
        AcceleratorError
            The command list is refused (the controller's error code) or the engine refused a
            tile (``shape``).
        AcceleratorTimeout
        """
        return await self.run_compiled(compile_layer(self.config, vectors, **options))
