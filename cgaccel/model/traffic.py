"""Off-chip (DRAM) bytes moved by one layer for a given output tiling.

Model and assumptions
---------------------
* One image. Tensors live in DRAM in the vectors-file layouts: ``x`` [C, H, W], ``w``
  [K, C, R, S], ``res``/``y`` [K, Ho, Wo], one byte per int8 element (``act_bytes``,
  ``weight_bytes``), plus per-output-channel tables (``bias``, ``thr``, ``mult``, ``shift``) of
  ``table_bytes`` bytes per channel (default 16: four 32-bit words).
* The output is cut into tiles of ``k_tile`` output channels by ``row_tile`` output rows (full
  width); edge tiles are smaller.
* A row tile of output rows ``[i0, i1)`` needs input rows ``[i0*stride - pad,
  (i1-1)*stride - pad + R)`` clipped to ``[0, H)`` (padding is generated on chip), for every
  input channel that is read. Rows shared by neighbouring tiles (the halo) are read again by
  each tile that needs them.
* Loop order ``"rows_outer"`` (default): for each row tile, its input band is read once and
  kept on chip while every channel tile runs; each channel tile's weights and tables are read
  again for every row tile. ``"k_outer"``: for each channel tile, its weights and tables are
  read once and kept; the input band of every row tile is read again for every channel tile.
* FBS: input channels with ``imask == 0`` are neither read from ``x`` nor from ``w``; output
  channels with ``omask == 0`` read no weights or tables. Every ``y`` element is written
  (masked channels too: they still produce ``relu?(clamp(res))`` or 0), and every ``res``
  element is read once when there is a residual.
* CGNet gating saves MACs, not bytes: any gate in a tile may open, so the conditional-path
  weights of a tile are always fetched.
* Bytes are counted exactly, with no rounding to bus beats or bursts and no reuse across layers.
"""

from dataclasses import dataclass

import numpy as np

from .resnet18 import LayerShape

__all__ = ["ORDERS", "Traffic", "layer_traffic"]

ORDERS = ("rows_outer", "k_outer")


@dataclass(frozen=True)
class Traffic:
    """Bytes moved by one layer.

    Members
    -------
    x_read, w_read, table_read, res_read : int
        Bytes read for activations (halo re-reads included), weights, per-channel tables and
        the residual.
    y_write : int
        Bytes written for the output.
    k_tiles, row_tiles : int
        Number of channel and row tiles.
    """

    x_read: int
    w_read: int
    table_read: int
    res_read: int
    y_write: int
    k_tiles: int
    row_tiles: int

    @property
    def read(self):
        """All bytes read."""
        return self.x_read + self.w_read + self.table_read + self.res_read

    @property
    def total(self):
        """All bytes moved."""
        return self.read + self.y_write


def _pos_int(name, v):
    if not isinstance(v, (int, np.integer)) or isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{name} must be an integer, not {v!r}")
    if v < 1:
        raise ValueError(f"{name} must be an integer >= 1, not {v}")
    return int(v)


def _count(mask, n, name):
    if mask is None:
        return n
    m = np.asarray(mask)
    if m.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), not {m.shape}")
    return int((m != 0).sum())


def layer_traffic(shape, k_tile, row_tile, *, order="rows_outer", residual=False, omask=None,
                  imask=None, act_bytes=1, weight_bytes=1, table_bytes=16):
    """Count the DRAM bytes of one layer under an output tiling (see the module docstring).

    Parameters
    ----------
    shape : LayerShape
    k_tile : int
        Output channels per tile (clipped to K).
    row_tile : int
        Output rows per tile (clipped to Ho).
    order : "rows_outer" or "k_outer"
    residual : bool
    omask, imask : array_like of 0/1, optional
        FBS masks ([K] and [C]).
    act_bytes, weight_bytes, table_bytes : int
        Bytes per activation, per weight and per output channel's table entry.

    Returns
    -------
    Traffic
    """
    if not isinstance(shape, LayerShape):
        raise TypeError(f"shape must be a LayerShape, not {shape!r}")
    k_tile = min(_pos_int("k_tile", k_tile), shape.K)
    row_tile = min(_pos_int("row_tile", row_tile), shape.Ho)
    if order not in ORDERS:
        raise ValueError(f"order must be one of {', '.join(ORDERS)}, not {order!r}")
    act_bytes = _pos_int("act_bytes", act_bytes)
    weight_bytes = _pos_int("weight_bytes", weight_bytes)
    if not isinstance(table_bytes, int) or table_bytes < 0:
        raise ValueError(f"table_bytes must be an integer >= 0, not {table_bytes!r}")
    K, C, H, W, R, S = shape.K, shape.C, shape.H, shape.W, shape.R, shape.S
    Ho, Wo, stride, pad = shape.Ho, shape.Wo, shape.stride, shape.pad
    c_on = _count(imask, C, "imask")
    k_on_mask = None if omask is None else np.asarray(omask) != 0
    _count(omask, K, "omask")

    row_tiles = -(-Ho // row_tile)
    k_tiles = -(-K // k_tile)
    band_rows = 0  # input rows read over all row tiles, halos counted each time
    for t in range(row_tiles):
        i0, i1 = t * row_tile, min((t + 1) * row_tile, Ho)
        lo = max(0, i0 * stride - pad)
        hi = min(H, (i1 - 1) * stride - pad + R)
        band_rows += max(0, hi - lo)
    k_on = K if k_on_mask is None else int(k_on_mask.sum())
    x_once = band_rows * W * c_on * act_bytes if k_on else 0  # every band read once
    w_once = k_on * c_on * R * S * weight_bytes
    t_once = k_on * table_bytes
    if order == "rows_outer":
        x_read, w_read, table_read = x_once, w_once * row_tiles, t_once * row_tiles
    else:
        # A channel tile with every output masked off needs no input either.
        if k_on_mask is None:
            live = k_tiles
        else:
            live = sum(bool(k_on_mask[j * k_tile:(j + 1) * k_tile].any()) for j in range(k_tiles))
        x_read, w_read, table_read = x_once * live, w_once, t_once
    res_read = K * Ho * Wo * act_bytes if residual else 0
    return Traffic(x_read=x_read, w_read=w_read, table_read=table_read, res_read=res_read,
                   y_write=K * Ho * Wo * act_bytes, k_tiles=k_tiles, row_tiles=row_tiles)
