"""User-facing configuration errors.

Every error a user can cause with a config file is a :class:`ConfigError` that names the field, the
bad value and what is allowed; loaders add the file (and line) so the CLI can print it as one line.
"""

from __future__ import annotations

from typing import Any

_MISSING = object()
#: longest ``repr`` of a bad value shown in an error line (a 1 MiB scalar stays one short line)
MAX_SHOWN = 120


def shown(value: Any) -> str:
    """``repr(value)``, cut to :data:`MAX_SHOWN` characters."""
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001  (a value whose repr fails is still reported)
        text = f"<{type(value).__name__}>"
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 5] + " ...)"


class ConfigError(ValueError):
    """A bad value in a config: ``[source:line: ]field: value -> what is allowed``."""

    def __init__(
        self,
        field: str,
        value: Any = _MISSING,
        allowed: str = "",
        *,
        source: str | None = None,
        line: int | None = None,
        got: str | None = None,
    ) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        self.source = source
        self.line = line
        self.got = got
        """what was found, in words, instead of ``got <value>`` (e.g. 'a duplicate key')"""
        super().__init__(self._render())

    def _render(self) -> str:
        where = ""
        if self.source:
            where = f"{self.source}:{self.line}: " if self.line else f"{self.source}: "
        if self.got is not None:
            what = self.got
        else:
            what = "missing" if self.value is _MISSING else f"got {shown(self.value)}"
        return f"{where}{self.field}: {what}; allowed: {self.allowed}"

    def located(
        self, *, prefix: str = "", source: str | None = None, line: int | None = None
    ) -> ConfigError:
        """The same error with a field-path prefix and/or file position added."""
        field = f"{prefix}.{self.field}" if prefix and self.field else (prefix or self.field)
        return ConfigError(
            field,
            self.value,
            self.allowed,
            source=source if source is not None else self.source,
            line=line if line is not None else self.line,
            got=self.got,
        )


def require(cond: bool, field: str, value: Any, allowed: str) -> None:
    """Raise :class:`ConfigError` unless ``cond`` holds (for ``__post_init__`` checks)."""
    if not cond:
        raise ConfigError(field, value, allowed)
