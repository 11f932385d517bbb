"""Shared test settings: figures render off-screen and never open a window."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")
