"""The base of our pydantic models: each builds its validator and serializer on first use
(``defer_build``), so a function pays at cold start only for the models its requests touch.

Modules that define models do not postpone their annotations (no ``from __future__ import
annotations``): pydantic would evaluate each field's annotation from its string, which makes
defining a model two to three times as slow; a name defined further down is quoted instead
(tested in ``tests/unit/test_instance_sizing.py``)."""

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    model_config = ConfigDict(defer_build=True)
