"""A sample package that adds two convolution bounds to boundlab from outside (docs/extending.md)."""
