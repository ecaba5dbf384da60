"""The UI's user: who is signed in, what they may read, what they may manage.

The way people sign in is the ``SEMSEARCH_AUTH`` setting (search.identity):
``local`` (one local user, the embedded default), ``proxy`` (headers set by
a reverse proxy that authenticates people) or ``oidc`` (Streamlit's own
OpenID Connect login, configured in ``.streamlit/secrets.toml``). A request
that names nobody under ``proxy`` or ``oidc`` sees a sign-in message and
nothing else: the UI never falls back to a default user.

Reading is what search.access allows. Managing the library (ingesting a
folder on the server, uploading, removing) changes what everyone reads, so
it is for the local user and for members of an admin group.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import streamlit as st

from search.access import Access, AccessPolicy, Principal
from search.identity import local_principal, oidc_principal, proxy_principal
from search.settings import Settings

VIEWER_KEY = "semsearch-viewer"


@dataclass(frozen=True)
class Viewer:
    """The signed-in principal and what follows from it."""

    principal: Principal
    access: Access
    may_manage: bool

    @property
    def cache_key(self) -> tuple[tuple[str, ...], bool, bool]:
        """A hashable stand-in for ``access``, for cached per-access data."""
        a = self.access
        return tuple(sorted(a.groups)), a.ungrouped, a.everything


def current_viewer() -> Viewer:
    """The viewer ui/app.py resolved for this run; a page without one stops."""
    found = st.session_state.get(VIEWER_KEY)
    if not isinstance(found, Viewer):
        st.error("Not signed in.", icon=":material/lock:")
        st.stop()
    return found


def request_headers() -> Mapping[str, str]:
    """The headers of the browser's connection (a reverse proxy's, if any)."""
    return dict(st.context.headers)


def user_claims() -> Mapping[str, object]:
    return st.user.to_dict()


def viewer(settings: Settings, policy: AccessPolicy) -> Viewer | None:
    """Who is using this session, or None (and a message shown) when nobody.

    ``policy`` is the searcher's, so that what the pages count and what the
    searches return follow one rule.
    """
    principal = _principal(settings)
    if principal is None:
        return None
    access = policy.access(principal)
    may_manage = settings.auth == "local" or access.everything
    return Viewer(principal, access, may_manage)


def _principal(settings: Settings) -> Principal | None:
    if settings.auth == "local":
        return local_principal(settings)
    if settings.auth == "proxy":
        principal = proxy_principal(settings, request_headers())
        if principal is None:
            st.error(
                "Not signed in: this server expects the reverse proxy in front of "
                f"it to name the user in the {settings.auth_user_header} header.",
                icon=":material/lock:",
            )
        return principal
    claims = user_claims()
    if not claims.get("is_logged_in"):
        st.title("semsearch")
        st.info("Sign in to search the documents.", icon=":material/lock:")
        st.button("Sign in", on_click=st.login, type="primary")
        return None
    principal = oidc_principal(settings, claims)
    if principal is None:
        st.error("The sign-in gave no user name (email, preferred_username or sub).")
    return principal


def sign_out_control(settings: Settings, current: Viewer) -> None:
    """The sidebar's line on who is signed in (and a sign-out under OIDC)."""
    with st.sidebar:
        who = current.principal.describe()
        scope = " · sees every document" if current.access.everything else ""
        st.caption(f"Signed in as {who}{scope}")
        if settings.auth == "oidc":
            st.button("Sign out", on_click=st.logout, type="tertiary")
