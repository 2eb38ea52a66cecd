class RuleViolation(Exception):
    """A business rule refused an operation. ``rule`` is a stable identifier clients can match on;
    the message is a sentence a person can act on. Pages show it as a form error, the API answers
    400 with ``{"error": {"code": "rule_violation", "rule": …, "message": …}}``."""

    def __init__(self, message: str, rule: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.rule = rule
        self.field = field
