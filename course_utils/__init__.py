"""Reference implementations for the FCN course: models, synthetic data, metrics, training, plots.

The names the notebooks use most are importable from here; the modules hold the rest. They are
imported on first use, so that `import course_utils.paths` (and the tools that only need paths:
student.py, run_notebooks.py) does not load torch.
"""

import importlib

#: Each name offered here, and the module of course_utils that defines it.
_EXPORTS = {
    "CLASSES": "data",
    "NUM_CLASSES": "data",
    "ShapesDataset": "data",
    "ShapesScenes": "data",
    "confusion_matrix": "metrics",
    "iou_per_class": "metrics",
    "mean_iou": "metrics",
    "pixel_accuracy": "metrics",
    "VGG11Backbone": "models",
    "VGG11Classifier": "models",
    "VGG11FCN": "models",
    "set_language": "i18n",
    "tr": "i18n",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
