"""Shared test settings: figures render off-screen and never open a window.

`matplotlib.use` changes this process only. (Setting MPLBACKEND here would leak into the
notebook kernels that nbval starts from the same pytest run, and their figures would vanish.)
"""

import matplotlib

matplotlib.use("Agg")
