"""A local SMS provider: the tests and the sandbox send texts to it as to Alibaba Cloud or Tencent Cloud."""

from smsapi.emulator import EmuPush, EmuReport, EmuText, SmsEmulator

__all__ = ["EmuPush", "EmuReport", "EmuText", "SmsEmulator"]
