# syntax=docker/dockerfile:1
# ReinforceTrade: the trading engine with its API and dashboard (`reinforcetrade serve`).
#
#   docker build -t reinforcetrade .
#   docker compose up -d --build        # the whole stack: see deploy/README.md
#
# Stage 1 builds every wheel (the project and all its dependencies); stage 2 installs them from
# that folder alone — no index, no compiler — and runs as the unprivileged user `rt` (uid 10001).

ARG PYTHON_IMAGE=python:3.11-slim

# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# torch first, pinned to the CPU build: stable-baselines3 depends on it, and any looser spec
# would pull several GB of CUDA wheels. Keep the pin equal to pyproject.toml's and the Makefile's.
ARG TORCH_SPEC=torch==2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu

RUN python -m pip install --upgrade pip wheel setuptools
RUN pip wheel --wheel-dir /wheels --extra-index-url "${TORCH_INDEX}" "${TORCH_SPEC}"

WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
# the project and the rest of its dependencies; torch is found in /wheels (2.13.0+cpu)
RUN pip wheel --wheel-dir /wheels --find-links /wheels --extra-index-url "${TORCH_INDEX}" .

# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

ARG TORCH_SPEC=torch==2.13.0

# numba caches compiled kernels beside the sources by default: site-packages is read-only here
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    NUMBA_CACHE_DIR=/home/rt/.cache/numba

# install from the build stage's wheels only (bind-mounted: they never land in a layer)
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels "${TORCH_SPEC}" \
 && pip install --no-index --find-links /wheels reinforcetrade \
 && reinforcetrade --version

RUN groupadd --gid 10001 rt \
 && useradd --uid 10001 --gid rt --home-dir /home/rt --create-home \
        --shell /usr/sbin/nologin rt \
 && mkdir -p /home/rt/data /home/rt/models /home/rt/reports /home/rt/logs /home/rt/.cache \
 && chown -R rt:rt /home/rt

WORKDIR /home/rt
USER rt

EXPOSE 8000

# slim images have no curl: ask /health with the standard library
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4).status == 200 else 1)"]

ENTRYPOINT ["reinforcetrade"]
CMD ["serve", "--paper"]
