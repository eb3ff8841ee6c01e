"""Local Telegram Bot API emulator for end-to-end tests."""

from .server import BotAPIEmulator, EmuMessage, EmuUser, UploadedFile

__all__ = ["BotAPIEmulator", "EmuMessage", "EmuUser", "UploadedFile"]
