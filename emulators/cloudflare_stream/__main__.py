"""``python -m emulators.cloudflare_stream --port N``: serve the emulator on 127.0.0.1."""

from __future__ import annotations

import argparse
import atexit
import os
import signal
import sys
from pathlib import Path

from werkzeug.serving import run_simple

from emulators.cloudflare_stream.app import create_app
from emulators.cloudflare_stream.media import prepare_media_dir
from emulators.cloudflare_stream.state import EmulatorState
from emulators.free_ports import USUAL_PORTS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=USUAL_PORTS.cloudflare)
    parser.add_argument("--rtmp-port", type=int, default=USUAL_PORTS.rtmp)
    parser.add_argument("--media-dir", type=Path, default=Path(".local/media"))
    args = parser.parse_args()
    public_base = f"http://127.0.0.1:{args.port}"
    state = EmulatorState(
        account_id=os.environ.get("LS_CLOUDFLARE_ACCOUNT_ID", "local-account"),
        api_token=os.environ.get("LS_CLOUDFLARE_API_TOKEN", "local-dev-token"),
        public_base=public_base,
        rtmp_base=f"rtmp://127.0.0.1:{args.rtmp_port}/live/",
    )
    prepare_media_dir(args.media_dir)
    app = create_app(state, args.media_dir.resolve())
    # The simulcast relays are ffmpeg processes of ours: end them with the emulator.
    relays = app.config["BROADCASTS"].relays
    atexit.register(relays.stop_all)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    run_simple("127.0.0.1", args.port, app, threaded=True)


if __name__ == "__main__":
    main()
