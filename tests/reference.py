"""Reference figures the model tests check against, each with its source."""

import json
from pathlib import Path

# A copy of ../shared/reference/peer_state_dicts.json (every key, shape and dtype of torchvision's and
# timm's ResNets), kept in the repo so a clean clone runs the compatibility tests.
_PEERS = Path(__file__).resolve().parent / "data" / "peer_state_dicts.json"


def peer_state_dicts() -> dict:
    """torchvision's and timm's state_dict listings, by model name."""
    return {k.split("/")[1]: v for k, v in json.loads(_PEERS.read_text()).items()}


# A copy of ../shared/reference/peer_dense_state_dicts.json: torchvision's FCN, DeepLabV3 (21
# classes, aux_loss=True), FCOS and RetinaNet (91 classes) as built without weights.
_DENSE_PEERS = Path(__file__).resolve().parent / "data" / "peer_dense_state_dicts.json"


def peer_dense_state_dicts() -> dict:
    return {k.split("/")[1]: v for k, v in json.loads(_DENSE_PEERS.read_text()).items()}


# Exact parameter counts (1000 classes): torchvision's weight metadata and timm's model cards,
# for the models peer_state_dicts.json does not list.
EXACT_PARAMS = {
    "resnext101_64x4d": 83_455_272,
    "wide_resnet101_2": 126_886_696,
    "resnet26d": 16_014_408,
    "resnet101d": 44_568_392,
}

# Parameter counts in millions as the papers print them (10 classes), with the rounding they use.
PAPER_PARAMS_M = {
    # He et al. 2015, Table 6
    "resnet20": 0.27,
    "resnet32": 0.46,
    "resnet44": 0.66,
    "resnet56": 0.85,
    "resnet110": 1.7,
    "resnet1202": 19.4,
    # He et al. 2016 (Identity Mappings), Table 3/4
    "preact_resnet164": 1.7,
    "preact_resnet1001": 10.2,
    # Zagoruyko & Komodakis 2016, Table 4/5
    "wrn16_4": 2.7,
    "wrn16_8": 11.0,
    "wrn28_10": 36.5,
    "wrn40_4": 8.9,
}

# torchvision's GFLOPS metadata at 224x224 (multiply-accumulates, in billions).
TORCHVISION_GMACS = {"resnet18": 1.814, "resnet34": 3.664, "resnet50": 4.089, "resnet101": 7.801, "resnet152": 11.514}
