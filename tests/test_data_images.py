"""Every mode Pillow opens reaches the model with the right pixel values, written as real files."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from resnetkit.data import DatasetError
from resnetkit.data.images import max_image_pixels, read_image, set_max_image_pixels

FASHION = sorted((Path(__file__).parents[1] / "docs" / "results" / "gradcam" / "inputs").glob("*.png"))
GRAY = (np.arange(24 * 32).reshape(24, 32) % 256).astype(np.uint8)
RGB = np.stack([GRAY, 255 - GRAY, np.roll(GRAY, 7, axis=1)], axis=-1)


def _save(img: Image.Image, path: Path) -> Path:
    img.save(path)
    return path


def _gray(path, mode="L"):
    return read_image(path, mode).numpy()


@pytest.mark.parametrize(
    "name,make",
    [
        ("i16.png", lambda: Image.fromarray(GRAY.astype(np.uint16) * 257)),  # I;16, little-endian
        ("i16b.tif", lambda: Image.fromarray((GRAY.astype(np.uint16) * 257).astype(">u2"))),  # I;16B
        ("i32.tif", lambda: Image.fromarray(GRAY.astype(np.int32) * 257)),  # I
        ("f01.tif", lambda: Image.fromarray(GRAY.astype(np.float32) / 255)),  # F in [0, 1]
        ("f255.tif", lambda: Image.fromarray(GRAY.astype(np.float32))),  # F in [0, 255]
        ("la.png", lambda: Image.fromarray(np.stack([GRAY, np.full_like(GRAY, 255)], -1), "LA")),
    ],
)
def test_wide_and_alpha_grayscale_modes_scale_to_8_bits(tmp_path, name, make):
    path = _save(make(), tmp_path / name)
    np.testing.assert_array_equal(_gray(path)[0], GRAY)
    assert read_image(path, "RGB").shape == (3, *GRAY.shape)


def test_a_16_bit_gradient_is_scaled_not_clipped(tmp_path):
    ramp = np.linspace(0, 65535, 256 * 16).astype(np.uint16).reshape(16, 256)
    path = _save(Image.fromarray(ramp), tmp_path / "ramp.png")
    assert Image.open(path).mode == "I;16"
    assert abs(float(_gray(path).mean()) - 127.5) < 0.6  # clipping gave 254.5


def test_bilevel_palette_and_colour_modes(tmp_path):
    bits = _save(Image.fromarray(GRAY > 127), tmp_path / "bits.png")
    assert Image.open(bits).mode == "1"
    np.testing.assert_array_equal(_gray(bits)[0], np.where(GRAY > 127, 255, 0))

    rgb = Image.fromarray(RGB)
    np.testing.assert_array_equal(read_image(_save(rgb, tmp_path / "rgb.png")).permute(1, 2, 0).numpy(), RGB)
    for mode, name, tolerance in (("CMYK", "cmyk.tif", 0), ("YCbCr", "ycbcr.tif", 3)):
        path = _save(rgb.convert(mode), tmp_path / name)
        assert Image.open(path).mode == mode
        got = read_image(path).permute(1, 2, 0).numpy().astype(int)
        assert np.abs(got - RGB).max() <= tolerance, mode


def test_transparency_is_composited_onto_black(tmp_path):
    alpha = np.where(GRAY > 100, 255, 0).astype(np.uint8)
    rgba = _save(Image.fromarray(np.dstack([RGB, alpha]), "RGBA"), tmp_path / "rgba.png")
    expected = np.where(alpha[..., None] > 0, RGB, 0)
    np.testing.assert_array_equal(read_image(rgba).permute(1, 2, 0).numpy(), expected)
    half = _save(Image.fromarray(np.dstack([RGB, np.full_like(GRAY, 128)]), "RGBA"), tmp_path / "half.png")
    got = read_image(half).permute(1, 2, 0).numpy().astype(int)
    assert np.abs(got - np.rint(RGB.astype(float) * 128 / 255)).max() <= 1

    palette = Image.fromarray(RGB).quantize(16)
    palette.info["transparency"] = 0
    path = tmp_path / "p.png"
    palette.save(path, transparency=0)
    assert Image.open(path).mode == "P" and "transparency" in Image.open(path).info
    got = read_image(path).permute(1, 2, 0).numpy()
    index = np.asarray(palette)
    assert (got[index == 0] == 0).all()  # the transparent entry is black
    opaque = np.asarray(palette.convert("RGB"))[index != 0]
    np.testing.assert_array_equal(got[index != 0], opaque)


def test_an_animated_gif_gives_its_first_frame(tmp_path):
    frames = [Image.fromarray(np.full((8, 8), v, np.uint8)).convert("P") for v in (40, 200, 90)]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, loop=0)
    assert Image.open(path).n_frames == 3
    assert set(_gray(path).ravel().tolist()) == {40}


def test_a_16_bit_or_transparent_copy_of_a_real_image_predicts_as_the_8_bit_one(tmp_path):
    from resnetkit.artifacts import load_model
    from resnetkit.infer import predict

    model = load_model("resnet20.fashion_mnist")
    copies = []
    for src in FASHION:
        pixels = np.asarray(Image.open(src).convert("L"))
        copies.append(_save(Image.fromarray(pixels.astype(np.uint16) * 257), tmp_path / f"{src.stem}-16.png"))
        opaque = np.dstack([pixels, np.full_like(pixels, 255)])
        copies.append(_save(Image.fromarray(opaque, "LA"), tmp_path / f"{src.stem}-la.png"))
    eight = predict(model, FASHION, top_k=3)
    wide = predict(model, copies, top_k=3)
    for ref, a, b in zip(eight, wide[0::2], wide[1::2], strict=True):
        assert a.classes == b.classes == ref.classes
        assert a.probs == pytest.approx(ref.probs, abs=1e-6) and b.probs == pytest.approx(ref.probs, abs=1e-6)


def test_the_pixel_limit_refuses_with_the_flag_to_raise_it(tmp_path):
    path = _save(Image.fromarray(GRAY), tmp_path / "big.png")
    try:
        set_max_image_pixels(100)
        with pytest.raises(DatasetError, match=r"32x24 \(768 pixels\).*--max-image-pixels"):
            read_image(path)
    finally:
        set_max_image_pixels(None)
    assert max_image_pixels() > 10**7 and read_image(path).shape == (3, 24, 32)


@pytest.mark.parametrize(
    "content,needle",
    [(b"", "unreadable image"), (b"not an image at all", "unreadable image"), (None, "no such image file")],
)
def test_bad_files_are_one_line_errors(tmp_path, content, needle):
    path = tmp_path / "x.png"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DatasetError, match=needle) as info:
        read_image(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_a_truncated_png_is_refused(tmp_path):
    good = _save(Image.fromarray(RGB), tmp_path / "good.png").read_bytes()
    path = tmp_path / "cut.png"
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(DatasetError, match=r"cut.png: unreadable image"):
        read_image(path)
    assert torch.equal(read_image(tmp_path / "good.png"), read_image(tmp_path / "good.png"))
