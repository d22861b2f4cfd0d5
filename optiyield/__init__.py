"""optiyield: yield-driven design of analog and RF circuits on ngspice."""

__version__ = "0.1.0"
