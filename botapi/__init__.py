"""A local Telegram Bot API server: the end-to-end tests and the sandbox run the real bot against it."""

from botapi.emulator import BotAPIEmulator, EmuMessage, EmuUser, UploadedFile

__all__ = ["BotAPIEmulator", "EmuMessage", "EmuUser", "UploadedFile"]
