"""Self-checks for the notebooks' exercises.

Each `check_*` function runs the learner's code on several cases and compares what it *does*
with the reference implementation, never how it is written: every correct formulation passes.
It either prints one line starting with "✓", or raises `SelfCheckError` whose message names the
exercise, the case, what was expected, what came back, and a hint naming the likely mistake.

Errors raised *inside* the learner's code are reported the same way ("... raised IndexError:
...", chained `from None`), and a failing check shows the learner no frame from inside this
package (see `_common` for how). A check leaves the learner's random number generator as it was.

One module per exercise: `boxes` (notebook 1), `backbone` (2), `head` (3), `copy_layer` (4),
`upsampling` (5: the bilinear kernel and the skip fusion), `trimap` (6); `_common` holds what they share.
"""

from ._common import SelfCheckError
from .backbone import check_backbone
from .boxes import check_mask_to_box
from .copy_layer import check_copy_last_layer
from .head import check_classifier_head
from .trimap import check_trimap_to_mask
from .upsampling import check_bilinear_kernel, check_skip_fusion

__all__ = [
    "SelfCheckError",
    "check_mask_to_box",
    "check_backbone",
    "check_classifier_head",
    "check_copy_last_layer",
    "check_bilinear_kernel",
    "check_skip_fusion",
    "check_trimap_to_mask",
]
