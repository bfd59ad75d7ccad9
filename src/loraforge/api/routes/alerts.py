"""STUB: replaced by the helper that owns these routes."""

from fastapi import APIRouter

router = APIRouter()
