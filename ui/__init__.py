"""semsearch's Streamlit UI; it calls the search package and renders.

The pages arrive with the UI work (issue 4).
"""
