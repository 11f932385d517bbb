"""Notebook 6's own-photo path (course_utils.photo) on the bad and odd files a learner may bring.

The files are made here with Pillow; the FCN, where one is needed at all, is a tiny untrained one.
"""

import io
import struct
import zlib
from datetime import datetime, timezone

import matplotlib
import numpy as np
import pytest
import torch
from PIL import Image

from course_utils.models import VGG11SkipFCN
from course_utils.photo import MAX_SIDE, PhotoUpload, photo_tensor, read_photo, segment_photo, show_photo

matplotlib.use("Agg")


def jpeg_bytes(image, **options):
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", **options)
    return buffer.getvalue()


def png_claiming(width, height):
    """A PNG whose header (IHDR) says width x height pixels: a few dozen bytes, no pixels behind it."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def upload(uploader, name, content):
    """Set the FileUpload's value as a browser does."""
    file = {"name": name, "type": "image/png", "size": len(content), "last_modified": datetime.now(timezone.utc)}
    uploader.upload.value = ({**file, "content": memoryview(content)},)


@pytest.fixture
def tiny_fcn():
    torch.manual_seed(0)
    return VGG11SkipFCN(num_classes=3, width=4)


# ---------------------------------------------------------------------------- damaged files


def test_a_truncated_photo_is_called_truncated(tmp_path):
    whole = jpeg_bytes(Image.effect_noise((300, 200), 60).convert("RGB"))
    cut = tmp_path / "holiday.jpg"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ValueError, match=r"holiday\.jpg is truncated.*download or export it again"):
        read_photo(cut)
    with pytest.raises(ValueError, match="the uploaded file is truncated"):
        read_photo(whole[: len(whole) // 2])
    png = io.BytesIO()
    Image.new("RGB", (300, 200), "teal").save(png, format="PNG")
    with pytest.raises(ValueError, match=r"cat\.png is truncated"):
        read_photo(png.getvalue()[:-30], name="cat.png")


def test_a_file_that_is_no_image_is_still_called_that(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a photo")
    with pytest.raises(ValueError, match=r"notes\.txt is not an image Pillow can read.*JPEG or PNG"):
        read_photo(notes)


def test_a_damaged_png_is_a_value_error_naming_the_file(tmp_path):
    png = io.BytesIO()
    Image.new("RGB", (64, 48), "teal").save(png, format="PNG")
    for start, bad in [(33, b"\0\0\0\0"), (50, b"\xc9;F\xc1")]:
        broken = bytearray(png.getvalue())  # IHDR at 8, IDAT at 33, its compressed pixels from 41
        broken[start : start + 4] = bad  # IDAT's length 0: SyntaxError; its pixels: OSError
        (tmp_path / "broken.png").write_bytes(bytes(broken))
        with pytest.raises(ValueError, match=r"broken\.png is damaged.*re-save it as JPEG or PNG"):
            read_photo(tmp_path / "broken.png")


def test_an_unreadable_file_says_so(tmp_path, monkeypatch):
    (tmp_path / "locked.jpg").write_bytes(jpeg_bytes(Image.new("RGB", (40, 40))))

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")  # as chmod 000 would, but the tests may run as root

    monkeypatch.setattr(Image, "open", refuse)
    with pytest.raises(ValueError, match=r"locked\.jpg cannot be read: permission denied"):
        read_photo(tmp_path / "locked.jpg")


# ---------------------------------------------------------------------------- decompression bombs


def test_a_decompression_bomb_is_refused_with_its_claimed_size(tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_claiming(40000, 40000))
    with pytest.raises(ValueError, match=r"bomb\.png claims to be 40000x40000 pixels"):
        read_photo(bomb)


def test_a_photo_over_pillows_limit_is_refused_not_warned_about(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)  # Pillow warns from 10 000 pixels, fails from 20 000
    png = io.BytesIO()
    Image.new("RGB", (150, 100), "teal").save(png, format="PNG")  # 15 000 pixels: only a warning
    with pytest.raises(ValueError, match=r"big\.png claims to be 150x100 pixels.*10000"):
        read_photo(png.getvalue(), name="big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 15_000)
    assert read_photo(png.getvalue()).size == (150, 100)  # at the limit: read
    assert Image.MAX_IMAGE_PIXELS == 15_000  # and Pillow's own limit left as it was


def test_the_upload_widget_shows_a_bomb_and_drops_the_previous_photo(tiny_fcn, capsys):
    uploader = PhotoUpload(tiny_fcn)
    good = io.BytesIO()
    Image.new("RGB", (64, 48), "teal").save(good, format="PNG")
    upload(uploader, "good.png", good.getvalue())
    assert uploader.result[0].shape == (3, 48, 64)
    upload(uploader, "huge.png", png_claiming(40000, 40000))
    assert isinstance(uploader.result, str) and "huge.png claims to be 40000x40000 pixels" in uploader.result
    assert "huge.png claims to be 40000x40000" in capsys.readouterr().out  # printed (into the Output widget)


def test_the_upload_widget_shows_a_truncated_file_by_its_name(tiny_fcn):
    uploader = PhotoUpload(tiny_fcn)
    whole = jpeg_bytes(Image.effect_noise((300, 200), 60).convert("RGB"))
    upload(uploader, "from_phone.jpg", whole[:2000])
    assert isinstance(uploader.result, str) and uploader.result.startswith("from_phone.jpg is truncated")


# ---------------------------------------------------------------------------- pixel formats and orientation


# 16-bit grey PNGs open in mode I;16 (in Pillow before 10: I, which Pillow writes only as TIFF)
@pytest.mark.parametrize("dtype, file", [(np.uint16, "scan.png"), (np.int32, "scan.tif")])
def test_a_16_bit_photo_is_scaled_not_clipped(tmp_path, dtype, file):
    values = np.full((40, 60), 16384, dtype=dtype)  # a quarter of 65535
    values[:, 30:] = 65535
    Image.fromarray(values).save(tmp_path / file)
    with Image.open(tmp_path / file) as stored:
        assert stored.mode in {"I;16", "I"}
    photo = read_photo(tmp_path / file)
    pixels = np.asarray(photo)
    assert photo.mode == "RGB" and pixels.shape == (40, 60, 3)
    assert np.all(pixels[:, :30] == 64) and np.all(pixels[:, 30:] == 255)  # 16384 / 65535 * 255 = 63.75
    image = photo_tensor(Image.fromarray(values))  # a 16-bit PIL image given directly
    assert image.shape == (3, 40, 60) and image[:, :, :30].mean().item() == pytest.approx(0.25, abs=0.01)


def test_a_phone_photo_is_turned_by_its_exif_orientation(tmp_path):
    stored = Image.new("RGB", (60, 40), "red")  # as the sensor stored it: left half red, right half blue
    stored.paste((0, 0, 255), (30, 0, 60, 40))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to show it upright
    (tmp_path / "portrait.jpg").write_bytes(jpeg_bytes(stored, exif=exif, quality=95))
    photo = read_photo(tmp_path / "portrait.jpg")
    assert photo.size == (40, 60)  # upright: taller than wide
    top, bottom = np.asarray(photo)[5, 20], np.asarray(photo)[55, 20]
    assert top[0] > 200 > top[2] and bottom[2] > 200 > bottom[0]  # the left side came to the top


# ---------------------------------------------------------------------------- sizes


def test_a_panorama_keeps_its_shape_or_is_refused_never_stretched():
    with pytest.raises(ValueError, match=r"4000x40 pixels.*Crop it, or pass max_side=3200 or more"):
        photo_tensor(Image.new("RGB", (4000, 40)))
    assert photo_tensor(Image.new("RGB", (4000, 40)), max_side=3200).shape == (3, 32, 3200)
    with pytest.raises(ValueError, match=r"40x4000 pixels.*max_side=3200 or more"):
        photo_tensor(Image.new("RGB", (40, 4000)))
    with pytest.raises(ValueError, match="2000x100 pixels"):  # at the training scale too
        photo_tensor(Image.new("RGB", (2000, 100)), shorter_side=183)
    for width, height in [(4000, 40), (2000, 100), (1000, 100), (900, 64), (640, 45), (3000, 200), (33, 999)]:
        for shorter_side in (None, 183):
            try:
                image = photo_tensor(Image.new("RGB", (width, height)), shorter_side=shorter_side)
            except ValueError as error:
                assert "max_side" in str(error)
                continue
            assert max(image.shape[1:]) <= MAX_SIDE and min(image.shape[1:]) >= 32
            assert image.shape[2] / image.shape[1] == pytest.approx(width / height, rel=0.03)  # rounding only


@pytest.mark.parametrize("wrong", [0, -5, 2.5, 20, True, "448", None])
def test_max_side_must_be_a_whole_number_of_at_least_32(tiny_fcn, wrong):
    with pytest.raises(ValueError, match=rf"max_side must be a whole number of pixels, at least 32, got {wrong!r}"):
        photo_tensor(Image.new("RGB", (100, 100)), max_side=wrong)
    with pytest.raises(ValueError, match="max_side must be a whole number of pixels"):
        segment_photo(tiny_fcn, b"not even read", max_side=wrong)
    with pytest.raises(ValueError, match="max_side must be a whole number of pixels"):
        PhotoUpload(tiny_fcn, max_side=wrong)
    assert photo_tensor(Image.new("RGB", (100, 100)), max_side=np.int64(64)).shape == (3, 64, 64)


# ---------------------------------------------------------------------------- the figure


@pytest.mark.parametrize("name", ["a$_$b.jpg", "$$.png", r"x$\frac$.jpg", "price $5 and $6.jpg", "one$.jpg"])
def test_a_file_name_with_dollars_is_shown_literally(name):
    import matplotlib.pyplot as plt

    figure = show_photo(torch.rand(3, 40, 60), torch.zeros(40, 60, dtype=torch.int64), title=name)
    figure.canvas.draw()  # maths in the title would be parsed (and fail) here
    title = figure.axes[0].title
    literal = figure.text(0, 0, name, fontsize=title.get_fontsize(), parse_math=False)
    assert title.get_window_extent().width == pytest.approx(literal.get_window_extent().width)
    plt.close(figure)
