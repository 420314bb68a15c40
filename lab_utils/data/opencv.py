"""OpenCV, imported once with the install line in the error: it is an optional extra of the package (Colab and many
GPU images ship their own build, which pip must not replace), yet drawing the embedded faces and reading image files
need it."""

from __future__ import annotations

INSTALL_HINT = ("pip install opencv-python-headless (or pip install 'lab_utils[cv]'); Colab and most Jupyter images "
                "already have it")

try:
    import cv2
except ImportError as err:
    raise ImportError(f"lab_utils needs OpenCV to draw the embedded faces and to read image files: {INSTALL_HINT}.") \
        from err

__all__ = ["cv2"]
