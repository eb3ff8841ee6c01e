"""python-telegram-bot callbacks and keyboards: parse an update, call a use case, reply."""
