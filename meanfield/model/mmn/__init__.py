"""Mei, Montanari and Nguyen's (PNAS 2018) Gaussian-mixture classification models.

* :mod:`.isotropic`: the isotropic model on its reduced coordinates, with
  :mod:`.isotropic_pairs` (its exact V, U and grad Psi for a set of units in ``R^d``);
* :mod:`.anisotropic`: variable selection, with :mod:`.anisotropic_pairs` (full space);
* :mod:`.relu_isotropic`: the isotropic data learnt by ReLU units with output weight and offset;
* :mod:`.relu_selection`: variable selection with ReLU units, as published, with
  :mod:`.relu_selection_pairs` (its exact risk and gradient for N units).
"""
