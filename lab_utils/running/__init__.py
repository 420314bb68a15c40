"""Running it all: the main job, the notebooks, run profiles, the environment, processes."""
