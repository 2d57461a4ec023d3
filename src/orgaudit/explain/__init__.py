"""Why a verdict is what it is: users, keys, API errors and scopes, explained from a snapshot.

Like a cloud policy troubleshooter: a verdict, then every binding weighed, whether it
grants the permission and through whom, the deciding rows marked, and the ways to fix
it, each with the evidence of the catalog rule it rests on. Pure functions over a
snapshot, its access model and the catalog; the results are frozen values
(:mod:`~orgaudit.explain.records`) that the command line prints as text or JSON.

The package: ``records`` (the values), ``lookup`` (finding users, projects and keys by
name), ``users`` (a user in a project), ``overview`` (a user in every project, summed
up), ``keys`` (a key's requests), ``scopes`` (a scope's sources, least scopes, a pasted
error) and ``user_scopes`` (a user against the scopes an error names). What the rest of
orgaudit uses is named here.
"""

from orgaudit.explain.keys import explain_key
from orgaudit.explain.records import (
    Contested,
    EndpointCheck,
    ErrorExplanation,
    Fix,
    KeyRef,
    KeyVerdict,
    OwnerRef,
    ProjectRef,
    ScopeAdvice,
    ScopeGap,
    ScopesPlan,
    UserRef,
    UserScopeCheck,
    UserVerdict,
    WeighedBinding,
)
from orgaudit.explain.scopes import explain_error, plan_scopes, roles_granting, scope_advice
from orgaudit.explain.users import explain_pairs, explain_user

__all__ = [
    "Contested",
    "EndpointCheck",
    "ErrorExplanation",
    "Fix",
    "KeyRef",
    "KeyVerdict",
    "OwnerRef",
    "ProjectRef",
    "ScopeAdvice",
    "ScopeGap",
    "ScopesPlan",
    "UserRef",
    "UserScopeCheck",
    "UserVerdict",
    "WeighedBinding",
    "explain_error",
    "explain_key",
    "explain_pairs",
    "explain_user",
    "plan_scopes",
    "roles_granting",
    "scope_advice",
]
