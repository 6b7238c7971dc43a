"""Make plugin packages importable by their folder name in tests, the way the runner imports them.

The runner puts ``plugins/`` on ``sys.path`` and imports ``momentum``, ``market_making``, ...; the
tests do the same, so a plugin's relative imports and hook module behave as in production.
"""

from __future__ import annotations

import sys
from pathlib import Path

_PLUGINS = str(Path(__file__).resolve().parent)
if _PLUGINS not in sys.path:
    sys.path.insert(0, _PLUGINS)
