"""Open an HTML file in headless Chromium over the DevTools protocol: screenshot, image sizes,
console errors. Used by the report's end-to-end test; also a script:

    python tests/chromium_page.py runs/demo/report/report.html docs/report.png
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from base64 import b64decode
from dataclasses import dataclass, field
from pathlib import Path

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
)
IMAGES_JS = """JSON.stringify({
  imgs: [...document.images].map(i => ({name: i.alt, complete: i.complete, w: i.naturalWidth,
                                         h: i.naturalHeight})),
  svgs: [...document.querySelectorAll('svg')].map(s => s.getBoundingClientRect().width),
  title: document.title, height: document.documentElement.scrollHeight,
  width: document.documentElement.scrollWidth,
  wide: [...document.querySelectorAll('table')].filter(t => t.parentElement.scrollWidth >
         t.parentElement.clientWidth + 1 && getComputedStyle(t.parentElement).overflowX !==
         'auto').length})"""


def chromium_binary() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    return None


@dataclass
class PageCheck:
    screenshot: bytes
    images: list[dict]
    svg_widths: list[float]
    title: str
    height: int
    width: int  # the document's scroll width: > the window's width when something overflows
    wide_tables: int  # tables wider than their container, which does not scroll them
    errors: list[str] = field(default_factory=list)


class _Cdp:
    def __init__(self, ws) -> None:
        self.ws = ws
        self.next_id = 0
        self.events: list[dict] = []

    def call(self, method: str, timeout: float = 60.0, **params) -> dict:
        self.next_id += 1
        my_id = self.next_id
        self.ws.send(json.dumps({"id": my_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            msg = json.loads(self.ws.recv(timeout=max(deadline - time.monotonic(), 0.1)))
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def wait_event(self, name: str, timeout: float = 60.0) -> None:
        if any(e.get("method") == name for e in self.events):
            return
        deadline = time.monotonic() + timeout
        while True:
            msg = json.loads(self.ws.recv(timeout=max(deadline - time.monotonic(), 0.1)))
            self.events.append(msg)
            if msg.get("method") == name:
                return

    def errors(self) -> list[str]:
        out = []
        for e in self.events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append("console: " + " ".join(str(a.get("value")) for a in p.get("args", [])))
            elif m == "Runtime.exceptionThrown":
                out.append("exception: " + str(p.get("exceptionDetails", {}).get("text")))
            elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                out.append("log: " + str(p["entry"].get("text")))
        return out


def check_page(
    html: str | Path, width: int = 1280, height: int = 1600, full_page: bool = False
) -> PageCheck:
    """Load ``html`` in headless Chromium and return what it rendered (a screenshot of the
    first ``height`` pixels, or of the whole page up to 20000 px)."""
    from websockets.sync.client import connect  # the dev extra's websocket client

    binary = chromium_binary()
    if binary is None:
        raise RuntimeError("chromium not found")
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.Popen(
            [
                binary,
                *FLAGS,
                f"--user-data-dir={profile}",
                "--remote-debugging-port=0",
                f"--window-size={width},{height}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            port_file = Path(profile) / "DevToolsActivePort"
            deadline = time.monotonic() + 60
            while not (port_file.exists() and port_file.read_text().strip()):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("chromium did not start its DevTools endpoint")
                time.sleep(0.1)
            port = int(port_file.read_text().split()[0])
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as r:
                targets = json.loads(r.read())
            page = next(t for t in targets if t.get("type") == "page")
            with connect(page["webSocketDebuggerUrl"], max_size=2**28, open_timeout=30) as ws:
                info, shot, errors = _load(_Cdp(ws), html, width, height, full_page)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
    return PageCheck(
        shot,
        info["imgs"],
        info["svgs"],
        info["title"],
        info["height"],
        info["width"],
        info["wide"],
        errors,
    )


def _load(cdp: _Cdp, html: str | Path, width: int, height: int, full_page: bool):
    for domain in ("Page", "Runtime", "Log"):
        cdp.call(f"{domain}.enable")
    cdp.call(
        "Emulation.setDeviceMetricsOverride",
        width=width,
        height=height,
        deviceScaleFactor=1,
        mobile=False,
    )
    cdp.call("Page.navigate", url=Path(html).resolve().as_uri())
    cdp.wait_event("Page.loadEventFired")
    info = json.loads(
        cdp.call("Runtime.evaluate", expression=IMAGES_JS, returnByValue=True)["result"]["value"]
    )
    if full_page:
        cdp.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=min(int(info["height"]), 20000),
            deviceScaleFactor=1,
            mobile=False,
        )
    shot = b64decode(cdp.call("Page.captureScreenshot", format="png")["data"])
    return info, shot, cdp.errors()


if __name__ == "__main__":
    res = check_page(sys.argv[1], full_page="--full" in sys.argv)
    Path(sys.argv[2]).write_bytes(res.screenshot)
    print(
        f"{len(res.images)} images, {len(res.svg_widths)} svg, page width {res.width} px, "
        f"{res.wide_tables} overflowing tables, errors: {res.errors}"
    )
