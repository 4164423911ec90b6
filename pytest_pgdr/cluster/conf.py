"""Server settings as postgresql.conf lines."""

from __future__ import annotations

CONF_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


def conf_value(value: object) -> str:
    """Render a Python value as a postgresql.conf value."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, int | float):
        return str(value)
    text = str(value).replace("\\", "\\\\").replace("'", "''")
    for char, escape in CONF_ESCAPES.items():  # the config file's own escapes: one line each
        text = text.replace(char, escape)
    return "'" + text + "'"
