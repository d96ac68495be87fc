"""Training, evaluation and the (torch-free) checkpoint format of the float network.

Checkpoint: one ``.npz`` holding every float parameter and batch-norm statistic of
:class:`~cgaccel.train.nets.GatedResNet` as float16 (key = state-dict name) plus ``meta``, a JSON
string with the constructor arguments and the training settings. After training the weights are
rounded to float16 *before* the float accuracy is measured and the int8 export is made, so the
shipped checkpoint reproduces both exactly.
"""

import json
import math
import time

import numpy as np
import torch
from torch.nn import functional as F

from .data import INPUT_SCALE, load_digits_split, quantize_pixels
from .nets import GatedResNet

__all__ = ["TrainConfig", "train", "evaluate", "save_checkpoint", "load_checkpoint",
           "to_input"]


class TrainConfig:
    """Training settings (all have defaults that produce the shipped models)."""

    def __init__(self, *, widths=(16, 32, 64), groups=4, fbs=False, fbs_keep=0.5,
                 epochs=60, batch=64, lr=3e-3, weight_decay=5e-4, seed=1,
                 target_density=0.3, gate_weight=2.0, sal_weight=1e-4, gate_temp=1.0,
                 threads=2):
        self.widths = tuple(widths)
        self.groups = groups
        self.fbs = fbs
        self.fbs_keep = fbs_keep
        self.epochs = epochs
        self.batch = batch
        self.lr = lr
        self.weight_decay = weight_decay
        self.seed = seed
        self.target_density = target_density
        self.gate_weight = gate_weight
        self.sal_weight = sal_weight
        self.gate_temp = gate_temp
        self.threads = threads

    def to_dict(self):
        return dict(vars(self), widths=list(self.widths))

    def model_kwargs(self):
        return {"widths": list(self.widths), "groups": self.groups, "fbs": self.fbs,
                "fbs_keep": self.fbs_keep, "gate_temp": self.gate_temp}


def to_input(pixels):
    """Float network input ``[N, 1, 8, 8]`` from digits pixels: the dequantized int8 input."""
    q = quantize_pixels(pixels).astype(np.float32) * np.float32(INPUT_SCALE)
    return torch.from_numpy(q[:, None, :, :])


def _shift_batch(x, gen):
    """Shift every image by -1..1 pixels in each direction (zero fill)."""
    n, _, h, w = x.shape
    padded = F.pad(x, (1, 1, 1, 1))
    off = torch.randint(0, 3, (n, 2), generator=gen)
    out = torch.empty_like(x)
    for dy in range(3):
        for dx in range(3):
            sel = (off[:, 0] == dy) & (off[:, 1] == dx)
            if sel.any():
                out[sel] = padded[sel, :, dy:dy + h, dx:dx + w]
    return out


@torch.no_grad()
def evaluate(model, x, labels, batch=512):
    """Accuracy (correct count, total) and mean gate density per gated layer, eval mode."""
    model.eval()
    correct = 0
    dens = None
    for i in range(0, len(x), batch):
        logits = model(x[i:i + batch])
        correct += int((logits.argmax(1) == labels[i:i + batch]).sum())
        d = [float(v) * len(logits) for v in model.gate_densities()]
        dens = d if dens is None else [a + b for a, b in zip(dens, d, strict=True)]
    return correct, len(x), [v / len(x) for v in (dens or [])]


def train(cfg, log=print):
    """Train a :class:`GatedResNet` on the digits training split.

    Returns
    -------
    GatedResNet
        In eval mode, weights already rounded to float16 precision.
    """
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    torch.use_deterministic_algorithms(True)
    gen = torch.Generator().manual_seed(cfg.seed)
    data = load_digits_split()
    x = to_input(data["train_pixels"])
    y = torch.from_numpy(data["train_labels"].astype(np.int64))
    xt = to_input(data["test_pixels"])
    yt = torch.from_numpy(data["test_labels"].astype(np.int64))

    model = GatedResNet(**cfg.model_kwargs())
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    other = [p for n, p in model.named_parameters() if p.ndim <= 1]
    opt = torch.optim.Adam([{"params": decay, "weight_decay": cfg.weight_decay},
                            {"params": other, "weight_decay": 0.0}], lr=cfg.lr)
    steps = cfg.epochs * math.ceil(len(x) / cfg.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps)
    t0 = time.perf_counter()
    fbs_units = [u for s, u in model.units() if s.fbs]
    ramp = max(1, int(0.3 * cfg.epochs))
    for epoch in range(cfg.epochs):
        # Dropping half the channels of an untrained network at once destabilizes it: anneal.
        frac = 1.0 - (1.0 - cfg.fbs_keep) * min(1.0, epoch / ramp)
        for u in fbs_units:
            u.set_keep(frac)
        model.train()
        perm = torch.randperm(len(x), generator=gen)
        tot = ce_sum = 0.0
        for i in range(0, len(x), cfg.batch):
            idx = perm[i:i + cfg.batch]
            xb = _shift_batch(x[idx], gen)
            logits = model(xb)
            ce = F.cross_entropy(logits, y[idx])
            loss = ce
            dens = model.gate_densities()
            if dens:
                loss = loss + cfg.gate_weight * sum((d - cfg.target_density) ** 2 for d in dens)
            sal = model.saliencies()
            if sal:
                loss = loss + cfg.sal_weight * sum(s.abs().mean() for s in sal)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            _clamp_bn(model)
            tot += len(idx)
            ce_sum += ce.item() * len(idx)
        if epoch % 10 == 9 or epoch == cfg.epochs - 1:
            c, n, d = evaluate(model, xt, yt)
            log(f"epoch {epoch + 1:3d}  loss {ce_sum / tot:.4f}  test {c}/{n}  "
                f"density {' '.join(f'{v:.2f}' for v in d)}  {time.perf_counter() - t0:.1f} s")
    for u in fbs_units:
        u.set_keep(cfg.fbs_keep)
    _round_fp16(model)
    model.eval()
    return model


@torch.no_grad()
def _clamp_bn(model):
    # A positive BN scale keeps the folded requant multiplier positive and the gate comparison
    # in the "greater than" direction after folding.
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d) and m.affine:
            m.weight.clamp_(min=1e-2)


@torch.no_grad()
def _round_fp16(model):
    for t in model.state_dict().values():
        if t.is_floating_point():
            t.copy_(t.half().float())


def save_checkpoint(model, path, meta):
    """Write ``model`` (float16) and ``meta`` (JSON-able dict, must hold ``model_kwargs``)."""
    arrays = {k: v.detach().numpy().astype(np.float16)
              for k, v in model.state_dict().items() if v.is_floating_point()}
    arrays["meta"] = np.array(json.dumps(meta, sort_keys=True))
    np.savez_compressed(path, **arrays)


def load_checkpoint(path):
    """Rebuild the model (eval mode) and its meta dict from a checkpoint."""
    with np.load(path, allow_pickle=False) as f:
        meta = json.loads(str(f["meta"]))
        model = GatedResNet(**meta["model_kwargs"])
        state = model.state_dict()
        for k in state:
            if state[k].is_floating_point():
                state[k] = torch.from_numpy(f[k].astype(np.float32))
        model.load_state_dict(state)
    model.eval()
    return model, meta
