"""compare: LLN / CLT / error-scaling studies, figures and the ``meanfield`` command line."""
