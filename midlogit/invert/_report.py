"""Markdown formatting of INVERT reports."""

import math
import re

import numpy as np

_MARKDOWN_SPECIAL = re.compile(r"([\\`*\[\]<>|])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _visible_controls(text):
    """Newlines and other control characters as their escapes (``\\n``), so that a
    name cannot end a table row or a heading."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def _md_text(text):
    """``text`` for a Markdown table cell or heading, shown as written."""
    return _visible_controls(_MARKDOWN_SPECIAL.sub(r"\\\1", str(text)))


def _md_code(text):
    """``text`` as a Markdown code span inside a table cell, shown as written."""
    text = _visible_controls(str(text)).replace("|", "\\|")
    fence = "`" * (max(map(len, re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _fmt_auc(x):
    return "n/a" if not np.isfinite(x) else f"{x:.4f}"


def _fmt_p(log_p):
    """A p-value from its natural log, readable far below 1e-300."""
    if not np.isfinite(log_p):
        return "n/a"
    log10 = log_p / math.log(10)
    if log10 > -4:
        return f"{math.exp(log_p):.3g}"
    exp = math.floor(log10)
    mant = 10 ** (log10 - exp)
    if round(mant, 1) >= 10:
        mant, exp = mant / 10, exp + 1
    return f"{mant:.1f}e{exp}"
