"""Your own photo through notebook 6's FCN: any file or upload, any size, shown with a class legend.

    image, mask = segment_photo(fcn, "my_cat.jpg", shorter_side=183)   image (3, H, W) in [0, 1], mask (H, W)
    show_photo(image, mask)                              the overlay, with a legend of the classes found
    display(PhotoUpload(fcn, shorter_side=183).widget)   a FileUpload button that does both

An FCN takes any size, but it recognises things best at the sizes it was trained on: a pet that
fills twice as many pixels as in training looks like nothing it has seen. So a photo is scaled
(up or down) until its shorter side is `shorter_side`, the training photos' own scale
(pretrained.resize_size(image_size)). Without it, a photo is only scaled down (never up) until its
longer side is at most `max_side`; max_side also caps the scaled photo, since a very wide photo at
the training scale would take minutes on a CPU. The photo's shape is always kept: a panorama so
long that its shorter side would fall under the 32 pixels the FCN needs is refused (ValueError,
naming the max_side it would need), never stretched.

read_photo turns the photo upright by its EXIF orientation (as a phone shows it), reads a 16-bit
photo on its full 0..65535 scale, and refuses, naming the file: a truncated or damaged file, one
that is no image, and one claiming more pixels than Pillow's limit (PIL.Image.MAX_IMAGE_PIXELS,
about 89 million: a "decompression bomb").
"""

from __future__ import annotations

import io
import math
import numbers
import threading
from pathlib import Path

import numpy as np
import torch

from .data import MIN_IMAGE_SIZE
from .i18n import tr
from .pets import SPECIES
from .pretrained import normalize
from .train import predict

#: The longer side a photo is scaled down to, at most (about 1 s for the backbone on 2 CPU cores).
MAX_SIDE = 448


class PhotoError(ValueError):
    """A photo file that cannot be used; the message names the file, the problem and what to do."""


#: Held while Pillow's size limit is lifted to read a header (see _open_image).
_PILLOW_LIMIT_LOCK = threading.Lock()

#: Pillow's modes for one channel of 16-bit values (a 16-bit grey PNG opens as I;16, or as I
#: before Pillow 10): read on the 0..65535 scale, where convert("RGB") would clip them at 255.
SIXTEEN_BIT_MODES = {"I", "I;16", "I;16L", "I;16B", "I;16N"}


