"""Build the SDK's reference docs from its docstrings with pdoc, and check their cross-references.

    python scripts/build_docs.py OUTDIR                  # the public SDK: sdk, sdk.testing, sdk.indicators
    python scripts/build_docs.py OUTDIR --modules sdk x  # other modules (pdoc's specs: ``!sdk\\..*`` excludes)

It writes static HTML (``OUTDIR/index.html``, ``OUTDIR/sdk.html``, ``OUTDIR/sdk/testing.html``, ...)
and exits 1, naming each, when pdoc warned or a reference in a docstring does not resolve. A
reference is an identifier in backticks that names an API: one starting with ``sdk.``, or one whose
first part is capitalised (``Signal``, ``Strategy.emit``, ``FillModel``), not a builtin. pdoc links
every reference it can resolve; one it leaves unlinked names something the docs do not have (a
typo, a renamed class, a private module), which the reader could not follow. Field names and
values in backticks (``quantity``, ``accepted``) are text, not references, and are not checked.

Only ``sdk``'s public surface is documented: what ``sdk/__init__.py`` exports, ``sdk.testing`` and
``sdk.indicators``. The tests run this (tests/unit/test_docs.py): that is the CI check.
"""

from __future__ import annotations

import argparse
import builtins
import re
import sys
import warnings
from collections.abc import Sequence
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PUBLIC = ("sdk", "!sdk\\..*", "sdk.testing", "sdk.indicators")
_REFERENCE = re.compile(r"(sdk(\.\w+)+|[A-Z]\w*[a-z]\w*(\.\w+)*)")


class _CodeSpans(HTMLParser):
    """Inline ``<code>`` spans of a page (not code blocks), with whether each holds a link."""

    def __init__(self) -> None:
        super().__init__()
        self.spans: list[tuple[str, bool]] = []
        self._text: list[str] | None = None
        self._linked = False
        self._pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "pre":
            self._pre += 1
        elif tag == "code" and not self._pre:
            self._text, self._linked = [], False
        elif tag == "a" and self._text is not None:
            self._linked = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "pre":
            self._pre -= 1
        elif tag == "code" and self._text is not None:
            self.spans.append(("".join(self._text), self._linked))
            self._text = None

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)


def unresolved(page: str) -> list[str]:
    """References in backticks on an HTML page that pdoc could not link, in order, once each."""
    parser = _CodeSpans()
    parser.feed(page)
    found: list[str] = []
    for text, linked in parser.spans:
        if linked or not _REFERENCE.fullmatch(text) or hasattr(builtins, text.split(".")[0]):
            continue
        if text not in found:
            found.append(text)
    return found


def build(out: Path, modules: Sequence[str] = PUBLIC) -> list[str]:
    """Write the docs of ``modules`` into ``out``; return the problems found (empty: all is well)."""
    import pdoc  # a dev dependency: imported only when building
    import pdoc.render

    problems = []
    pdoc.render.configure(docformat="markdown", search=True, show_source=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pdoc.pdoc(*modules, output_directory=out)
    problems += [f"pdoc: {warning.message}" for warning in caught]
    for page in sorted(out.rglob("*.html")):
        name = page.relative_to(out).with_suffix("").as_posix().replace("/", ".")
        problems += [f"{name}: `{ref}` does not resolve" for ref in unresolved(page.read_text(encoding="utf-8"))]
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the SDK reference docs (pdoc) and check their references.")
    parser.add_argument("outdir", type=Path, help="folder to write the HTML into (created if missing)")
    parser.add_argument("--modules", nargs="+", default=list(PUBLIC), help="pdoc module specs (default: public SDK)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    problems = build(args.outdir, args.modules)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"docs: {len(problems)} problem(s); the HTML is in {args.outdir}", file=sys.stderr)
        return 1
    print(f"docs: {', '.join(m for m in args.modules if not m.startswith('!'))} -> {args.outdir}/index.html")
    return 0


if __name__ == "__main__":
    sys.exit(main())
