"""Benchmarks: engine-only RTL cycles (:mod:`.engine`), the analytical cycle model
(:mod:`.cycle_model`), the SCALE-Sim comparison (:mod:`.scalesim`) and the per-layer ResNet-18
table behind ``cgaccel bench`` (:mod:`.network`, :mod:`.cli`, :mod:`.plot`)."""
