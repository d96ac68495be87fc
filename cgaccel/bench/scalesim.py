"""SCALE-Sim (v3, PyPI ``scalesim==3.0.0``) dense cycles of one conv layer, for comparison.

SCALE-Sim models a ``rows x cols`` systolic array. Its weight-stationary dataflow (``ws``) maps
the reduction (``C*R*S``) onto the array rows and the output channels onto the columns, the same
spatial mapping as cgaccel's engine (``rows`` input channels reduced per cycle, one output
channel per column); its output-stationary (``os``) and input-stationary (``is``) dataflows are
reported too. :data:`COMPARE_DATAFLOW` is the one the benchmark compares against.

Inputs written to a temporary directory (nothing is downloaded):

* a conv topology CSV with one layer. SCALE-Sim has no padding: the input is given as the
  padded ``(H + 2*pad) x (W + 2*pad)`` image, so its output size and MAC count equal the
  layer's (padding taps included; cgaccel's engine skips them);
* a config file: array ``rows x cols``, SRAM sizes from the cgaccel configuration (one copy of
  the activation double buffer, every column's weight banks, every output bank),
  ``InterfaceBandwidth: CALC`` (DRAM bandwidth sized so the array never stalls), no sparsity.

The figure returned is COMPUTE_REPORT's "Total Cycles" (compute plus stalls, without the initial
prefetch).

Compatibility: SCALE-Sim 3.0.0 calls ``int(max(x))`` on one-element NumPy arrays in
``scalesim.memory``, which NumPy >= 2.3 rejects (``TypeError: only 0-dimensional arrays can be
converted to Python scalars``). :func:`_patch_numpy2` gives those two modules a ``max`` that
returns the element of a one-element array; nothing else in SCALE-Sim is changed.
"""

import builtins
import contextlib
import csv
import gc
import hashlib
import io
import json
import tempfile
import warnings
from pathlib import Path

import numpy as np

__all__ = ["DATAFLOWS", "COMPARE_DATAFLOW", "available", "scalesim_cycles", "ScaleSimCache"]

DATAFLOWS = ("os", "ws", "is")
COMPARE_DATAFLOW = "ws"
SCALESIM_VERSION = "3.0.0"

_CONFIG = """\
[general]
run_name = cgaccel

[architecture_presets]
ArrayHeight:    {rows}
ArrayWidth:     {cols}
IfmapSramSzkB:   {ifmap_kb}
FilterSramSzkB:  {filter_kb}
OfmapSramSzkB:   {ofmap_kb}
IfmapOffset:    0
FilterOffset:   10000000
OfmapOffset:    20000000
Bandwidth : 10
Dataflow : {dataflow}
MemoryBanks:   1
ReadRequestBuffer: 512
WriteRequestBuffer: 512

[layout]
IfmapCustomLayout: False
IfmapSRAMBankBandwidth: 10
IfmapSRAMBankNum: 1
IfmapSRAMBankPort: 2
FilterCustomLayout: False
FilterSRAMBankBandwidth: 10
FilterSRAMBankNum: 1
FilterSRAMBankPort: 2

[sparsity]
SparsitySupport : false
SparseRep : ellpack_block
OptimizedMapping : false
BlockSize : 8
RandomNumberGeneratorSeed : 40

[run_presets]
InterfaceBandwidth: CALC
UseRamulatorTrace: False
"""

_TOPO_HEADER = ("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
                "Num Filter, Strides,\n")


def available():
    """``(True, version)`` when SCALE-Sim imports, else ``(False, reason)``."""
    try:
        from importlib.metadata import version

        import scalesim.scale_sim  # noqa: F401
        return True, version("scalesim")
    except Exception as exc:  # any import failure is a reason to report, not to crash
        return False, f"scalesim is not importable ({type(exc).__name__}: {exc})"


def _max_scalar(*args, **kwargs):
    r = builtins.max(*args, **kwargs)
    if isinstance(r, np.ndarray) and r.size == 1:
        return r.reshape(-1)[0]
    return r


def _patch_numpy2():
    import scalesim.memory.double_buffered_scratchpad_mem as dbsm
    import scalesim.memory.read_buffer as rb
    dbsm.max = _max_scalar
    rb.max = _max_scalar


