"""The generic low-dimensional teacher-student model on the full parameter grid (SPEC 2, item 3).

* :mod:`.model`: the model (V, U and gradients by quadrature over the input law);
* :mod:`.targets`: its named targets and teacher networks;
* :mod:`.entry`: its config entry (keys, builder, certified quadrature order; registers at import).
"""
