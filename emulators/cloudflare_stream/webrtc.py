"""WHIP ingest and WHEP playback for the emulator, on aiortc.

As on Cloudflare, a WHIP session makes its live input live and is playable over WHEP only: it
is neither recorded nor served as HLS (CLOUDFLARE_STREAM_FACTS.md §0).
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaBlackhole, MediaRelay

from emulators.webrtc_loopback import pin_ice_to_loopback

T = TypeVar("T")
NEGOTIATION_TIMEOUT_S = 20


class InvalidOfferError(ValueError):
    """The offer is not an SDP description a WebRTC peer can answer (Cloudflare: 400)."""


async def _answer(peer: RTCPeerConnection, offer_sdp: str) -> str:
    try:
        await peer.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        await peer.setLocalDescription(await peer.createAnswer())
    except Exception as exc:  # aiortc raises assorted errors for malformed SDP
        await peer.close()
        raise InvalidOfferError(str(exc)) from exc
    return str(peer.localDescription.sdp)


@dataclass
class WhipSession:
    session_id: str
    input_uid: str
    peer: RTCPeerConnection
    tracks: list[MediaStreamTrack] = field(default_factory=list)
    sink: MediaBlackhole = field(default_factory=MediaBlackhole)


class WebRtcServer:
    """Publishing (WHIP) and viewing (WHEP) sessions, on an asyncio loop of their own."""

    def __init__(
        self,
        on_connected: Callable[[str], None],
        on_disconnected: Callable[[str], None],
    ) -> None:
        pin_ice_to_loopback()
        self._on_connected = on_connected
        self._on_disconnected = on_disconnected
        self._loop = asyncio.new_event_loop()
        self._relay = MediaRelay()
        self.publishers: dict[str, WhipSession] = {}
        self._viewers: set[RTCPeerConnection] = set()
        threading.Thread(target=self._loop.run_forever, daemon=True).start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(NEGOTIATION_TIMEOUT_S)

    def is_publishing(self, input_uid: str) -> bool:
        return any(s.input_uid == input_uid for s in self.publishers.values())

    async def publish(self, input_uid: str, offer_sdp: str) -> tuple[str, str]:
        """Accept a WHIP offer; returns (session id, answer SDP)."""
        peer = RTCPeerConnection()
        session = WhipSession(secrets.token_hex(12), input_uid, peer)

        @peer.on("track")
        def _track(track: MediaStreamTrack) -> None:
            session.tracks.append(track)
            # Something must consume the media so the session keeps flowing with no viewer.
            session.sink.addTrack(self._relay.subscribe(track))

        @peer.on("connectionstatechange")
        async def _state() -> None:
            if peer.connectionState == "connected":
                await session.sink.start()
                self._on_connected(input_uid)
            elif peer.connectionState in ("failed", "closed"):
                await self._end(session)

        answer = await _answer(peer, offer_sdp)
        self.publishers[session.session_id] = session
        return session.session_id, answer

    async def unpublish(self, session_id: str) -> bool:
        session = self.publishers.get(session_id)
        if session is None:
            return False
        await session.peer.close()
        await self._end(session)
        return True

    async def play(self, input_uid: str, offer_sdp: str) -> str | None:
        """Answer a WHEP offer with the input's live tracks; ``None`` when it is not live."""
        session = next((s for s in self.publishers.values() if s.input_uid == input_uid), None)
        if session is None or not session.tracks:
            return None
        peer = RTCPeerConnection()
        self._viewers.add(peer)
        for track in session.tracks:
            peer.addTrack(self._relay.subscribe(track))
        try:
            return await _answer(peer, offer_sdp)
        except InvalidOfferError:
            self._viewers.discard(peer)
            raise

    async def _end(self, session: WhipSession) -> None:
        if self.publishers.pop(session.session_id, None) is None:
            return
        await session.sink.stop()
        self._on_disconnected(session.input_uid)
