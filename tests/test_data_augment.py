import pytest
import torch
import torch.nn.functional as F

from resnetkit.data import AugmentConfig, augment_batch, random_crop, random_erasing, random_flip


def batch(n: int = 16, c: int = 3, h: int = 8, w: int = 10, dtype=torch.uint8) -> torch.Tensor:
    """Distinct values in 1..255 so every shift, flip or erased (zeroed) pixel is visible."""
    x = torch.randint(1, 256, (n, c, h, w), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    return x.to(dtype)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


FULL = AugmentConfig(pad=2, pad_mode="reflect", flip=True, erasing=0.5)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
@pytest.mark.parametrize("config", [FULL, AugmentConfig(pad=3), AugmentConfig(flip=True), AugmentConfig(erasing=1.0)])
def test_shape_dtype_and_determinism(dtype, config):
    x = batch(dtype=dtype)
    a, b = augment_batch(x, config, gen(1)), augment_batch(x, config, gen(1))
    assert a.shape == x.shape and a.dtype == dtype
    assert torch.equal(a, b)
    assert not torch.equal(a, augment_batch(x, config, gen(2)))


def test_crop_without_padding_is_identity():
    x = batch()
    assert torch.equal(random_crop(x, 0, generator=gen()), x)
    assert torch.equal(augment_batch(x, AugmentConfig(), gen()), x)


@pytest.mark.parametrize("mode, torch_mode", [("zeros", "constant"), ("reflect", "reflect")])
def test_each_crop_is_a_window_of_the_padded_image(mode, torch_mode):
    x, pad = batch(n=32), 2
    out = random_crop(x, pad, mode, gen())
    padded = F.pad(x.float(), (pad,) * 4, mode=torch_mode).to(torch.uint8)
    h, w = x.shape[-2:]
    offsets = []
    for sample, padded_sample in zip(out, padded, strict=True):
        matches = [
            (dy, dx)
            for dy in range(2 * pad + 1)
            for dx in range(2 * pad + 1)
            if torch.equal(sample, padded_sample[:, dy : dy + h, dx : dx + w])
        ]
        assert len(matches) == 1
        offsets.append(matches[0])
    assert len(set(offsets)) > 5


def test_flip_mirrors_exactly_the_chosen_samples():
    x = batch(n=64)
    out = random_flip(x, 0.5, gen())
    flipped = torch.tensor([torch.equal(o, s.flip(-1)) for o, s in zip(out, x, strict=True)])
    kept = torch.tensor([torch.equal(o, s) for o, s in zip(out, x, strict=True)])
    assert (flipped ^ kept).all() and 16 < int(flipped.sum()) < 48
    expected = torch.rand(64, generator=gen()) < 0.5
    assert torch.equal(flipped, expected)
    assert torch.equal(random_flip(x, 1.0, gen()), x.flip(-1))
    assert torch.equal(random_flip(x, 0.0, gen()), x)


def test_erasing_zeroes_one_rectangle_per_sample():
    x = batch(n=64, h=16, w=16)
    out = random_erasing(x, p=1.0, generator=gen())
    changed = (out != x).any(1)
    assert torch.equal(changed, (out == 0).all(1)) and torch.equal((out != x), changed[:, None].expand_as(x))
    for mask in changed:
        rows, cols = mask.any(1).nonzero().squeeze(1), mask.any(0).nonzero().squeeze(1)
        box = torch.zeros_like(mask)
        box[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1] = True
        assert torch.equal(mask, box)
        assert 0.02 * 256 - 8 <= int(mask.sum()) <= 0.33 * 256 + 16
    assert torch.equal(random_erasing(x, p=0.0, generator=gen()), x)
    some = random_erasing(x, p=0.5, generator=gen())
    assert 10 < sum(not torch.equal(a, b) for a, b in zip(some, x, strict=True)) < 54


def test_config_from_dict_rejects_unknown_keys_and_bad_values():
    assert AugmentConfig.from_dict({"pad": 4, "flip": True}) == AugmentConfig(pad=4, flip=True)
    with pytest.raises(ValueError, match=r"unknown augmentation key\(s\) \['padd'\]"):
        AugmentConfig.from_dict({"padd": 4})
    with pytest.raises(ValueError, match="pad_mode"):
        AugmentConfig(pad_mode="wrap")
    for pad in (-1, 2.5):
        with pytest.raises(ValueError, match="pad must be an int"):
            AugmentConfig(pad=pad)
    with pytest.raises(ValueError, match="probability"):
        AugmentConfig(erasing=1.5)
    with pytest.raises(ValueError, match="flip_mode must be one of random, alternate, got 'every'"):
        AugmentConfig(flip=True, flip_mode="every")
    with pytest.raises(ValueError, match="alternate flips need"):
        augment_batch(batch(), AugmentConfig(flip=True, flip_mode="alternate"))
    with pytest.raises(ValueError, match="reflect padding of 8"):
        random_crop(batch(), 8, "reflect")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    x = batch(dtype=torch.float32)
    cpu = augment_batch(x, FULL, gen(5))
    cuda = augment_batch(x.cuda(), FULL, gen(5))
    assert cuda.device.type == "cuda" and torch.equal(cuda.cpu(), cpu)
