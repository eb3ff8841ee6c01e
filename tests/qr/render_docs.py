"""Render the README's picture of a flyer: `.venv/bin/python -m tests.qr.render_docs [docs/flyer.png]`.

A demo village (青山镇 李家村) with a code to the landing page, rasterised by pdftoppm about
600 pixels wide and reduced to a small palette so the PNG stays small in the repository.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

from PIL import Image

from bot.settings import FLYER_FONTS
from qr.flyer import Flyer, render
from qr.links import flyer_link
from qr.payload import sign_village

WIDTH = 600


def main(out: Path) -> None:
    until = date(2028, 12, 31)
    payload = sign_village(b"demo-secret-for-the-readme", "QS01", until, "261201")
    link = flyer_link(
        payload, bot_username="fanghui_bot", public_url="https://fanghui.example.cn", to_landing=True
    )
    flyer = Flyer("QS01", "李家村", "青山镇", link, "261201", until, web_form=True)
    with tempfile.TemporaryDirectory() as work:
        pdf = Path(work) / "flyer.pdf"
        pdf.write_bytes(render([flyer], FLYER_FONTS[0]))
        stem = Path(work) / "flyer"
        subprocess.run(
            [
                "pdftoppm",
                "-png",
                "-singlefile",
                "-scale-to-x",
                str(WIDTH),
                "-scale-to-y",
                "-1",
                str(pdf),
                str(stem),
            ],
            check=True,
        )
        with Image.open(stem.with_suffix(".png")) as page:
            page.convert("RGB").quantize(colors=32).save(out, optimize=True)
    print(f"{out}: {out.stat().st_size} bytes")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/flyer.png"))
