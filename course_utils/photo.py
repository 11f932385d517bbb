"""Your own photo through notebook 6's FCN: any file or upload, any size, shown with a class legend.

    image, mask = segment_photo(fcn, "my_cat.jpg", shorter_side=183)   image (3, H, W) in [0, 1], mask (H, W)
    show_photo(image, mask)                              the overlay, with a legend of the classes found
    display(PhotoUpload(fcn, shorter_side=183).widget)   a FileUpload button that does both

An FCN takes any size, but it recognises things best at the sizes it was trained on: a pet that
fills twice as many pixels as in training looks like nothing it has seen. So a photo is scaled
(up or down) until its shorter side is `shorter_side`, the training photos' own scale
(pretrained.resize_size(image_size)). Without it, a photo is only scaled down (never up) until its
longer side is at most `max_side`; max_side also caps the scaled photo, since a very wide photo at
the training scale would take minutes on a CPU.
"""

from __future__ import annotations

import io
from pathlib import Path

import torch

from .data import MIN_IMAGE_SIZE
from .pets import SPECIES
from .pretrained import normalize
from .train import predict

#: The longer side a photo is scaled down to, at most (about 1 s for the backbone on 2 CPU cores).
MAX_SIDE = 448


def read_photo(source):
    """A photo as an RGB PIL.Image, from a path (str or Path) or the file's bytes (an upload).

    A missing file, or one that is not an image, is a ValueError saying which and what to do.
    """
    from PIL import Image, UnidentifiedImageError

    if isinstance(source, (bytes, bytearray, memoryview)):
        file, name = io.BytesIO(bytes(source)), "the uploaded file"
    else:
        path = Path(source).expanduser()
        if not path.is_file():
            raise ValueError(f"no photo at {path}: check the path (relative paths start in {Path.cwd()})")
        file, name = path, str(path)
    try:
        image = Image.open(file)
        image.load()
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(
            f"{name} is not an image Pillow can read ({type(error).__name__}): try a JPEG or PNG"
        ) from None
    return image.convert("RGB")


def photo_tensor(photo, max_side: int = MAX_SIDE, shorter_side: int | None = None) -> torch.Tensor:
    """PIL photo -> float (3, H, W) in [0, 1], scaled (keeping its shape) so that its shorter side is
    shorter_side (None: only scaled down, never up), and in any case its longer side at most
    max_side. A photo smaller than 32 pixels on a side is a ValueError."""
    from torchvision.transforms import functional as F

    if min(photo.size) < MIN_IMAGE_SIZE:
        raise ValueError(f"the photo is {photo.size[0]}x{photo.size[1]} pixels; the FCN needs at least 32x32")
    if shorter_side is not None and (
        isinstance(shorter_side, bool) or not isinstance(shorter_side, int) or shorter_side < MIN_IMAGE_SIZE
    ):
        raise ValueError(
            f"shorter_side must be a whole number of pixels, at least {MIN_IMAGE_SIZE}, got {shorter_side!r}"
        )
    scale = 1.0 if shorter_side is None else shorter_side / min(photo.size)
    scale = min(scale, max_side / max(photo.size))
    if scale != 1:
        size = (max(MIN_IMAGE_SIZE, round(photo.size[1] * scale)), max(MIN_IMAGE_SIZE, round(photo.size[0] * scale)))
        photo = F.resize(photo, list(size), antialias=True)
    return F.to_tensor(photo)


def segment_photo(
    fcn: torch.nn.Module, source, max_side: int = MAX_SIDE, shorter_side: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run `fcn` (a VGG11SkipFCN on the ImageNet backbone) on a photo file or its bytes.

    Returns (image (3, H, W) in [0, 1], the photo as scaled by photo_tensor; mask (H, W) int64 with
    0 background and k + 1 for SPECIES[k]), the mask being the argmax of the FCN's scores.
    shorter_side: the training scale (pretrained.resize_size(image_size)); see the module docstring.
    """
    image = photo_tensor(read_photo(source), max_side, shorter_side)
    scores = predict(fcn, normalize(image).unsqueeze(0), batch_size=1)  # (1, K, H, W), in eval mode
    return image, scores[0].argmax(dim=0)


def show_photo(image: torch.Tensor, mask: torch.Tensor, title: str | None = None, size: float = 4.0):
    """The photo with its mask coloured over it and a legend of the classes it shows; returns the Figure."""
    from .viz import show_images

    return show_images([image], [mask], titles=[title] if title else None, ncols=1, size=size, class_names=SPECIES)


class PhotoUpload:
    """A FileUpload button, and below it the figure of the last photo uploaded (or why it failed).

    display(PhotoUpload(fcn).widget) in a notebook. `.upload` is the FileUpload, `.result` the last
    (image, mask) or error message: the tests set `.upload.value` as a browser would and read it.
    """

    def __init__(self, fcn: torch.nn.Module, max_side: int = MAX_SIDE, shorter_side: int | None = None):
        import ipywidgets as widgets

        self.fcn, self.max_side, self.shorter_side, self.result = fcn, max_side, shorter_side, None
        self.upload = widgets.FileUpload(accept="image/*", multiple=False, description="Your photo")
        self.output = widgets.Output()
        self.upload.observe(self.on_upload, names="value")
        self.widget = widgets.VBox([self.upload, self.output])

    def on_upload(self, change) -> None:
        """Segment the uploaded file and show it (a file that is no photo: the message instead)."""
        import matplotlib.pyplot as plt

        if not change["new"]:
            return
        file = change["new"][0]
        self.output.clear_output()
        with self.output:
            try:
                self.result = image, mask = segment_photo(self.fcn, file["content"], self.max_side, self.shorter_side)
            except ValueError as error:
                self.result = str(error)
                print(error)
                return
            show_photo(image, mask, title=f"{file['name']} ({image.shape[2]}x{image.shape[1]})")
            plt.show()
