"""Cube building: parameters, geometry and weighting kernels for MRS spectral cubes."""
