"""newsflash: a monthly partner newsletter assembled from item files and sent exactly once."""

__version__ = "0.1.0"
