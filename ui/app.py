"""The Streamlit entry point: page set-up and navigation (``semsearch ui``)."""

from __future__ import annotations

import streamlit as st

st.set_page_config(page_title="semsearch", page_icon=":material/search:", layout="wide")

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
