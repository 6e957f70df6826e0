"""ctexport: helpers for exporting ConvTranspose layers to safetensors files.

Only the standard library and numpy are needed; torch is imported lazily,
and only to handle bfloat16 tensors.
"""

from .safetensors_io import load_file, save_file

__all__ = ["save_file", "load_file"]