def _sram_kb(config):
    act = 2 * config.act_depth * config.rows * config.act_width // 8
    wgt = 2 * config.weight_depth * config.rows * config.weight_width // 8 * config.cols
    out = config.out_depth * config.act_width // 8 * config.cols
    return tuple(max(1, b // 1024) for b in (act, wgt, out))


def scalesim_cycles(shape, config, dataflow=COMPARE_DATAFLOW, *, workdir=None):
    """Run SCALE-Sim on one layer; returns its total cycles (int).

    Parameters
    ----------
    shape : LayerShape
    config : AccelConfig
        Array size ``rows x cols`` and SRAM sizes.
    dataflow : "os", "ws" or "is"
    workdir : path, optional
        Where the topology, config and reports go (a fresh temporary directory by default).

    Raises
    ------
    ValueError
        Unknown dataflow.
    RuntimeError
        SCALE-Sim is not importable or wrote no report.
    """
    if dataflow not in DATAFLOWS:
        raise ValueError(f"dataflow must be one of {', '.join(DATAFLOWS)}, not {dataflow!r}")
    ok, why = available()
    if not ok:
        raise RuntimeError(why)
    _patch_numpy2()
    from scalesim.scale_sim import scalesim

    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="cgaccel_ss_"))
        wd = Path(workdir)
        wd.mkdir(parents=True, exist_ok=True)
        ifmap_kb, filter_kb, ofmap_kb = _sram_kb(config)
        (wd / "cgaccel.cfg").write_text(_CONFIG.format(
            rows=config.rows, cols=config.cols, ifmap_kb=ifmap_kb, filter_kb=filter_kb,
            ofmap_kb=ofmap_kb, dataflow=dataflow))
        row = (f"layer, {shape.H + 2 * shape.pad}, {shape.W + 2 * shape.pad}, {shape.R}, "
               f"{shape.S}, {shape.C}, {shape.K}, {shape.stride},\n")
        for name in ("topology.csv", "layout.csv"):
            (wd / name).write_text(_TOPO_HEADER + row)
        out = wd / "out"
        # SCALE-Sim prints progress and notes unconditionally, and leaves its input files
        # open (ResourceWarning when they are collected): both are its business, not ours.
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            sim = scalesim(save_disk_space=True, verbose=False, config=str(wd / "cgaccel.cfg"),
                           topology=str(wd / "topology.csv"), layout=str(wd / "layout.csv"))
            sim.run_scale(top_path=str(out))
            del sim
            gc.collect()
        report = out / "cgaccel" / "COMPUTE_REPORT.csv"
        if not report.exists():
            raise RuntimeError(f"SCALE-Sim must write {report}, not leave it missing")
        with report.open() as f:
            rows = [r for r in csv.reader(f, skipinitialspace=True) if r]
        header = [h.strip() for h in rows[0]]
        return int(float(rows[1][header.index("Total Cycles")]))


class ScaleSimCache:
    """SCALE-Sim results cached in a JSON file (runs on full-size layers take minutes).

    The key holds the SCALE-Sim version, the layer geometry, the array and SRAM sizes and the
    dataflow, so a cached figure is only reused for the identical question.
    """

    def __init__(self, path=None):
        self._path = Path(path) if path is not None else None
        self._data = {}
        if self._path is not None and self._path.exists():
            self._data = json.loads(self._path.read_text())

    @staticmethod
    def key(shape, config, dataflow):
        parts = (SCALESIM_VERSION, shape.C, shape.H, shape.W, shape.K, shape.R, shape.S,
                 shape.stride, shape.pad, config.rows, config.cols, *_sram_kb(config), dataflow)
        return hashlib.sha1(repr(parts).encode()).hexdigest()[:16]

    def _reload(self):
        # Another process (a second bench) may have added results since.
        if self._path is not None and self._path.exists():
            self._data.update(json.loads(self._path.read_text()))

    def has(self, shape, config, dataflow=COMPARE_DATAFLOW):
        """Whether the answer is already cached."""
        self._reload()
        return self.key(shape, config, dataflow) in self._data

    def cycles(self, shape, config, dataflow=COMPARE_DATAFLOW):
        """Cached :func:`scalesim_cycles`."""
        k = self.key(shape, config, dataflow)
        self._reload()
        if k not in self._data:
            value = scalesim_cycles(shape, config, dataflow)
            self._reload()
            self._data[k] = value
            if self._path is not None:
                self._path.parent.mkdir(parents=True, exist_ok=True)
                tmp = self._path.with_suffix(".tmp")
                tmp.write_text(json.dumps(self._data, indent=1, sort_keys=True))
                tmp.replace(self._path)
        return self._data[k]
