"""nbval runs the notebooks here at the seconds-long smoke scale unless LAB_PROFILE says otherwise."""

import os

os.environ.setdefault("LAB_PROFILE", "smoke")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
