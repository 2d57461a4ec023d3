"""Why a verdict is what it is: users, keys, API errors and scopes, explained from a snapshot."""
