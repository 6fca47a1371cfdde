"""Building blocks of the request models: strict bodies, query strings, ids, texts."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from hub.web.routing import MAX_ID

Id = Annotated[int, Field(ge=1, le=MAX_ID)]
Limit = Annotated[int, Field(ge=1, le=200)]
Offset = Annotated[int, Field(ge=0, le=1_000_000)]
Language = Annotated[str, Field(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$", max_length=16)]
Name = Annotated[str, Field(min_length=1, max_length=255)]


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


def _split_commas(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


Text = Annotated[str, Field(min_length=1, max_length=200_000), AfterValidator(_not_blank)]
"""A message or note body."""

CommaList = BeforeValidator(_split_commas)
"""Accept `a,b,c` in a query string for a list field."""


class Body(BaseModel):
    """A JSON request body: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Query(BaseModel):
    """A query string: unknown parameters are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)
