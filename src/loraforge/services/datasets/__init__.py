"""Datasets: catalog, staging, versions, imports, reads, preprocessing and chunked uploads."""
