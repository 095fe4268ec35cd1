"""Where Cloudflare Stream serves media: every player, manifest and thumbnail URL is built here."""

from __future__ import annotations

from dataclasses import dataclass

PLAYER_SUFFIX = "/iframe"
HLS_SUFFIX = "/manifest/video.m3u8"


@dataclass(frozen=True)
class MediaUrls:
    """Every way to play one media: HLS, DASH, the Stream Player (iframe) and a thumbnail."""

    hls: str
    dash: str
    player: str
    thumbnail: str


@dataclass(frozen=True)
class DeliveryUrls:
    """URLs of one media uid (a live input or a recorded video) on the customer's delivery host."""

    base: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "base", self.base.rstrip("/"))

    def media(self, uid: str) -> str:
        return f"{self.base}/{uid}"

    def player(self, uid: str) -> str:
        return self.media(uid) + PLAYER_SUFFIX

    def hls(self, uid: str) -> str:
        return self.media(uid) + HLS_SUFFIX

    def dash(self, uid: str) -> str:
        return f"{self.media(uid)}/manifest/video.mpd"

    def thumbnail(self, uid: str) -> str:
        return f"{self.media(uid)}/thumbnails/thumbnail.jpg"

    def of(self, uid: str, token: str | None = None) -> MediaUrls:
        """The URLs of ``uid``; with a signed ``token``, the token stands in place of the uid,
        as Cloudflare's signed URLs have it (the token's ``sub`` names the media)."""
        path_id = token or uid
        return MediaUrls(
            hls=self.hls(path_id),
            dash=self.dash(path_id),
            player=self.player(path_id),
            thumbnail=self.thumbnail(path_id),
        )


def hls_of_player(player_url: str | None) -> str | None:
    """The HLS manifest served beside a player page (same host, same uid), if it is one."""
    if not player_url or not player_url.endswith(PLAYER_SUFFIX):
        return None
    return player_url.removesuffix(PLAYER_SUFFIX) + HLS_SUFFIX