def check_pixels(name: str, value) -> int:
    """`value` as an int if it is a whole number of pixels the FCN can take (at least 32), else a
    ValueError naming `name`: the one check of max_side and shorter_side."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < MIN_IMAGE_SIZE:
        raise ValueError(
            tr(
                "{name} must be a whole number of pixels, at least {minimum}, got {value!r}",
                name=name,
                minimum=MIN_IMAGE_SIZE,
                value=value,
            )
        )
    return int(value)


def _check_sizes(max_side, shorter_side) -> tuple[int, int | None]:
    """(max_side, shorter_side) checked by check_pixels; shorter_side may be None."""
    shorter_side = None if shorter_side is None else check_pixels("shorter_side", shorter_side)
    return check_pixels("max_side", max_side), shorter_side


def read_photo(source, name: str | None = None):
    """A photo as an RGB PIL.Image, upright, from a path (str or Path) or the file's bytes (an upload).

    name: what messages call the file (default: its path, or "the uploaded file" for bytes).
    A missing, truncated, damaged or oversized file, or one that is not an image, is a ValueError
    saying which file, what is wrong and what to do.
    """
    from PIL import ImageOps

    if isinstance(source, (bytes, bytearray, memoryview)):
        file, name = io.BytesIO(bytes(source)), name or tr("the uploaded file")
    else:
        path = Path(source).expanduser()
        if not path.is_file():
            raise ValueError(
                tr("no photo at {path}: check the path (relative paths start in {cwd})", path=path, cwd=Path.cwd())
            )
        file, name = path, name or str(path)
    try:
        with _open_image(file, name) as image:
            image.load()
            return _as_rgb(ImageOps.exif_transpose(image))
    except PhotoError:  # already says which file and what is wrong
        raise
    except Exception as error:  # OSError, SyntaxError, EOFError, Pillow's own ValueError, ...: a damaged file
        raise PhotoError(_unreadable(name, error)) from None


def _open_image(file, name: str):
    """Image.open(file), having checked its size against Pillow's limit ourselves, so that the
    message can give the size the file claims (Pillow's own check only warns, or raises, with a
    pixel count). Only the header is read here: a bomb is refused before it is decoded."""
    from PIL import Image

    with _PILLOW_LIMIT_LOCK:  # two overlapping calls must not leave the limit off for good
        limit = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None  # for this header only, restored at once
        try:
            image = Image.open(file)
        finally:
            Image.MAX_IMAGE_PIXELS = limit
    width, height = image.size
    if limit is not None and width * height > limit:
        image.close()
        raise PhotoError(
            tr(
                "{name} claims to be {width}x{height} pixels ({millions:.0f} million), more than "
                "Pillow reads safely ({limit} pixels, PIL.Image.MAX_IMAGE_PIXELS): a damaged or hostile file "
                "(a decompression bomb), or a huge scan. Scale it down (to a few thousand pixels a side) and try again",
                name=name,
                width=width,
                height=height,
                millions=width * height / 1e6,
                limit=limit,
            )
        )
    return image


def _unreadable(name: str, error: Exception) -> str:
    """What to tell the learner about a file Pillow failed on with `error`."""
    from PIL import UnidentifiedImageError

    if isinstance(error, UnidentifiedImageError):
        return tr("{name} is not an image Pillow can read: try a JPEG or PNG", name=name)
    if isinstance(error, PermissionError):
        return tr("{name} cannot be read: permission denied", name=name)
    if "truncated" in str(error).lower():
        return tr(
            "{name} is truncated: the file ends before the image does, as after an interrupted download "
            "or copy: download or export it again",
            name=name,
        )
    return tr(
        "{name} is damaged, or in a form Pillow cannot decode ({error_type}: {error}): "
        "open it in an image viewer and re-save it as JPEG or PNG, or try another photo",
        name=name,
        error_type=type(error).__name__,
        error=error,
    )


def _as_rgb(photo):
    """A PIL image of any mode as RGB; one of 16-bit values scaled from 0..65535 to 0..255."""
    from PIL import Image

    if photo.mode in SIXTEEN_BIT_MODES:
        values = np.asarray(photo, dtype=np.float64)
        photo = Image.fromarray(np.round(np.clip(values, 0, 65535) * (255 / 65535)).astype(np.uint8))  # mode L
    return photo if photo.mode == "RGB" else photo.convert("RGB")


def photo_tensor(photo, max_side: int = MAX_SIDE, shorter_side: int | None = None) -> torch.Tensor:
    """PIL photo (any mode) -> float (3, H, W) in [0, 1], scaled (keeping its shape) so that its
    shorter side is shorter_side (None: only scaled down, never up), and in any case its longer side
    at most max_side.

    ValueError: max_side or shorter_side not a whole number >= 32; a photo under 32 pixels on a
    side; a photo so long that its shorter side would fall under 32 at max_side (it would need to
    be stretched: crop it, or pass the larger max_side the message names).
    """
    from torchvision.transforms import functional as F

    max_side, shorter_side = _check_sizes(max_side, shorter_side)
    width, height = photo.size
    if min(width, height) < MIN_IMAGE_SIZE:
        raise ValueError(
            tr("the photo is {width}x{height} pixels; the FCN needs at least 32x32", width=width, height=height)
        )
    scale = 1.0 if shorter_side is None else shorter_side / min(width, height)
    scale = min(scale, max_side / max(width, height))
    size = round(height * scale), round(width * scale)  # (H, W): one scale for both, the shape kept
    if min(size) < MIN_IMAGE_SIZE:
        needed = math.ceil(MIN_IMAGE_SIZE * max(width, height) / min(width, height))
        ratio = max(width, height) / min(width, height)
        if width > height:
            proportion = tr("{ratio:.0f} times as wide as tall", ratio=ratio)
        else:
            proportion = tr("{ratio:.0f} times as tall as wide", ratio=ratio)
        raise ValueError(
            tr(
                "the photo is {width}x{height} pixels, {proportion}: with its longer side at max_side={max_side} "
                "its shorter side would be {shorter} pixels, under the {minimum} the FCN needs, and it "
                "is never stretched. Crop it, or pass max_side={needed} or more (slower)",
                width=width,
                height=height,
                proportion=proportion,
                max_side=max_side,
                shorter=min(size),
                minimum=MIN_IMAGE_SIZE,
                needed=needed,
            )
        )
    photo = _as_rgb(photo)
    if scale != 1:
        photo = F.resize(photo, list(size), antialias=True)
    return F.to_tensor(photo)


def segment_photo(
    fcn: torch.nn.Module, source, max_side: int = MAX_SIDE, shorter_side: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run `fcn` (a VGG11SkipFCN on the ImageNet backbone) on a photo file or its bytes.

    Returns (image (3, H, W) in [0, 1], the photo as scaled by photo_tensor; mask (H, W) int64 with
    0 background and k + 1 for SPECIES[k]), the mask being the argmax of the FCN's scores.
    shorter_side: the training scale (pretrained.resize_size(image_size)); see the module docstring.
    A bad file or size is a ValueError (read_photo, photo_tensor).
    """
    _check_sizes(max_side, shorter_side)  # before reading the photo
    return _segment(fcn, photo_tensor(read_photo(source), max_side, shorter_side))


