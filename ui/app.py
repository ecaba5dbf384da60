"""The Streamlit entry point: page set-up, the signed-in user, navigation."""

from __future__ import annotations

import streamlit as st

from ui import identity
from ui.resources import runtime, shown_errors

st.set_page_config(page_title="semsearch", page_icon=":material/search:", layout="wide")

# Every page runs after this: nobody signed in, no page (access fails closed).
st.session_state.pop(identity.VIEWER_KEY, None)
with shown_errors():
    runtime().follow_active()
    searcher = runtime().searcher
    settings = runtime().app.settings
    current = identity.viewer(settings, searcher.policy)
    if current is not None:
        st.session_state[identity.VIEWER_KEY] = current
        identity.sign_out_control(settings, current)
if identity.VIEWER_KEY not in st.session_state:
    st.stop()

navigation = st.navigation(
    [
        st.Page(
            "views/search.py", title="Search", icon=":material/search:", default=True
        ),
        st.Page("views/library.py", title="Library", icon=":material/folder_open:"),
        st.Page("views/status.py", title="Status", icon=":material/monitoring:"),
    ]
)
navigation.run()
