"""``python -m orgaudit``: the same as the ``orgaudit`` command."""

from orgaudit.cli import main

main()
