"""Demo data: believable B2B values (``fake``, ``words``) and the sandbox generator used by the
``generate_demo_data`` command, the quick start and the ingestion benchmark."""

from .generator import DemoDataError, DemoSizes, generate_demo_data

__all__ = ["DemoDataError", "DemoSizes", "generate_demo_data"]
