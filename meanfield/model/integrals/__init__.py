"""Gaussian integrals the models are built from, in closed form or by certified quadrature.

* :mod:`.hermite`: Hermite functions and the moments of a random cosine (Mehler's series);
* :mod:`.bivariate`: pair integrals of piecewise-linear activations at any correlation;
* :mod:`.circle`: the circle expansion of the anisotropic models' kernels (two blocks of inputs);
* :mod:`.ramp`: integrals of the ramp ``(sig z + b)_+``, the ReLU unit with an offset;
* :mod:`.smooth`: smooth activations written once for the PDE setup and the particles;
* :mod:`.quadrature`: tensor-product Gauss rules over an input law, their order by convergence.
"""
