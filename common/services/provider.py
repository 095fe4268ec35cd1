"""Translation of stream-provider failures into the app's error taxonomy."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from common.errors import InternalError, NotFoundError, ResourceExhaustedError, UnavailableError
from common.ports import (
    ProviderError,
    ProviderNotFoundError,
    ProviderRateLimitedError,
    ProviderUnavailableError,
)

log = logging.getLogger(__name__)


@contextmanager
def provider_errors() -> Iterator[None]:
    """Translate stream-provider failures into the app taxonomy."""
    try:
        yield
    except ProviderNotFoundError as exc:
        raise NotFoundError("The stream's Cloudflare live input no longer exists") from exc
    except ProviderRateLimitedError as exc:
        raise ResourceExhaustedError(
            "Cloudflare rate limit reached; try again later", retry_after_s=exc.retry_after_s
        ) from exc
    except ProviderUnavailableError as exc:
        raise UnavailableError(
            "Cloudflare is temporarily unavailable; try again", retry_after_s=5
        ) from exc
    except ProviderError as exc:
        log.error("stream provider refused a request: %s", exc)
        raise InternalError("Unexpected answer from the video platform") from exc
