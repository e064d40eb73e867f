# galaxalign: `make run` serves the app on the embedded demo, `make test` runs the tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8501
export GALAXALIGN_WORKSPACE ?= $(CURDIR)/workspace

.PHONY: run test install symbols demo bench clean

# The stamp depends on pyproject.toml, so a change of dependencies reinstalls.
$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip wheel
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -c "import torch, torchvision, open_clip, galsim, faiss; print('torch', torch.__version__, '| open_clip', open_clip.__version__)"
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/galaxalign demo

run: demo
	@echo "galaxalign: http://localhost:$(PORT)"
	$(BIN)/streamlit run app/streamlit_app.py --server.port $(PORT) --server.headless true --browser.gatherUsageStats false

test: install
	$(BIN)/python -m pytest -q

symbols: install
	$(BIN)/galaxalign symbols

bench: install
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) workspace .pytest_cache
