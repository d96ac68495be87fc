"""Multiply-accumulate (MAC) counts of a channel-gated convolution layer.

Counting rules (all counts include the taps that fall on zero padding, like the usual
``K*C*R*S*Ho*Wo`` figure):

* dense MACs: ``K * C * R * S * Ho * Wo``, what an ungated, unmasked layer executes;
* base MACs: for every output activation of a channel that the FBS output mask keeps,
  ``R * S`` MACs per *unmasked* input channel of its base path (``C/G`` channels of its group;
  all ``C`` channels when ``groups == 1``);
* conditional MACs: where the gate is open, ``R * S`` MACs per unmasked input channel outside
  the base path (none when ``groups == 1``);
* executed = base + conditional; theoretical reduction = dense / executed.

Input channels that the FBS input mask marks zero are never fetched nor multiplied.
"""

from dataclasses import dataclass

import numpy as np

__all__ = ["MacStats", "mac_stats"]


@dataclass(frozen=True)
class MacStats:
    """MAC counts of one layer evaluation.

    Members
    -------
    dense : int
        ``K*C*R*S*Ho*Wo``.
    base : int
        Base-path MACs executed.
    conditional : int
        Conditional-path MACs executed (gate open).
    conditional_possible : int
        Conditional-path MACs if every gate of every unmasked output were open.
    """

    dense: int
    base: int
    conditional: int
    conditional_possible: int

    @property
    def executed(self):
        """MACs executed: base plus conditional."""
        return self.base + self.conditional

    @property
    def skipped(self):
        """MACs not executed compared with the dense layer."""
        return self.dense - self.executed

    @property
    def reduction(self):
        """Theoretical MAC reduction ``dense / executed`` (``inf`` when nothing executes)."""
        return self.dense / self.executed if self.executed else float("inf")

    @property
    def conditional_fraction(self):
        """Fraction of the possible conditional work that executed (0.0 if none possible)."""
        if not self.conditional_possible:
            return 0.0
        return self.conditional / self.conditional_possible


def _mask_or_ones(mask, n):
    if mask is None:
        return np.ones(n, dtype=np.int64)
    return np.asarray(mask).astype(np.int64)


def mac_stats(gate, C, R, S, groups, omask=None, imask=None):
    """Count the MACs of a layer from its gate map.

    Parameters
    ----------
    gate : ndarray, shape [K, Ho, Wo]
        1 where the conditional path executes (ignored when ``groups == 1``).
    C, R, S : int
        Input channels and kernel height/width.
    groups : int
        CGNet group count G; 1 means a dense layer.
    omask : ndarray [K] of 0/1, optional
        FBS output-channel mask (0: channel does no work).
    imask : ndarray [C] of 0/1, optional
        FBS input-channel mask (0: channel is known zero and is skipped).

    Returns
    -------
    MacStats
    """
    gate = np.asarray(gate)
    if gate.ndim != 3:
        raise ValueError(f"gate must be a 3-D array [K, Ho, Wo], not shape {gate.shape}")
    K, Ho, Wo = gate.shape
    if groups < 1 or C % groups or K % groups:
        raise ValueError(f"groups must divide C={C} and K={K}, not {groups}")
    om = _mask_or_ones(omask, K)
    im = _mask_or_ones(imask, C)
    taps = R * S
    if groups == 1:
        nbase = np.full(K, int(im.sum()), dtype=np.int64)
        ncond = np.zeros(K, dtype=np.int64)
    else:
        cg, kg = C // groups, K // groups
        per_group = im.reshape(groups, cg).sum(axis=1)
        nbase = np.repeat(per_group, kg)
        ncond = int(im.sum()) - nbase
    open_count = (gate.reshape(K, -1) != 0).sum(axis=1).astype(np.int64)
    base = int((om * nbase).sum()) * taps * Ho * Wo
    cond = int((om * ncond * open_count).sum()) * taps
    possible = int((om * ncond).sum()) * taps * Ho * Wo
    return MacStats(dense=K * C * taps * Ho * Wo, base=base, conditional=cond,
                    conditional_possible=possible)
