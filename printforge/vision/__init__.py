"""Failure detection against a digital twin (issue 17 item 3; docs/vision.md).

The twin draws what should be on the bed at a layer from the job's G-code (toolpath.py,
twin.py); compare.py sets a camera frame beside it; telemetry.py reads the printer's status;
detector.py turns both into one failure score per layer and a verdict. Nothing here reads the
virtual camera's code or its ground truth: only the camera's config and its pictures
(tests/unit/test_vision_independence.py checks it).

Nothing is imported here, so the orchestrator loads the numpy work only when a camera watches.
"""
