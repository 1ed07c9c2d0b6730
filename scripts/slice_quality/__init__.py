"""Slice-quality measurement: read G-code, rasterise every layer against the model's sections."""
