"""A headless Chromium driven over the DevTools protocol, for tests that click on the status page.

Model. ``devtools_page`` starts ``chromium --headless --remote-debugging-port=0`` in its own session
with a fresh profile, reads the port Chromium chose from ``DevToolsActivePort`` in that profile,
finds the blank page it opened (``/json/list``) and connects to the page's websocket with aiohttp.
``DevTools.call`` sends one command and reads messages until the answer with its id comes back;
the protocol's events that arrive meanwhile are kept in ``events`` (a test reads the console and
CSP reports from them). Every wait is bounded; on exit Chromium's process group gets SIGTERM, then
SIGKILL if it has not gone within 10 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

from tests.helpers import wait_until

__all__ = ["DevTools", "devtools_page"]

_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--remote-debugging-port=0",
)  # fmt: skip


class DevTools:
    """One page over its DevTools websocket: commands, script evaluation, and the events seen."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self.socket = socket
        self.events: list[dict[str, Any]] = []
        self._id = 0

    async def call(self, method: str, timeout: float = 30.0, **params: Any) -> dict[str, Any]:
        """Send ``method`` and return its result; a protocol error fails the test."""
        self._id += 1
        await self.socket.send_json({"id": self._id, "method": method, "params": params})
        async with asyncio.timeout(timeout):
            while True:
                message = json.loads(await self.socket.receive_str())
                if message.get("id") == self._id:
                    assert "error" not in message, f"{method}: {message['error']}"
                    return message["result"]  # type: ignore[no-any-return]
                if "method" in message:
                    self.events.append(message)

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited); a thrown error fails the test."""
        answer = await self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in answer, f"{expression}: {answer['exceptionDetails']}"
        return answer["result"].get("value")

    async def until(self, expression: str, timeout: float = 15.0) -> None:
        """Wait until ``expression`` is truthy in the page."""

        async def holds() -> bool:
            return bool(await self.evaluate(expression))

        try:
            await wait_until(holds, timeout, interval=0.05)
        except AssertionError:
            raise AssertionError(f"not true within {timeout} s in the page: {expression}") from None

    async def open(self, url: str) -> None:
        """Load ``url`` and wait until the document has loaded."""
        await self.call("Page.navigate", url=url)
        await self.until("document.readyState === 'complete' && location.href !== 'about:blank'")

    def console(self) -> list[str]:
        """Every console message and browser log entry seen so far, as text."""
        texts = [e["params"]["entry"]["text"] for e in self.events if e["method"] == "Log.entryAdded"]
        for event in self.events:
            if event["method"] == "Runtime.consoleAPICalled":
                texts.append(" ".join(str(a.get("value", a.get("description", ""))) for a in event["params"]["args"]))
        return texts


@contextlib.asynccontextmanager
async def devtools_page(chromium: str, profile: Path, *extra: str) -> AsyncIterator[DevTools]:
    """A blank page of a fresh headless Chromium, connected, with the Page, Runtime and Log domains enabled."""
    log = profile.parent / f"{profile.name}-stderr.log"  # Chromium creates the profile folder itself
    with log.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            chromium, *_FLAGS, f"--user-data-dir={profile}", *extra, "about:blank",
            stdout=asyncio.subprocess.DEVNULL, stderr=stderr, start_new_session=True,
        )  # fmt: skip
    try:
        port = await _port(profile, process, log)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as client:
            async with client.get(f"http://127.0.0.1:{port}/json/list") as reply:
                targets = await reply.json()
            page = next(t for t in targets if t["type"] == "page")
            async with client.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as socket:
                tools = DevTools(socket)
                for domain in ("Page", "Runtime", "Log"):
                    await tools.call(f"{domain}.enable")
                yield tools
    finally:
        await _end(process)


async def _port(profile: Path, process: asyncio.subprocess.Process, log: Path) -> int:
    """The DevTools port Chromium chose: the first line of ``DevToolsActivePort``, once written."""
    active = profile / "DevToolsActivePort"

    def written() -> bool:
        assert process.returncode is None, f"chromium exited {process.returncode}: {log.read_text()[-2000:]}"
        return active.exists() and len(active.read_text().splitlines()) >= 2

    await wait_until(written, 30, interval=0.05)
    return int(active.read_text().splitlines()[0])


async def _end(process: asyncio.subprocess.Process) -> None:
    """SIGTERM to Chromium's process group, SIGKILL after 10 s; reaped either way."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            async with asyncio.timeout(10):
                await process.wait()
            return
        except TimeoutError:
            continue
