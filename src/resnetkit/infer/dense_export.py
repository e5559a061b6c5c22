"""What of a dense model goes into an exported file: the network, and none of the steps whose
shapes depend on the data. Each task says which (``Task.export_network``): a segmenter's logits
at the input size (``tasks.segmentation.SegmentationNetwork``), a detector's raw head outputs
(``tasks.detection.DetectionNetwork``)."""

from ..tasks.dense import DenseNetwork

__all__ = ["DenseNetwork"]