def _segment(fcn: torch.nn.Module, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    scores = predict(fcn, normalize(image).unsqueeze(0), batch_size=1)  # (1, K, H, W), in eval mode
    return image, scores[0].argmax(dim=0)


def show_photo(image: torch.Tensor, mask: torch.Tensor, title: str | None = None, size: float = 4.0):
    """The photo with its mask coloured over it and a legend of the classes it shows; returns the Figure.

    The title is shown as written: a `$` in a file name is not read as the start of maths.
    """
    from .viz import show_images

    titles = [title.replace("$", r"\$")] if title else None  # \$: a literal $ for matplotlib
    return show_images([image], [mask], titles=titles, ncols=1, size=size, class_names=SPECIES)


class PhotoUpload:
    """A FileUpload button, and below it the figure of the last photo uploaded (or why it failed).

    display(PhotoUpload(fcn).widget) in a notebook. `.upload` is the FileUpload, `.result` the last
    (image, mask), or the message saying why the last upload failed: the tests set `.upload.value`
    as a browser would and read it. max_side and shorter_side as for segment_photo.
    """

    def __init__(self, fcn: torch.nn.Module, max_side: int = MAX_SIDE, shorter_side: int | None = None):
        import ipywidgets as widgets

        self.max_side, self.shorter_side = _check_sizes(max_side, shorter_side)
        self.fcn, self.result = fcn, None
        self.upload = widgets.FileUpload(accept="image/*", multiple=False, description=tr("Your photo"))
        self.output = widgets.Output()
        self.upload.observe(self.on_upload, names="value")
        self.widget = widgets.VBox([self.upload, self.output])

    def on_upload(self, change) -> None:
        """Segment the uploaded file and show it; a file that fails (not a photo, damaged, too
        large or too long): its message instead, the previous photo gone."""
        import matplotlib.pyplot as plt

        if not change["new"]:
            return
        file = change["new"][0]
        self.result = None
        self.output.clear_output()
        with self.output:
            try:
                photo = read_photo(file["content"], name=file["name"])
                self.result = image, mask = _segment(self.fcn, photo_tensor(photo, self.max_side, self.shorter_side))
            except ValueError as error:
                self.result = str(error)
                print(error)
                return
            show_photo(
                image,
                mask,
                title=tr("{name} ({width}x{height})", name=file["name"], width=image.shape[2], height=image.shape[1]),
            )
            plt.show()
