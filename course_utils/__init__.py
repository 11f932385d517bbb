"""Reference implementations for the FCN course: models, synthetic data, metrics, training, plots.

The names the notebooks use most are importable from here; the modules hold the rest.
"""

from .data import CLASSES, NUM_CLASSES, ShapesDataset, ShapesScenes
from .metrics import confusion_matrix, iou_per_class, mean_iou, pixel_accuracy
from .models import VGG11Backbone, VGG11Classifier, VGG11FCN

__all__ = [
    "CLASSES",
    "NUM_CLASSES",
    "ShapesDataset",
    "ShapesScenes",
    "confusion_matrix",
    "iou_per_class",
    "mean_iou",
    "pixel_accuracy",
    "VGG11Backbone",
    "VGG11Classifier",
    "VGG11FCN",
]
