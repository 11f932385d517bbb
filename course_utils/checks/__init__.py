"""Self-checks for the notebooks' exercises.

Each `check_*` function runs the learner's code on several cases and compares what it *does*
with the reference implementation, never how it is written: every correct formulation passes.
It either prints one line starting with "✓", or raises `SelfCheckError` whose message names the
exercise, the case, what was expected, what came back, and a hint naming the likely mistake.

Errors raised *inside* the learner's code are reported the same way ("... raised IndexError:
...", chained `from None`), and a failing check shows the learner no frame from inside this
package (see `_common` for how). A check leaves the learner's random number generator as it was.

One module per exercise, numbered through the course:

    notebook 1   exercise 1   boxes            check_mask_to_box
    notebook 2   exercise 2   backbone         check_backbone
                 exercise 3   receptive_field  check_receptive_field
    notebook 3   exercise 4   head             check_classifier_head
                 exercise 5   training_step    check_training_step
    notebook 4   exercise 6   copy_layer       check_copy_last_layer
                 exercise 7   flatten_head     check_linear_to_conv
                 exercise 8   mean_iou         check_mean_iou
    notebook 5   exercise 9   upsampling       check_bilinear_kernel
                 exercise 10  upsampling       check_transposed_padding
                 exercise 11  upsampling       check_skip_fusion
    notebook 6   exercise 12  trimap           check_trimap_to_mask

`_common` holds what they share.
"""

from ._common import SelfCheckError
from .backbone import check_backbone
from .boxes import check_mask_to_box
from .copy_layer import check_copy_last_layer
from .flatten_head import check_linear_to_conv
from .head import check_classifier_head
from .mean_iou import check_mean_iou
from .receptive_field import check_receptive_field
from .training_step import check_training_step
from .trimap import check_trimap_to_mask
from .upsampling import check_bilinear_kernel, check_skip_fusion, check_transposed_padding

__all__ = [
    "SelfCheckError",
    "check_mask_to_box",
    "check_backbone",
    "check_receptive_field",
    "check_classifier_head",
    "check_training_step",
    "check_copy_last_layer",
    "check_linear_to_conv",
    "check_mean_iou",
    "check_bilinear_kernel",
    "check_transposed_padding",
    "check_skip_fusion",
    "check_trimap_to_mask",
]
