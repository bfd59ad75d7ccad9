"""The model registry: catalog, resolution for training and inference, job results, files and hub fetches."""
