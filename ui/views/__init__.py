"""The UI's pages, as Streamlit scripts run by ``ui/app.py`` (never imported)."""
