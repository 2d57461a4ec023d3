"""orgaudit: a read-only auditor for OpenAI API organizations."""

__version__ = "0.1.0"
