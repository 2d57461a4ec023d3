"""The access model: the permission catalog (the rules, as data) and what follows from a
snapshot under it."""
