"""The sandbox `make run` starts without a Telegram token: the real service, a local Bot API, demo people."""
