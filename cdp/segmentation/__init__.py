"""The segmentation engine's language and compiler: one AST (``ast``), two forms of it (PQL text
through ``parser``/``printer``, the rule tree through ``to_tree``/``from_tree``), one validator
and one compiler to the Django ORM. Evaluation, membership and the builder UI build on this API.
"""

from .ast import Audience, from_tree, referenced_audiences, uses_relative_time
from .catalog import describe_subject
from .compiler import compile_audience, preview_count, subject_model
from .errors import PQLSyntaxError, PQLValidationError, RuleTreeError, SegmentationError
from .parser import parse_pql
from .printer import to_pql
from .validate import validate


__all__ = [
    "Audience",
    "PQLSyntaxError",
    "PQLValidationError",
    "RuleTreeError",
    "SegmentationError",
    "compile_audience",
    "describe_subject",
    "from_tree",
    "parse_pql",
    "preview_count",
    "referenced_audiences",
    "subject_model",
    "to_pql",
    "uses_relative_time",
    "validate",
]
