"""Starts the action server: `python -m actions [--port 5055]`.

Unlike `rasa run actions`, it binds to ACTIONS_HOST (loopback by default):
only the Rasa server needs to reach it.
"""

import argparse
import logging
import os


def main() -> None:
    from rasa_sdk.endpoint import create_app

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("ACTIONS_PORT", 5055)))
    parser.add_argument("--host", default=os.environ.get("ACTIONS_HOST", "127.0.0.1"))
    args = parser.parse_args()
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO"),
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    app = create_app("actions")
    # After Sanic set up its log handlers: no phone number in any of them.
    from clinic.log_privacy import install as mask_personal_data_in_logs

    mask_personal_data_in_logs()
    app.run(host=args.host, port=args.port, access_log=False, workers=1)


# rasa-sdk imports every module of the package, this one included.
if __name__ == "__main__":
    main()
