"""Sphinx fixes for the book's website, loaded through _config.yml (sphinx: local_extensions).

Sphinx 7.4 registers an inline script added by an extension after the builder starts
(sphinx-thebe's and sphinx-togglebutton's configuration) once with filename None and
once with filename '', so each page carries it twice. sphinx-thebe's script declares
``const THEBE_JS_URL``, and the second copy then throws "Identifier has already been
declared" in every reader's console. This extension keeps the first copy of each script.
"""

from __future__ import annotations

from typing import Any


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


def setup(app) -> dict:
    app.connect("html-page-context", drop_repeated_scripts)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
