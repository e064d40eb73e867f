"""Gallery: the survey's galaxies with their class and its Galaxy Zoo symbol."""
import numpy as np
import streamlit as st

from common import current_survey, display, require, symbol_png

user = require("volunteer")
st.title("Survey gallery")
survey = current_survey()
if survey is None:
    st.stop()

caption = f"{len(survey):,} galaxies · {survey.image_shape[0]}×{survey.image_shape[1]} px"
if user.get("role") == "admin":  # where the file lives on the server is an admin's business only
    caption += f" · `{survey.path}`"
st.caption(caption)
names = ["All classes"] + survey.class_names
col_filter, col_page = st.columns([3, 1])
choice = col_filter.selectbox("Class", names, key="gallery_class")
labels = survey.labels
indices = np.arange(len(survey)) if choice == names[0] else np.flatnonzero(labels == names.index(choice) - 1)

per_page = 24
pages = max(1, -(-len(indices) // per_page))
page = col_page.number_input("Page", 1, pages, 1, key="gallery_page")
chunk = indices[(page - 1) * per_page: page * per_page]

if choice != names[0] and survey.label_set is not None:
    cls = survey.label_set[names.index(choice) - 1]
    left, right = st.columns([1, 6])
    left.image(symbol_png(cls.symbol, 96), width=96)
    right.markdown(f"**{cls.name}** — {cls.description}  \n_{cls.prompt}_")

images = survey.images(chunk) if len(chunk) else []
cols = st.columns(6)
for k, (i, img) in enumerate(zip(chunk, images)):
    with cols[k % 6]:
        st.image(display(img), width="stretch")
        lab = labels[i]
        if lab >= 0 and survey.label_set is not None:
            c1, c2 = st.columns([1, 3])
            c1.image(symbol_png(survey.label_set[lab].symbol, 48), width=32)
            c2.caption(f"{survey.label_set[lab].name}  \n`{survey.id_str[i]}`")
        else:
            st.caption(f"{survey.class_names[lab] if lab >= 0 else 'unlabelled'}  \n`{survey.id_str[i]}`")
