"""particles: finite-N SGD ensembles that run beside the PDE (see SPEC section 4)."""
