"""pgtools: datasets and training for Progressive Growing of GANs."""

__version__ = "0.1.0"
