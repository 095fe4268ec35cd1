"""Simulcast outputs as the API speaks of them: what managers send to add or toggle one, and
what they get back. A destination's stream key is write-only: sent once, then only ever shown
as a hint of its last characters (``streamKeyHint``)."""

from typing import Literal

from pydantic import ConfigDict, Field

from common.models.base import Model

# Cloudflare's limit of outputs per live input (CLOUDFLARE_STREAM_FACTS.md, "Outputs").
MAX_OUTPUTS = 50
MAX_URL_LENGTH = 2048
MAX_KEY_LENGTH = 512

Platform = Literal["youtube", "facebook", "twitch", "custom"]


class OutputCreate(Model):
    """Body of ``POST /streams/{id}/outputs``: the destination's RTMP(S) server URL and its
    stream key, as YouTube, Facebook or any RTMP server gives them; ``enabled`` (default
    true) says whether broadcasts are sent there from now on."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    url: str = Field(min_length=1, max_length=MAX_URL_LENGTH)
    streamKey: str = Field(min_length=1, max_length=MAX_KEY_LENGTH, repr=False)
    enabled: bool = Field(default=True, strict=True)


class OutputUpdate(Model):
    """Body of ``PUT /streams/{id}/outputs/{outputId}``: only ``enabled`` can change (an
    output's URL and key are fixed; delete it and add another to change them)."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    enabled: bool = Field(strict=True)


class OutputView(Model):
    """One simulcast output of a stream. The stream key is never returned whole."""

    id: str
    streamId: str
    url: str
    streamKeyHint: str = Field(
        description="The stream key's last characters (e.g. '…a2ee'), or '…' for a short key"
    )
    enabled: bool
    platform: Platform = Field(description="Inferred from the URL's host")
    note: str | None = Field(
        default=None, description="Why broadcasts may not reach the output (e.g. WHIP)"
    )


class OutputListView(Model):
    """A stream's simulcast outputs, in the order they were added."""

    streamId: str
    outputs: list[OutputView]
    maxOutputs: int = MAX_OUTPUTS
    note: str | None = None


class OutputDeleted(Model):
    """Answer of ``DELETE /streams/{id}/outputs/{outputId}``."""

    streamId: str
    id: str
    deleted: Literal[True] = True
