"""User-facing configuration errors.

Every error a user can cause with a config file is a :class:`ConfigError` that names the field, the
bad value and what is allowed; loaders add the file (and line) so the CLI can print it as one line.
"""

from __future__ import annotations

from typing import Any

_MISSING = object()


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
    ) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        self.source = source
        self.line = line
        super().__init__(self._render())

    def _render(self) -> str:
        where = ""
        if self.source:
            where = f"{self.source}:{self.line}: " if self.line else f"{self.source}: "
        what = "missing" if self.value is _MISSING else f"got {self.value!r}"
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
        )


def require(cond: bool, field: str, value: Any, allowed: str) -> None:
    """Raise :class:`ConfigError` unless ``cond`` holds (for ``__post_init__`` checks)."""
    if not cond:
        raise ConfigError(field, value, allowed)
