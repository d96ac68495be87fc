"""Float PyTorch model of the channel-gated (CGNet) / FBS ResNet-8.

Gated conv (CGNet, Hua et al. 2019): output channel ``k`` belongs to group ``g = k // (K/G)``;
its base path is the conv over input channels ``[g*C/G, (g+1)*C/G)``, its conditional path the
conv over the other channels. The gate is ``BN_g(psum_base) > Delta_k`` with a non-affine batch
norm ``BN_g`` and a learnable per-channel threshold ``Delta``; in training the hard gate is used
forward and the gradient of ``sigmoid((BN_g(psum_base) - Delta) / T)`` backward (straight-through
estimator). The layer output is ``BN(psum_base + gate * psum_cond)``.

FBS (Gao et al. 2019), binary-mask variant: a linear predictor from the global-average-pooled
layer input gives a saliency per output channel; winner-take-all keeps the ``ceil(keep * K)``
most salient channels of each image and zeroes the others. Forward uses the 0/1 mask (the
accelerator's ``omask`` is binary); backward passes the gradient to the saliency as if the mask
were ``1 + sigmoid(s) - stop_grad(sigmoid(s))``. The kept fraction anneals from 1 to ``keep``
over the first 30% of training (:func:`cgaccel.train.loop.train`).
"""

import math

import torch
from torch import nn
from torch.nn import functional as F

from .arch import resnet8_specs

__all__ = ["GatedConv", "GatedResNet", "base_mask"]


def base_mask(cin, cout, groups):
    """0/1 float tensor ``[K, C, 1, 1]``: 1 where input channel ``c`` is in ``k``'s base path."""
    k = torch.arange(cout)[:, None] // (cout // groups)
    c = torch.arange(cin)[None, :] // (cin // groups)
    return (k == c).float()[:, :, None, None]


class GatedConv(nn.Module):
    """Conv (no bias) + batch norm with optional CGNet gate and FBS output mask.

    Parameters
    ----------
    spec : ConvSpec
        Geometry and options.
    fbs_keep : float
        Fraction of output channels FBS keeps (used when ``spec.fbs``).
    gate_temp : float
        Temperature ``T`` of the sigmoid whose gradient the gate passes backward.

    Members
    -------
    density : torch.Tensor or None
        After a training/eval forward: gate density of the batch, straight-through (value is
        the hard density, gradient the soft one). None for dense layers.
    saliency : torch.Tensor or None
        After a forward of an FBS layer: the saliency ``[N, K]``.
    """

    def __init__(self, spec, fbs_keep=0.5, gate_temp=1.0):
        super().__init__()
        self.spec = spec
        self.conv = nn.Conv2d(spec.cin, spec.cout, spec.kernel, spec.stride, spec.pad,
                              bias=False)
        self.bn = nn.BatchNorm2d(spec.cout)
        self.gate_temp = gate_temp
        if spec.groups > 1:
            self.register_buffer("mask", base_mask(spec.cin, spec.cout, spec.groups))
            self.gate_bn = nn.BatchNorm2d(spec.cout, affine=False)
            self.delta = nn.Parameter(torch.zeros(spec.cout))
        if spec.fbs:
            self.pred = nn.Linear(spec.cin, spec.cout)
            self.set_keep(fbs_keep)
        self.density = None
        self.saliency = None

    def set_keep(self, frac):
        """Keep ``ceil(frac * K)`` output channels (at least one) per image."""
        self.keep = max(1, math.ceil(frac * self.spec.cout))

    def _conv(self, x, w):
        s = self.spec
        return F.conv2d(x, w, None, s.stride, s.pad)

    def forward(self, x):
        s = self.spec
        w = self.conv.weight
        if s.groups > 1:
            p_base = self._conv(x, w * self.mask)
            p_cond = self._conv(x, w * (1 - self.mask))
            g = self.gate_bn(p_base) - self.delta[None, :, None, None]
            hard = (g > 0).float()
            soft = torch.sigmoid(g / self.gate_temp)
            gate = hard + soft - soft.detach()
            self.density = gate.mean()
            p = p_base + gate * p_cond
        else:
            p = self._conv(x, w)
        y = self.bn(p)
        if s.fbs:
            sal = self.pred(x.mean(dim=(2, 3)))
            self.saliency = sal
            top = sal.topk(self.keep, dim=1).indices
            hard = torch.zeros_like(sal).scatter_(1, top, 1.0)
            soft = torch.sigmoid(sal)
            m = hard + soft - soft.detach()
            y = y * m[:, :, None, None]
        return y


class GatedResNet(nn.Module):
    """ResNet-8 following :func:`cgaccel.train.arch.resnet8_specs`, then global average pool
    and a linear classifier.

    Parameters
    ----------
    widths, groups, fbs : see :func:`resnet8_specs`.
    fbs_keep : float
        FBS kept fraction of output channels.
    num_classes : int
        Classifier outputs.
    """

    def __init__(self, widths=(16, 32, 64), groups=4, fbs=False, fbs_keep=0.5, num_classes=10,
                 gate_temp=1.0):
        super().__init__()
        self.specs = resnet8_specs(tuple(widths), groups, fbs)
        self.layers = nn.ModuleDict(
            {s.name.replace(".", "_"): GatedConv(s, fbs_keep, gate_temp) for s in self.specs})
        self.fc = nn.Linear(widths[-1], num_classes)

    def units(self):
        """(spec, GatedConv) pairs in execution order."""
        return [(s, self.layers[s.name.replace(".", "_")]) for s in self.specs]

    def forward(self, image, record=None):
        """Logits of ``image`` ``[N, C, H, W]``.

        If ``record`` is a dict, it receives per layer name the pre-residual layer output and
        per tensor name the tensor (float activations for calibration).
        """
        env = {"image": image}
        for spec, unit in self.units():
            y = unit(env[spec.input])
            if record is not None:
                record[spec.name] = y
            if spec.res is not None:
                y = y + env[spec.res]
            if spec.relu:
                y = F.relu(y)
            env[spec.output] = y
        if record is not None:
            record.update(env)
        last = env[self.specs[-1].output]
        return self.fc(last.mean(dim=(2, 3)))

    def gate_densities(self):
        """Straight-through gate densities of the gated layers from the last forward."""
        return [u.density for _, u in self.units() if u.density is not None]

    def saliencies(self):
        """Saliencies of the FBS layers from the last forward."""
        return [u.saliency for _, u in self.units() if u.saliency is not None]
