"""Explore: the embedding map, the PCA thumbnail grid, and similarity search (researchers, admins).

Everything heavy — embeddings, predictions, the FAISS index — was made by the worker for the active
model version; projections are computed once per version and method and cached on disk beside them.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st
from common import (active_model_row, current_survey, display, get_embeddings, get_index, get_model, require,
                    show_error, store, survey_row, symbol_image)

from galaxalign.errors import GalaxalignError
from galaxalign.projection import cached_projection, grid_assignment
from galaxalign.store import consensus_labels, galaxy_flag_counts
from galaxalign.symbols import list_symbols
from galaxalign.viewing import map_sample, read_query_image, thumbnail_sheet

require("researcher")
st.title("Explore the embedding space")
row = survey_row()
survey, mv = current_survey(row), active_model_row()
if row is None or survey is None or mv is None or not mv.embeddings_path:
    st.info("No embedded model yet: the worker embeds the survey after each (re-)training.")
    st.stop()
folder = Path(mv.embeddings_path) / row.name
try:
    emb, preds = get_embeddings(str(folder))
    index = get_index(str(folder))
except GalaxalignError as e:
    show_error(e)
    st.stop()
st.caption(f"Model **{mv.name}** · {len(emb):,} galaxies · {emb.shape[1]}-d embeddings")


@st.cache_data(show_spinner="Projecting…", max_entries=12)
def projection(folder: str, method: str, version: str) -> np.ndarray:
    return cached_projection(folder, get_embeddings(folder)[0], method)


@st.cache_data(show_spinner=False, max_entries=4, ttl=30)  # votes keep arriving: refresh every 30 s
def consensus_frame(survey_id: int) -> pd.DataFrame:
    return consensus_labels(store(), survey_id)


@st.cache_data(show_spinner=False, max_entries=4, ttl=30)
def flag_frame(survey_id: int) -> pd.DataFrame:
    return galaxy_flag_counts(store(), survey_id)


@st.cache_data(show_spinner="Arranging thumbnails…", max_entries=4)
def thumbnail_grid(folder: str, version: str, rows: int, cols: int, cell: int = 48) -> bytes:
    cells = grid_assignment(projection(folder, "pca", version), rows, cols)
    return thumbnail_sheet(cells, current_survey().images, cell)


names = survey.class_names
tab_map, tab_grid, tab_search = st.tabs(["Embedding map", "Thumbnail grid (PCA)", "Similarity search"])

with tab_map:
    c1, c2 = st.columns(2)
    method = c1.radio("Projection", ["pca", "tsne", "umap"], horizontal=True, key="exp_method",
                      format_func=lambda m: {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}[m])
    colours = ["known label", "model label", "consensus", "confidence", "volunteer–model disagreement"]
    colours += ["unfamiliarity"] if "ood" in preds else []  # > 1: out of distribution, no proposal shown
    colours += ["volunteer flags"]
    colour = c2.selectbox("Colour by", colours, key="exp_colour")
    only_flagged = st.checkbox("Only galaxies volunteers flagged (favourite or something odd)", key="exp_flagged")
    xy = projection(str(folder), method, mv.name)
    df = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "id_str": preds.id_str,
                       "model label": [names[k] for k in preds.pred], "confidence": preds.confidence.round(3)})
    df["known label"] = [names[k] if k >= 0 else "unknown" for k in survey.labels]
    if "ood" in preds:
        df["unfamiliarity"] = preds.ood.round(3)
    cons = consensus_frame(row.id)
    cmap = dict(zip(cons.id_str, cons.consensus_label))
    df["consensus"] = [names[int(cmap[i])] if i in cmap and pd.notna(cmap[i]) else "no votes" for i in df.id_str]
    df["volunteer–model disagreement"] = np.where(df.consensus == "no votes", "no votes",
                                                  np.where(df.consensus == df["model label"], "agree", "disagree"))
    flags = flag_frame(row.id)
    odd, favs = dict(zip(flags.id_str, flags.odd)), dict(zip(flags.id_str, flags.favourites))
    df["volunteer flags"] = ["odd" if odd.get(i, 0) else "favourite" if favs.get(i, 0) else "none" for i in df.id_str]
    if only_flagged:
        df = df[df["volunteer flags"] != "none"]
        st.caption(f"{len(df):,} flagged galaxies ({int((df['volunteer flags'] == 'odd').sum()):,} as odd).")
    shown = map_sample(len(df))
    if len(shown) < len(df):  # the browser gets a bounded number of points; rows keep their survey index
        df = df.iloc[shown]
        st.caption(f"The map draws a random sample of {len(df):,} of the {len(preds):,} galaxies; "
                   "search reaches them all.")
    import plotly.express as px

    fig = px.scatter(df, x="x", y="y", color=colour, hover_name="id_str", custom_data=["id_str"],
                     hover_data={"x": False, "y": False, "model label": True, "confidence": True, "known label": True,
                                 **({"unfamiliarity": True} if "ood" in preds else {})},
                     color_continuous_scale="Viridis", render_mode="webgl", height=620)
    fig.update_traces(marker={"size": 5})
    fig.update_layout(dragmode="lasso", legend_title_text=colour, margin=dict(l=0, r=0, t=10, b=0),
                      xaxis_visible=False, yaxis_visible=False)
    event = st.plotly_chart(fig, key="exp_map", on_select="rerun", selection_mode=("points", "box", "lasso"))
    # colour traces are separate curves, so rows come back through the id carried in customdata
    points = event.selection.points if event and event.selection else []
    chosen = {p["customdata"][0] for p in points if p.get("customdata")}
    picked = df.index[df.id_str.isin(chosen)].tolist()
    if picked:
        sel = df.loc[picked, ["id_str", "known label", "model label", "confidence", "consensus"]]
        st.markdown(f"**{len(sel)} galaxies selected**")
        st.download_button("Download selection (CSV)", sel.to_csv(index=False).encode(), "selection.csv", "text/csv",
                           key="exp_download")
        cols = st.columns(8)
        for k, i in enumerate(picked[:48]):
            with cols[k % 8]:
                st.image(display(survey.image(int(i)), 96), width="stretch")
                st.caption(f"`{df.id_str[i]}`  \n{df['model label'][i]}")
    else:
        st.caption("Drag a box or lasso on the map to pick galaxies.")

with tab_grid:
    n = st.slider("Grid size", 6, 20, 12, key="exp_grid")
    st.image(thumbnail_grid(str(folder), mv.name, n, n), caption="Galaxies placed on the PCA plane of the "
             "embedding, each cell given the nearest galaxy by linear assignment (paper Fig. 5).")

with tab_search:
    mode = st.radio("Search by", ["galaxy", "uploaded image", "text", "symbol"], horizontal=True, key="exp_mode")
    k = st.slider("Results", 4, 32, 12, key="exp_k")
    st.caption(f"Index: {index.describe()}.")
    model = get_model(mv.checkpoint_path, mv.sha256)
    hits, query_img = None, None
    try:
        from galaxalign.index import query_image, query_symbol, query_text

        if mode == "galaxy":
            # a galaxy clicked (or the first one boxed) on the map is the default query
            clicked = str(df.id_str[picked[0]]) if picked else str(preds.id_str.iloc[0])
            if st.session_state.get("exp_gid_from") != clicked:
                st.session_state["exp_gid"], st.session_state["exp_gid_from"] = clicked, clicked
            gid = st.text_input("Galaxy id (click a galaxy on the map to use it)", key="exp_gid")
            if gid:
                hits = index.search_row(gid.strip(), k)
                query_img = survey.image(int(np.flatnonzero(preds.id_str.to_numpy() == gid.strip())[0]))
        elif mode == "uploaded image":
            up = st.file_uploader("A galaxy image (PNG or JPEG, 5 MB at most)", type=["png", "jpg", "jpeg"],
                                  key="exp_upload")
            if up is not None:
                # raw pixels in the survey's own layout, then the survey's preparation
                query_img = read_query_image(bytes(up.getbuffer()), up.name, grey=len(survey.raw_shape) == 2)
                hits = index.search(query_image(model, query_img, survey.preparation), k)
        elif mode == "text":
            text = st.text_input("Describe the galaxy", "A picture of a merging galaxy", key="exp_text")
            if text.strip():
                hits = index.search(query_text(model, text), k)
        else:
            sym = st.selectbox("Symbol", list_symbols(), key="exp_symbol")
            query_img = symbol_image(sym, 128)
            hits = index.search(query_symbol(model, sym), k)
    except GalaxalignError as e:
        show_error(e)
    if query_img is not None:
        st.image(display(query_img, 128), width=128, caption="query")
    if hits:
        rows_of = {s: i for i, s in enumerate(preds.id_str)}
        cols = st.columns(8)
        for j, h in enumerate(hits):
            with cols[j % 8]:
                i = rows_of[h.id_str]
                st.image(display(survey.image(i), 96), width="stretch")
                st.caption(f"`{h.id_str}`  \nscore {h.score:.3f} · {names[int(preds.pred[i])]}")
