"""Who the user is, from what each entry point knows about them.

- ``auth=local`` (the embedded default): one local user, ``SEMSEARCH_LOCAL_USER``
  with the groups ``SEMSEARCH_LOCAL_GROUPS``; the CLI's default too.
- ``auth=proxy``: a reverse proxy in front of the UI authenticates people and
  sends their name and groups in headers (``SEMSEARCH_AUTH_USER_HEADER``,
  ``SEMSEARCH_AUTH_GROUPS_HEADER``). Only safe when nothing but the proxy can
  reach the UI: the headers are believed as they come.
- ``auth=oidc``: Streamlit's own OpenID Connect login (``st.login``); the
  groups come from the ID token claim ``SEMSEARCH_OIDC_GROUPS_CLAIM``.

Each function returns a :class:`~search.access.Principal`, or None when the
request names nobody, which search.access treats as anonymous (public only).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from search.access import Principal, check_groups, parse_groups
from search.errors import InvalidInputError
from search.settings import Settings

MAX_USER_CHARS = 200


def local_principal(settings: Settings) -> Principal:
    return Principal(_user(settings.local_user), settings.local_groups)


def cli_principal(
    settings: Settings, user: str | None, groups: Iterable[str] | None
) -> Principal:
    """``--user`` and ``--as-group``, else the local user of the settings."""
    groups = tuple(groups or ())
    if user is None and not groups:
        return local_principal(settings)
    return Principal(_user(user or settings.local_user), check_groups(groups))


def proxy_principal(settings: Settings, headers: Mapping[str, str]) -> Principal | None:
    """The user the proxy's headers name (header names are case-insensitive)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    user = lowered.get(settings.auth_user_header.lower(), "").strip()
    if not user:
        return None
    groups = parse_groups(lowered.get(settings.auth_groups_header.lower(), ""))
    return Principal(_user(user), groups)


def oidc_principal(settings: Settings, claims: Mapping[str, Any]) -> Principal | None:
    """The logged-in user of an ID token's claims, or None when logged out."""
    if not claims.get("is_logged_in", True):
        return None
    user = claims.get("email") or claims.get("preferred_username") or claims.get("sub")
    if not user:
        return None
    value = claims.get(settings.oidc_groups_claim) or ()
    if isinstance(value, str):
        groups = parse_groups(value)
    elif isinstance(value, list | tuple):
        groups = check_groups(value)
    else:
        raise InvalidInputError(
            f"the ID token's {settings.oidc_groups_claim!r} claim is not a list"
        )
    return Principal(_user(str(user)), groups)


def _user(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_USER_CHARS or not name.isprintable():
        raise InvalidInputError("the user name is empty, too long or not printable")
    return name
