# galaxalign as users run it: one image for the app (web) and the job consumer (worker).
#   docker compose up --build            # web on :8501, two workers, PostgreSQL, Redis (compose.yaml)
# Official Python image on Debian bookworm; torch and torchvision come from PyPI as a matching pair
# (pyproject.toml pins them); no model is downloaded at build or run time.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GALAXALIGN_WORKSPACE=/data/workspace OMP_NUM_THREADS=2

# GalSim renders the demo survey and needs FFTW; libgomp for torch and FAISS threads
RUN apt-get update \
 && apt-get install -y --no-install-recommends libfftw3-double3 libgomp1 \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# dependencies first (a layer that changes only with pyproject.toml), then the code. Installed in place
# (-e): configs/, models/ and assets/ are found beside the package, as in a checkout
COPY pyproject.toml README.md ./
COPY galaxalign/__init__.py galaxalign/__init__.py
RUN pip install --upgrade pip wheel && pip install -e '.[first,server]'
COPY . .

RUN useradd --create-home --uid 10001 galaxalign && mkdir -p /data && chown galaxalign /data
USER galaxalign
VOLUME /data
EXPOSE 8501

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD python -c "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4).read() != b'ok')"

CMD ["streamlit", "run", "app/streamlit_app.py", "--server.address", "0.0.0.0", "--server.port", "8501", \
     "--server.headless", "true", "--browser.gatherUsageStats", "false"]
