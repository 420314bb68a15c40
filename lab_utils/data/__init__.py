"""Where images come from: the embedded benchmark (generated, cached), real data loaders, the HDF5 schema."""
