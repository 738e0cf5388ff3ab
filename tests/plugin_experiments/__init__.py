"""Experiments defined outside the package, run by ``meanfield reproduce module:Attribute``."""
