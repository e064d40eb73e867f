# galaxalign: `make run` serves the app on the embedded demo, `make test` runs the tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8501
# SURVEY=demo: our synthetic Galaxy10 survey (GZ2 tree); SURVEY=first: the real FIRST radio galaxies;
# SURVEY=hxdf: the galaxies of the Hubble eXtreme Deep Field, detected and cut out of the field.
SURVEY ?= demo
export GALAXALIGN_WORKSPACE ?= $(CURDIR)/workspace$(if $(filter-out demo,$(SURVEY)),-$(SURVEY),)

.PHONY: run test install symbols demo bench clean

# The stamp depends on pyproject.toml, so a change of dependencies reinstalls.
$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip wheel
	$(BIN)/python -m pip install --quiet -e '.[test,first,bench]'
	$(BIN)/python -c "import torch, torchvision, open_clip, galsim, faiss; print('torch', torch.__version__, '| open_clip', open_clip.__version__)"
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/galaxalign demo --survey $(SURVEY)

# The demo workspace (survey, store, admin) is built once and the starter model queued as the worker's
# first job; then the worker runs in the background and the app in the foreground, serving the survey at
# once (proposals appear when the starter lands, in a few minutes). Ctrl-C stops both.
run: install
	$(BIN)/galaxalign demo --survey $(SURVEY) --starter job
	@echo ""
	@echo "  galaxalign is starting at http://localhost:$(PORT)"
	@echo "  sign in as: admin / $$(cat $(GALAXALIGN_WORKSPACE)/admin-password.txt)"
	@echo ""
	@$(BIN)/galaxalign worker >> $(GALAXALIGN_WORKSPACE)/worker.log 2>&1 & WORKER=$$!; \
	trap 'kill $$WORKER 2>/dev/null' EXIT INT TERM; \
	$(BIN)/streamlit run app/streamlit_app.py --server.port $(PORT) --server.headless true \
	  --browser.gatherUsageStats false

# PostgreSQL, Redis and Chromium come from Debian's packages (.ci/services.sh installs and starts them).
test: install
	@SERVICES="$$(bash .ci/services.sh)" && env $$SERVICES $(BIN)/python -m pytest -q -n 2 --dist worksteal

symbols: install
	$(BIN)/galaxalign symbols

# The speed figures (minutes, ratios in one run). The accuracy benchmarks take hours and run one by one:
# bench/first.py, bench/sky.py, bench/paper_tables.py (see BENCHMARKS.md).
bench: install
	$(BIN)/python bench/speed.py
	$(BIN)/python bench/synth_throughput.py

clean:
	rm -rf $(VENV) workspace workspace-first .pytest_cache
