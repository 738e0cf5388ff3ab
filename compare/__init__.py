"""compare: LLN / CLT / error-scaling studies, figures, the ``meanfield`` command line, and the
Python API for notebooks (:mod:`compare.api`: ``api.run`` and ``api.study`` run a config as
``meanfield run`` and ``meanfield study`` do and return the results as xarray objects,
``api.read`` reads a file written by either, ``api.plot`` draws the figures of
``meanfield plot``)."""
