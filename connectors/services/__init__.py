from .pairings import (
    RULES,
    PairingRuleViolation,
    create_pairing,
    delete_instance,
    delete_pairing,
    validate_pairing,
)

__all__ = [
    "RULES",
    "PairingRuleViolation",
    "create_pairing",
    "delete_instance",
    "delete_pairing",
    "validate_pairing",
]
