"""Data Docs that work on a closed network (LGWAN) and tell nobody that a validation ran.

Great Expectations' Data Docs load jQuery, Bootstrap, bootstrap-table, Vega and Font Awesome
from CDNs, their logo from an S3 bucket (with a timestamp in the URL), and carry a newsletter
form; their index and table pages are filled in by bootstrap-table from data in inline
scripts. Opened without a network they show an empty, unstyled page; opened with one they
call third parties.

:func:`make_offline` rewrites the built site in place (no Great Expectations needed):

- every ``bootstrapTable(...)`` call's ``columns`` and ``data`` (Python literals in GX's
  templates) become a static HTML table in the placeholder ``<table id=...>``, rows linked to
  their pages as bootstrap-table would link them;
- every ``<script>`` (external or inline: they only drive the CDN libraries) and every
  external style sheet is removed; a local style sheet (``static/styles/ikou-offline.css``,
  shipped with ikou) is linked instead;
- the logo points at GX's own copy in ``static/images``; the newsletter footer and the
  call-to-action banner are dropped; links to external sites keep their text, lose their
  address; ``onclick`` handlers (of the removed scripts) are dropped.

The result makes no request outside the site's folder.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
from html import escape
from pathlib import Path

__all__ = ["OFFLINE_CSS", "make_offline", "external_references"]

OFFLINE_CSS = Path(__file__).resolve().parent.parent / "data" / "report" / "data_docs_offline.css"
CSS_NAME = "ikou-offline.css"

_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script\s*>", re.S | re.I)
_LINK = re.compile(r"<link\b[^>]*>", re.I)
_TABLE_CALL = re.compile(r"\$\(['\"]#([\w-]+)['\"]\)\.bootstrapTable\(", re.S)
_EXTERNAL = re.compile(r"""\b(src|href|action|srcset|poster|data)\s*=\s*(["'])\s*(?:https?:)?//""",
                       re.I)
_FOOTER = re.compile(r"<footer\b.*?</footer\s*>", re.S | re.I)
_FORM = re.compile(r"<form\b.*?</form\s*>", re.S | re.I)
_BUTTON = re.compile(r"<button\b[^>]*\bonclick\b[^>]*>.*?</button\s*>", re.S | re.I)
_ONCLICK = re.compile(r"""\s+on[a-z]+\s*=\s*(["']).*?\1""", re.S | re.I)
_EXT_ANCHOR = re.compile(r"""<a\b([^>]*?)\s+href\s*=\s*(["'])(?:https?:)?//[^"']*\2""", re.I)
_LOGO = re.compile(r"""(<img\b[^>]*?\bsrc\s*=\s*)(["'])https?://[^"']*logo[^"']*\2""", re.I)


def _literal(text: str, start: int) -> tuple[object, int]:
    """The Python literal (list / dict) starting at ``text[start]`` and the index after it."""
    depth, i, quote = 0, start, None
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = None
        elif c in "'\"":
            quote = c
        elif c in "[{":
            depth += 1
        elif c in "]}":
            depth -= 1
            if depth == 0:
                return ast.literal_eval(text[start:i + 1]), i + 1
        i += 1
    raise ValueError("unterminated literal")


def _tables(html: str) -> dict[str, tuple[list, list]]:
    """table id → (columns, data) of every bootstrapTable call of a page."""
    out = {}
    for m in _TABLE_CALL.finditer(html):
        body = html[m.end():m.end() + 2_000_000]
        got = {}
        for key in ("columns", "data"):
            k = re.search(rf"\b{key}\s*:\s*\[", body)
            if k is None:
                break
            try:
                got[key], _ = _literal(body, k.end() - 1)
            except (ValueError, SyntaxError):
                break
        if len(got) == 2:
            out[m.group(1)] = (got["columns"], got["data"])
    return out


def _render_table(columns: list, data: list) -> str:
    cols = [c for c in columns if isinstance(c, dict) and c.get("field")]
    head = "".join(f"<th>{escape(str(c.get('title', c['field'])))}</th>" for c in cols)
    rows = []
    for row in data:
        if not isinstance(row, dict):
            continue
        link = row.get("_table_row_link_path")
        cells = []
        for c in cols:
            v = row.get(c["field"], "")
            v = "" if v is None else str(v)  # GX's cells are HTML it rendered itself
            if "ge-success-icon" in v or "text-success" in v:
                v = '<span class="ikou-status-ok">Success</span>'
            elif "ge-failed-icon" in v or "text-danger" in v:
                v = '<span class="ikou-status-ng">Failed</span>'
            if link and v and "<a " not in v:
                v = f'<a href="{escape(str(link))}">{v}</a>'
            cells.append(f"<td>{v}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody>"


def _fill_tables(html: str) -> str:
    for table_id, (columns, data) in _tables(html).items():
        pat = re.compile(rf"(<table\b[^>]*\bid\s*=\s*[\"']{re.escape(table_id)}[\"'][^>]*>)"
                         r"(.*?)(</table\s*>)", re.S)
        html = pat.sub(lambda m, c=columns, d=data: m.group(1) + _render_table(c, d)
                       + m.group(3), html, count=1)
    return html


def _page(html: str, static_rel: str) -> str:
    html = _fill_tables(html)
    html = _SCRIPT.sub("", html)
    html = _LINK.sub(lambda m: "" if _EXTERNAL.search(m.group(0)) else m.group(0), html)
    html = _LOGO.sub(lambda m: f'{m.group(1)}"{static_rel}/images/logo-long.png"', html)
    html = _FOOTER.sub(lambda m: "" if ("newsletter" in m.group(0) or "ge-cta-footer"
                                        in m.group(0)) else m.group(0), html)
    html = _FORM.sub(lambda m: "" if _EXTERNAL.search(m.group(0)) or "newsletter"
                     in m.group(0) else m.group(0), html)
    html = _EXT_ANCHOR.sub(lambda m: f"<a{m.group(1)}", html)
    html = _BUTTON.sub("", html)  # buttons of the removed scripts (filters, show all)
    html = _ONCLICK.sub("", html)
    css = f'<link rel="stylesheet" href="{static_rel}/styles/{CSS_NAME}">'
    return re.sub(r"</head\s*>", css + "</head>", html, count=1, flags=re.I)


def make_offline(docs_dir: str | os.PathLike) -> int:
    """Rewrite every page of a built Data Docs site for a closed network; returns the number
    of pages rewritten."""
    docs = Path(docs_dir)
    styles = docs / "static" / "styles"
    styles.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(OFFLINE_CSS, styles / CSS_NAME)
    n = 0
    for page in sorted(docs.rglob("*.html")):
        static_rel = os.path.relpath(docs / "static", page.parent).replace(os.sep, "/")
        text = page.read_text(encoding="utf-8")
        page.write_text(_page(text, static_rel), encoding="utf-8")
        n += 1
    return n


def external_references(html: str) -> list[str]:
    """Every attribute of a page that would load or send something outside its folder."""
    return [m.group(0) for m in _EXTERNAL.finditer(html)]
