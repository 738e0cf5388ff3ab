"""Rotskoff and Vanden-Eijnden's (CPAM 2022) 3-spin benchmarks.

* :mod:`.sphere_kernel`: Experiment 1, Gaussian-kernel units on the sphere, in closed form;
* :mod:`.pspin`: Experiment 2, sigmoid units learning the 3-spin energy (particles only).
"""
