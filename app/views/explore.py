"""Explore: the embedding map, the PCA thumbnail grid, and similarity search (researchers, admins).

Everything heavy — embeddings, predictions, the FAISS index — was made by the worker for the active
model version; projections are computed once per version and method and cached on disk beside them.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st
from common import (active_model_row, current_survey, display, get_embeddings, get_index, get_model, get_workspace,
                    require, show_error, store, picked_survey_row, symbol_image)

from galaxalign.errors import GalaxalignError
from galaxalign.jobs import enqueue
import galaxalign.projection as projection_module
from galaxalign.projection import cached_projection, grid_assignment, projection_path
from galaxalign.store import consensus_labels, galaxy_flag_counts
from galaxalign.symbols import list_symbols
from galaxalign.viewing import density_image, map_bounds, map_view, read_query_image, thumbnail_sheet

user = require("researcher")
S = st.session_state
st.title("Explore the embedding space")
row = picked_survey_row()
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


@st.cache_data(show_spinner=False, max_entries=16)
def density(folder: str, method: str, version: str, bounds, only_flagged: bool):
    """The density image of every galaxy in ``bounds`` (flagged ones only when asked)."""
    xy = projection(folder, method, version)
    if only_flagged:
        xy = xy[get_embeddings(folder)[1].id_str.isin(flag_frame(row.id).id_str).to_numpy()]
    return density_image(xy, bounds)  # datashader counts only what falls inside the bounds


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
# Only the open tab runs (on_change="rerun"): the first render at 100,000 galaxies draws the map alone,
# not also a thumbnail grid and a similarity search nobody has asked for yet.
tab_map, tab_grid, tab_search = st.tabs(["Embedding map", "Thumbnail grid (PCA)", "Similarity search"],
                                        key="exp_tab", on_change="rerun")
# Streamlit forgets the state of widgets that did not run: the settings of the closed tabs are kept here
for tab, keys in ((tab_map, ("exp_method", "exp_colour", "exp_flagged")), (tab_grid, ("exp_grid",)),
                  (tab_search, ("exp_mode", "exp_k", "exp_text", "exp_gid", "exp_symbol"))):
    if tab.open:
        continue
    for key in keys:
        if key in S:
            S[key] = S[key]

if tab_map.open:
    c1, c2 = st.columns(2)
    method = c1.radio("Projection", ["pca", "tsne", "umap"], horizontal=True, key="exp_method",
                      format_func=lambda m: {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}[m])
    colours = ["known label", "model label", "consensus", "confidence", "volunteer–model disagreement"]
    colours += ["unfamiliarity"] if "ood" in preds else []  # > 1: out of distribution, no proposal shown
    colours += ["volunteer flags"]
    colour = c2.selectbox("Colour by", colours, key="exp_colour")
    only_flagged = st.checkbox("Only galaxies volunteers flagged (favourite or something odd)", key="exp_flagged")
    if method != "pca" and len(emb) > projection_module.IN_PAGE_LIMIT and not projection_path(folder, method).exists():
        # a t-SNE or UMAP of a large survey is the worker's job (fit on a sample, the rest placed into it)
        st.info(f"A {method.upper().replace('TSNE', 't-SNE')} map of {len(emb):,} galaxies is computed by the "
                "worker, not in this page; the PCA map is shown until it is ready.")
        if st.button(f"Compute the {method.upper().replace('TSNE', 't-SNE')} map on the worker", key="exp_project"):
            try:
                jid = enqueue(store(), "project", {"survey": row.name, "model": mv.name, "method": method},
                              requested_by=user["id"], workspace=get_workspace())
                st.success(f"Queued projection job {jid}.")
            except GalaxalignError as e:
                show_error(e)
        method = "pca"
    xy_all = projection(str(folder), method, mv.name)
    flags = flag_frame(row.id)
    view = map_view(xy_all, preds, survey.labels, names, consensus_frame(row.id), flags,
                    S.get("exp_bounds", {}).get(method), bool(only_flagged))
    df, bounds, zoomed = view.frame, view.bounds, view.zoomed
    if only_flagged:
        st.caption(f"{view.kept:,} flagged galaxies ({int((flags.odd > 0).sum()):,} as odd).")
    if view.sampled:
        st.caption(f"The map draws a random sample of {len(df):,} of the {view.in_view:,} galaxies "
                   f"{'in this region' if zoomed else 'in the survey'} over the density of all of them; zoom "
                   "into a region (box, then *Zoom to the selection*) to draw every point there. Search "
                   "reaches them all.")
    import plotly.express as px

    fig = px.scatter(df, x="x", y="y", color=colour, hover_name="id_str", custom_data=["id_str"],
                     hover_data={"x": False, "y": False, "model label": True, "confidence": True, "known label": True,
                                 **({"unfamiliarity": True} if "ood" in preds else {})},
                     color_continuous_scale="Viridis", render_mode="webgl", height=620)
    dense = view.sampled
    fig.update_traces(marker={"size": 3 if dense else 5, "opacity": 0.75 if dense else 1.0})
    if dense:  # every galaxy in view, as one picture under the drawn points
        fig.add_layout_image(source=density(str(folder), method, mv.name, bounds, bool(only_flagged)),
                             xref="x", yref="y", x=bounds[0][0], y=bounds[1][1], sizex=bounds[0][1] - bounds[0][0],
                             sizey=bounds[1][1] - bounds[1][0], sizing="stretch", layer="below")
    fig.update_layout(dragmode="lasso", legend_title_text=colour, margin=dict(l=0, r=0, t=10, b=0),
                      xaxis_visible=False, yaxis_visible=False, xaxis_range=list(bounds[0]),
                      yaxis_range=list(bounds[1]))
    event = st.plotly_chart(fig, key="exp_map", on_select="rerun", selection_mode=("points", "box", "lasso"))
    # colour traces are separate curves, so rows come back through the id carried in customdata
    points = event.selection.points if event and event.selection else []
    boxes = event.selection.box if event and event.selection else []
    chosen = {p["customdata"][0] for p in points if p.get("customdata")}
    picked = df.index[df.id_str.isin(chosen)].tolist()
    if picked:  # the search tab's default query, when it is opened
        S["exp_picked_id"] = str(df.id_str[picked[0]])
    z1, z2 = st.columns([1, 1])
    region = None
    if boxes:
        b = boxes[-1]
        region = (tuple(sorted(map(float, b["x"][:2]))), tuple(sorted(map(float, b["y"][:2]))))
    elif len(picked) > 1:
        region = map_bounds(xy_all[picked], pad=0.05)
    if z1.button("Zoom to the selection", key="exp_zoom", disabled=region is None,
                 help="Draw every galaxy of the box (or of the lasso's galaxies' extent)"):
        S.setdefault("exp_bounds", {})[method] = region
        st.rerun()
    if z2.button("Whole map", key="exp_unzoom", disabled=not zoomed):
        S.setdefault("exp_bounds", {}).pop(method, None)
        st.rerun()
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

if tab_grid.open:
    n = st.slider("Grid size", 6, 20, 12, key="exp_grid")
    st.image(thumbnail_grid(str(folder), mv.name, n, n), caption="Galaxies placed on the PCA plane of the "
             "embedding, each cell given the nearest galaxy by linear assignment (paper Fig. 5).")

if tab_search.open:
    mode = st.radio("Search by", ["galaxy", "uploaded image", "text", "symbol"], horizontal=True, key="exp_mode")
    k = st.slider("Results", 4, 32, 12, key="exp_k")
    st.caption(f"Index: {index.describe()}.")
    model = get_model(mv.checkpoint_path, mv.sha256)
    hits, query_img = None, None
    try:
        from galaxalign.index import query_image, query_symbol, query_text

        if mode == "galaxy":
            # a galaxy clicked (or the first one boxed) on the map is the default query
            clicked = S.get("exp_picked_id") or str(preds.id_str.iloc[0])
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
        cols = st.columns(8)
        for j, h in enumerate(hits):
            with cols[j % 8]:
                i = h.row  # the index was built in the survey's row order
                st.image(display(survey.image(i), 96), width="stretch")
                st.caption(f"`{h.id_str}`  \nscore {h.score:.3f} · {names[int(preds.pred[i])]}")
