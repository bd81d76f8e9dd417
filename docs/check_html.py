"""Fail when the built HTML shows a box a reader would take for an error.

Sphinx's ``-W`` catches warnings, not what the theme draws: docutils system messages
rendered into the page, and a ``.. contents::`` block, which Furo (drawing its own "On
this page" sidebar) shows as a red ERROR; Markdown (the benchmark results) shown as a
code block instead of rendered, which cuts wide tables off at the right edge. Run after
``make html``.
"""

import re
import sys
from pathlib import Path

PATTERNS = {
    "a docutils system message": re.compile(r'class="system-message'),
    "a '.. contents::' block (Furo draws its own)": re.compile(r'<nav class="contents'),
    "Markdown shown as code, not rendered (include it with the MyST parser)": re.compile(
        r'class="highlight-(markdown|md)\b'
    ),
}


def main(build="_build/html"):
    found = []
    for page in sorted(Path(build).rglob("*.html")):
        text = page.read_text(encoding="utf-8")
        found += [f"{page}: {what}" for what, pattern in PATTERNS.items() if pattern.search(text)]
    for line in found:
        print(line, file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
