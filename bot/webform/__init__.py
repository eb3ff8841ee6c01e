"""The public web pages: the landing page of a printed code, the web form, the status page."""

from bot.webform.routes import PublicPages, WebDeps, mount

__all__ = ["PublicPages", "WebDeps", "mount"]
