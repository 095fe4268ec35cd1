"""The base of our pydantic models: each builds its validator and serializer on first use
(``defer_build``), so a function pays at cold start only for the models its requests touch."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    model_config = ConfigDict(defer_build=True)
