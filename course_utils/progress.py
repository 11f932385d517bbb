"""Progress bars whose output stays small however long the work takes.

Each redraw of a bar is a message from the kernel to the notebook. Jupyter clients such as nbval
read a cell's messages only after the cell has finished, and the queue between them holds about a
thousand: beyond that, messages are dropped, the cell's last output and its "idle" status among
them (nbval: "Timeout of 5 seconds exceeded waiting for output"). A limit on redraws per second
alone lets their number grow with the run time, so a slow or loaded machine overflows the queue.
"""

from __future__ import annotations

import math

from tqdm.auto import tqdm

#: A bar redraws at most this many times, however long the work takes (plus once per
#: set_description, e.g. once per epoch).
MAX_REDRAWS = 50


def progress_bar(total: int, description: str, unit: str, disable: bool = False) -> tqdm:
    """A tqdm bar over `total` steps that redraws at most about MAX_REDRAWS times.

    A redraw needs 1/MAX_REDRAWS of the work done since the last one (miniters) as well as half a
    second (mininterval); maxinterval=inf stops tqdm's monitor thread from lowering miniters
    when steps are slow, which would bring back a redraw per step.
    """
    return tqdm(
        total=total,
        desc=description,
        unit=unit,
        disable=disable,
        mininterval=0.5,
        miniters=max(1, math.ceil(total / MAX_REDRAWS)),
        maxinterval=math.inf,
    )
