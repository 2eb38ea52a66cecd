"""The errors the segmentation language raises. Each one says what is wrong and where: a line and
column for PQL text, a JSON path for a rule tree."""


class SegmentationError(ValueError):
    """Base of every error about an audience definition."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict:
        return {"message": self.message}


class PQLSyntaxError(SegmentationError):
    """PQL text that does not parse: ``line``/``column`` (1-based) point at ``token``."""

    def __init__(self, message: str, *, line: int, column: int, token: str = "", expected: tuple[str, ...] = ()):
        super().__init__(message)
        self.line, self.column, self.token, self.expected = line, column, token, tuple(expected)

    def to_dict(self) -> dict:
        return {"message": self.message, "line": self.line, "column": self.column, "token": self.token}


class PQLValidationError(SegmentationError):
    """A well-formed definition that means nothing valid: an unknown field, a value of the wrong
    type, an operator the field's type doesn't support. ``field`` names the field as PQL writes
    it; ``line``/``column`` locate it in PQL text, ``json_path`` in a rule tree."""

    def __init__(self, message: str, *, field: str = "", line: int | None = None, column: int | None = None, json_path: str = ""):
        super().__init__(message)
        self.field, self.line, self.column, self.json_path = field, line, column, json_path

    def to_dict(self) -> dict:
        body = {"message": self.message}
        for key in ("field", "line", "column", "json_path"):
            value = getattr(self, key)
            if value not in (None, ""):
                body[key] = value
        return body


class RuleTreeError(PQLValidationError):
    """A rule tree whose JSON shape is wrong (a missing key, an unknown node type, a bad value)."""
