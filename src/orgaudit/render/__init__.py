"""Everything a person reads: terminal text, explanations, the report files."""
