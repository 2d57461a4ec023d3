"""One function per command, joining the layers below: pull, audit and diff, demo, simulate."""
