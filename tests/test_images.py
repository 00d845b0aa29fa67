import numpy as np
import pytest
from PIL import Image

from shapekit.errors import InputError
from shapekit.io.images import image_size, read_image


def _rgb(height=20, width=30):
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (height, width, 3), dtype=np.uint8)


def test_truncated_jpeg_is_a_one_line_error(tmp_path):
    path = tmp_path / "photo.jpg"
    Image.fromarray(_rgb(200, 300)).save(path, quality=95)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError) as info:
        read_image(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "truncated" in message and "\n" not in message


def test_not_an_image_and_missing_file(tmp_path):
    bogus = tmp_path / "notes.png"
    bogus.write_text("hello")
    with pytest.raises(InputError, match="not a readable image"):
        read_image(bogus)
    with pytest.raises(InputError, match="not found"):
        read_image(tmp_path / "absent.jpg")


def test_rgba_is_composited_on_white(tmp_path):
    rgba = np.zeros((4, 5, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:, :2, 3] = 255  # left opaque red, right fully transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    image = read_image(tmp_path / "a.png")
    assert image.shape == (4, 5, 3) and image.dtype == np.uint8
    assert tuple(image[0, 0]) == (200, 0, 0) and tuple(image[0, 4]) == (255, 255, 255)


def test_16bit_png_is_scaled_to_8bit(tmp_path):
    gray16 = np.linspace(0, 4095, 64, dtype=np.uint16).reshape(8, 8)  # 12-bit data in a 16-bit file
    Image.fromarray(gray16).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    image = read_image(tmp_path / "deep.png")
    assert image.shape == (8, 8, 3) and image.dtype == np.uint8
    assert image.max() == 255 and image.min() == 0
    assert (np.diff(image[..., 0].ravel().astype(int)) >= 0).all()


def test_grayscale_and_palette_become_rgb(tmp_path):
    Image.fromarray(_rgb()[..., 0]).save(tmp_path / "g.png")
    Image.fromarray(_rgb()).convert("P").save(tmp_path / "p.png")
    for name in ("g.png", "p.png"):
        image = read_image(tmp_path / name)
        assert image.shape == (20, 30, 3)
    gray = read_image(tmp_path / "g.png")
    assert (gray[..., 0] == gray[..., 1]).all()


def test_exif_rotation_is_applied(tmp_path):
    pixels = np.zeros((20, 30, 3), np.uint8)
    pixels[12:, :8] = (250, 0, 0)  # a red block in the stored bottom-left corner
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    image.save(tmp_path / "r.jpg", exif=exif.tobytes(), quality=100)
    shown = read_image(tmp_path / "r.jpg")
    assert shown.shape == (30, 20, 3)
    assert image_size(tmp_path / "r.jpg") == (20, 30)
    assert read_image(tmp_path / "r.jpg", exif=False).shape == (20, 30, 3)
    # Orientation 6 turns the image clockwise for display: the stored bottom-left corner ends up top-left.
    assert shown[2, 2, 0] > 200 and shown[-3, -3, 0] < 50
