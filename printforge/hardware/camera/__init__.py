"""Cameras: `[printers.NAME.camera]` (config.py), fetching pictures from any snapshot URL or
MJPEG stream (client.py, mjpeg.py), and the virtual camera that watches virtual printers
(virtual.py and the modules it uses; see docs/vision.md).

Nothing is imported here: the settings read `config.py` without pulling in the renderer.
"""
