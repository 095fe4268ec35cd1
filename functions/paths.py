"""The two path families every stream endpoint answers: the unified ``/api/...`` paths and the
MVP Two aliases of the SvelteKit backend this replaces (which answer lists with a bare array)."""

MVP = "/api/livestreamMVPTwo"
UNIFIED = "/api"


def unified_and_mvp(suffix: str) -> tuple[str, str]:
    return f"{UNIFIED}{suffix}", f"{MVP}{suffix}"
