"""What segmentation and detection share: the scenes (or other dense datasets), their meta, a
model that must be a dense one of the right task, and how a saved dense model meets its data
again (the run's own scene settings and seed) and images (each at its own size)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from ..artifacts import model_card
from ..data import DatasetError
from ..data.dense import SCENES, dense_splits, load_dense_dataset
from ..data.scenes import SceneDataset, SceneSpec
from ..models import Parts, create_model, is_model, model_task, trunk_parts
from .base import Prepared, Task, TensorSpec
from .inputs import fit_within

# A dense model runs on an image at its own size; past this longer side the image is shrunk
# first (and its prediction answered at its own size), so an upload's pixels bound its memory.
MAX_DENSE_SIDE = 1024


@dataclass
class DenseTask(Task):
    target: ClassVar[str]  # what each image comes with: "mask" or "boxes"

    scenes: SceneSpec = field(default_factory=SceneSpec)
    seed: int = 0

    def splits(self, name: str) -> tuple[str, ...]:
        return dense_splits(name)

    def load_dataset(self, name: str, split: str, data_dir: str | None, download: bool, image_size: int) -> Any:
        return load_dense_dataset(name, split, data_dir, download, self.scenes, self.seed, self.target, image_size)

    def dataset_meta(self, train: SceneDataset, name: str, image_size: int) -> dict[str, Any]:
        return {
            "name": name,
            "classes": list(train.classes),
            "mean": list(train.mean),
            "std": list(train.std),
            "in_chans": train.in_chans,
            "image_size": list(train.image_size),
            "task": self.name,
        }

    def check_model(self, model_name: str) -> None:
        if is_model(model_name) and model_task(model_name) != self.name:
            raise DatasetError(
                f"--model {model_name} is a {model_task(model_name)} model; --task {self.name} needs one of "
                f"`resnetkit info --task {self.name}`"
            )

    def build_model(self, model_name: str, meta: Mapping[str, Any], overrides: Mapping[str, Any]) -> nn.Module:
        self.check_model(model_name)
        options = {**self.model_defaults(meta), **overrides}
        return create_model(model_name, num_classes=len(meta["classes"]), in_chans=meta["in_chans"], **options)

    def model_defaults(self, meta: Mapping[str, Any]) -> dict[str, Any]:
        return {}

    def transfer_parts(self, model: nn.Module) -> Parts:
        """A dense model's stem and stages are those of the classifier it is built on (its
        ``body``); the head is everything else that learns: a segmenter's FCN or DeepLab head (and
        its auxiliary one), a detector's FPN and its box and class heads. ``--freeze backbone`` or
        ``--mode linear-probe`` trains those alone; ``--freeze stageK`` freezes the body's stem and
        stages 1..K, as for a classifier."""
        path = getattr(model, "body", None)
        if not isinstance(path, str):
            raise ValueError(f"transfer settings need a resnetkit dense model; a {type(model).__name__} has no body")
        head: list[nn.Module] = []
        node = model
        for name in path.split("."):  # every module beside the path down to the body is head
            head += [child for child_name, child in node.named_children() if child_name != name]
            node = node.get_submodule(name)
        return [*trunk_parts(node), ("head", head)]

    # ---- A saved dense model in use -----------------------------------------------------------------

    def prepare(self, image: torch.Tensor, name: str, model: Any) -> Prepared:
        size = (int(image.shape[-2]), int(image.shape[-1]))
        shown = fit_within(image, MAX_DENSE_SIDE)
        return Prepared(name, image, self.model_input(shown, model), size)

    def tensor_input(self, model: Any) -> TensorSpec | None:
        return TensorSpec("input", "FP32", (int(model.in_chans), -1, -1))

    def from_tensor(self, x: torch.Tensor, name: str, model: Any) -> Prepared:
        if x.dim() == 3 and max(x.shape[-2:]) > MAX_DENSE_SIDE:
            raise ValueError(f"an item of {x.shape[-1]}x{x.shape[-2]} pixels; at most {MAX_DENSE_SIDE} on a side")
        return super().from_tensor(x, name, model)

    def model_input(self, image: torch.Tensor, model: Any) -> torch.Tensor:
        """A uint8 image as the float input the model takes."""
        return image.float() / 255

    def eval_dataset(
        self, card: Any, model: Any, data: str | None, data_dir: str | None, split: str, source: str = "the model"
    ) -> Any:
        """The split of the data the run trained on: the garment scenes drawn again from the run's
        own scene settings and seed (so the test scenes are the ones its training measured), or
        its image folder at the size it trained at."""
        if data is not None:
            raise ValueError("--data: a segmentation or detection model is evaluated on the scenes it was trained on")
        size = int(card.data_config.get("image_size", 224))
        return load_dense_dataset(card.data or SCENES, split, data_dir, True, self.scenes, self.seed, self.target, size)

    def draw_truth(self, image: torch.Tensor, target: Any, classes: list[str] | None) -> Any:
        """A labelled image drawn as a prediction of its task is."""
        raise NotImplementedError

    def eval_loader(self, dataset: Any, batch_size: int, device: torch.device) -> Any:
        return super().eval_loader(dataset, min(batch_size, 64), device)

    def scene_inputs(self, network: Any, count: int) -> tuple[torch.Tensor, bool]:
        """Up to ``count`` of the run's own test scenes (its seed and scene settings) as uint8-scaled
        floats in [0, 1], and True; random images of its size, and False, where it records none.
        At most 16: each scene is a whole picture of many objects."""
        card, count = model_card(network), min(count, 16)
        if card.config:
            scenes = SceneSpec(**{**vars(self.scenes), "test_scenes": count})
            try:
                size = int(card.data_config.get("image_size", 224))
                ds = load_dense_dataset(card.data or SCENES, "test", None, False, scenes, self.seed, self.target, size)
            except DatasetError:
                pass  # its data is not here (a folder elsewhere): random inputs below
            else:
                return ds.images[:count].float() / 255, True
        height, width = card.image_size or (128, 128)
        gen = torch.Generator().manual_seed(0)
        return torch.rand(min(count, 4), network.in_chans, height, width, generator=gen), False


class DenseNetwork(nn.Module):
    """What of a dense model goes into an exported file: the network, and none of the steps whose
    shapes depend on the data (each task's subclass says which outputs, and what is left out)."""

    output_names: list[str]

    def __init__(self, model: Any):
        super().__init__()
        self.model = model
        self.card = model_card(model)
        self.model_cfg = model.model_cfg
        self.num_classes = model.num_classes
        self.in_chans = model.in_chans

    def post_processing(self) -> str:
        raise NotImplementedError
