"""Headless Chromium driven over the DevTools protocol (a pipe, no extra package) for the site tests.

`chromium_path()` finds Debian's chromium, installing it with apt-get where the tests run as root
with apt, and skips the calling test with the reason where it can neither find nor install it.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

# The flags this machine needs: no sandbox as root, and no background connections that a closed
# network refuses (each one a console error unrelated to the page).
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--remote-debugging-pipe",
    "--window-size=1400,1000", "--allow-file-access-from-files",
)


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, env=environment)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], capture_output=True, env=environment)
        found = shutil.which("chromium")
        if found:
            return found
    pytest.skip("Debian's chromium is not installed and could not be installed here (apt-get install chromium, as root)")


class Browser:
    """One Chromium process and one page; `call` sends a DevTools command and returns its result."""

    def __init__(self, executable: str):
        self._profile = tempfile.mkdtemp(prefix="mtlbench-chromium-")
        to_browser_read, self._to_browser = os.pipe()
        self._from_browser, from_browser_write = os.pipe()

        def wire_pipes():  # DevTools reads commands from fd 3 and writes replies to fd 4
            # through high numbers first: either pipe end may itself be fd 3 or 4
            high_read, high_write = (fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_browser_read, from_browser_write))
            os.dup2(high_read, 3)
            os.dup2(high_write, 4)

        self.process = subprocess.Popen(
            [executable, *FLAGS, f"--user-data-dir={self._profile}", "about:blank"],
            preexec_fn=wire_pipes, pass_fds=(3, 4),
            stdout=subprocess.DEVNULL, stderr=None if os.environ.get("MTLBENCH_BROWSER_LOG") else subprocess.DEVNULL,
        )
        os.close(to_browser_read)
        os.close(from_browser_write)
        self._reader = os.fdopen(self._from_browser, "rb")
        self._next_id = 0
        self._buffer = b""
        self.events: list[dict] = []
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable", session=self.session)

    def _message(self) -> dict:
        while b"\0" not in self._buffer:
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._next_id += 1
        request = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            request["sessionId"] = session
        os.write(self._to_browser, json.dumps(request).encode() + b"\0")
        while True:
            message = self._message()
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def page(self, method: str, params: dict | None = None) -> dict:
        return self.call(method, params, session=self.session)

    def wait_for(self, event: str) -> dict:
        for index, message in enumerate(self.events):
            if message.get("method") == event:
                return self.events.pop(index)
        while True:
            message = self._message()
            if message.get("method") == event:
                return message
            self.events.append(message)

    def open(self, path: Path) -> None:
        self.events.clear()
        self.page("Page.navigate", {"url": Path(path).resolve().as_uri()})
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str):
        result = self.page("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and failed loads seen since the page was opened."""
        self.evaluate("0")  # collect the events the page has sent so far
        found = []
        for message in self.events:
            method, params = message.get("method"), message.get("params", {})
            if method == "Runtime.exceptionThrown":
                found.append(json.dumps(params["exceptionDetails"])[:300])
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                found.append(json.dumps(params.get("args"))[:300])
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                found.append(params["entry"].get("text", "")[:300])
        return found

    def screenshot(self, path: Path) -> None:
        data = self.page("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})["data"]
        Path(path).write_bytes(base64.b64decode(data))

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except (RuntimeError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self._reader.close()
        os.close(self._to_browser)
        shutil.rmtree(self._profile, ignore_errors=True)
