"""Persistence: engine/session (`session.py`), ORM models (`models.py`), migrations (`migrate.py`)."""
