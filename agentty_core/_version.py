"""The package version, apart from the package root so that any module can read it without
importing the facade (and through it `session` and `client`)."""

__version__ = "0.1.0"
