"""cots_core: the COTS two-stream vision-language model (Lu et al., CVPR 2022) and nothing else."""
from cots_core.config import ModelConfig
from cots_core.errors import CotsError, ModelLoadError
from cots_core.model import COTS, load_model

__all__ = ["COTS", "CotsError", "ModelConfig", "ModelLoadError", "load_model"]
