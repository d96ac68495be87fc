"""Verilog simulation models of the vendor primitives the synthesis platform instantiates."""

from importlib import resources

__all__ = ["model_sources"]


def model_sources():
    """Paths of the Verilog models (add them to a simulator's sources next to the design)."""
    return [resources.files(__name__).joinpath("MULT18X18D.v")]
