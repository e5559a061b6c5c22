"""Studies that train: the degradation experiment (plain nets against ResNets, He et al. 2015 §4)."""

from .degradation import DegradationResult, TwinRun, run_degradation
from .report import write_degradation

__all__ = ["DegradationResult", "TwinRun", "run_degradation", "write_degradation"]
