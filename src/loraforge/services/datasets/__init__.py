"""Datasets: catalog, versions, imports, reads, preprocessing and chunked uploads."""
