"""Query parameters shared by the paged list endpoints (`?page=&page_size=`)."""

from typing import Annotated

from fastapi import Query

Page = Annotated[int, Query(ge=1, le=10_000_000, description="1-based page number.")]
PageSize = Annotated[int, Query(ge=1, le=100, description="Items per page (at most 100).")]
