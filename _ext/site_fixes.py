"""Sphinx fixes for the book's website, loaded through _config.yml (sphinx: local_extensions).

Sphinx 7.4 registers an inline script added by an extension after the builder starts
(sphinx-thebe's and sphinx-togglebutton's configuration) once with filename None and
once with filename '', so each page carries it twice. sphinx-thebe's script declares
``const THEBE_JS_URL``, and the second copy then throws "Identifier has already been
declared" in every reader's console. This extension keeps the first copy of each script.

MyST-NB's ``nb_merge_streams`` merges a cell's stream outputs for the page by appending to
the first output *in place*, so the executed notebook it saves for download held the first,
merged output and then every original line again: each epoch log twice. The merge now works
on a copy, and the saved notebook keeps its outputs as the kernel wrote them.

When ``scripts/book.py build --pdf`` builds the website, it has printed the whole book first and
names the file in ``RNN_BOOK_PDF_LINK`` (``rnn-book.pdf``, copied to the site's root): every
page's download menu then offers it next to the page's own files. A build without the PDF shows
no such entry, so the menu never links a file that is not there.
"""

from __future__ import annotations

import copy
import os
from typing import Any

from myst_nb.core import render


def _script_key(script: Any) -> tuple:
    attributes = getattr(script, "attributes", {})
    return (getattr(script, "filename", script) or "", tuple(sorted(attributes.items())))


def drop_repeated_scripts(app, pagename: str, templatename: str, context: dict, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set[tuple] = set()
    unique = []
    for script in scripts:
        key = _script_key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def add_book_pdf_link(app, pagename: str, templatename: str, context: dict, doctree) -> None:
    name = os.environ.get("RNN_BOOK_PDF_LINK")
    if not name or app.builder.name != "html":
        return
    for group in context.get("header_buttons", []):
        if group.get("label") == "download-buttons":
            group["buttons"].append({
                "type": "link",
                "url": context["pathto"](name, 1),
                "text": "whole book (.pdf)",
                "tooltip": "Download the whole book as one PDF",
                "icon": "fas fa-book",
                "label": "download-book-pdf-button",
            })


def _merge_streams_on_a_copy() -> None:
    merge = render.coalesce_streams
    if getattr(merge, "on_a_copy", False):
        return

    def coalesce_streams(outputs):
        return merge(copy.deepcopy(outputs))

    coalesce_streams.on_a_copy = True
    render.coalesce_streams = coalesce_streams


def setup(app) -> dict:
    _merge_streams_on_a_copy()
    app.connect("html-page-context", drop_repeated_scripts)
    # After sphinx-book-theme fills the download menu (priority 501).
    app.connect("html-page-context", add_book_pdf_link, priority=600)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
