"""meanfield: grid solver for the mean-field distributional dynamics of two-layer networks."""

__version__ = "0.1.0"
