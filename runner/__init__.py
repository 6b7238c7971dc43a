"""The runner: one subprocess that loads a plugin package and serves its strategies to the host.

``python -m runner`` is its entry point. What it shares with the host (the wire mapping, the exit
codes) lives in ``protocol``, so the host never imports this package.
"""

from __future__ import annotations

__all__: list[str] = []
