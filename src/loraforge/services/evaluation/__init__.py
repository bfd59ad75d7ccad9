"""Evaluations: models scored on one test set, their runs as queued jobs, comparison and reports."""
