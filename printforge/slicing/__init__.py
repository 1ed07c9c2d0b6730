"""Slicing: the built-in slicer, the PrusaSlicer and CuraEngine adapters, and the G-code gate.

Heavy modules (numpy, shapely, trimesh) are imported by the submodules that need them, so
importing the settings (which read `slicing.config`) stays cheap.
"""
