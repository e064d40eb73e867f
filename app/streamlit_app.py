"""The galaxalign app: routes only. Run with ``streamlit run app/streamlit_app.py``."""
import streamlit as st

st.set_page_config(page_title="galaxalign", page_icon="🌌", layout="wide")

pages = [
    st.Page("views/gallery.py", title="Gallery", icon=":material/grid_view:", url_path="gallery", default=True),
]
st.navigation(pages).run()
