"""Local Telegram Bot API emulator for end-to-end tests; it lives in the product as `botapi`."""

from botapi.emulator import BotAPIEmulator, EmuMessage, EmuUser, UploadedFile

__all__ = ["BotAPIEmulator", "EmuMessage", "EmuUser", "UploadedFile"]
