# One image for the whole compose cluster: Python with dask-cli installed.
#
# Here (no image registry reachable) the base is a local debootstrap image and every
# Python package comes from wheels built on the host: integration/run.sh does both.
# Elsewhere, use any public Python image; without host wheels pip installs from PyPI:
#   docker compose build --build-arg BASE_IMAGE=python:3.11-slim
ARG BASE_IMAGE=dask-cli-base:bookworm
FROM ${BASE_IMAGE}

ENV PATH=/opt/dask-cli/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

# A venv: Debian's python3 refuses system-wide pip installs (PEP 668).
RUN python3 -m venv /opt/dask-cli

# Dependencies first, in their own layer: rebuilt only when the dependency wheels change.
# (The [s]/[t] globs let the build go on when build/integration-wheels does not exist.)
COPY pyproject.toml build/integration-wheels/dep[s] /wheels/deps/
RUN if ls /wheels/deps/*.whl >/dev/null 2>&1; then \
        pip install --no-index /wheels/deps/*.whl; \
    fi

# The project: the host-built wheel offline, else from the source with pip.
COPY pyproject.toml build/integration-wheels/projec[t] /wheels/project/
COPY pyproject.toml README.m[d] /src/
COPY dask_cli /src/dask_cli
RUN if ls /wheels/project/*.whl >/dev/null 2>&1; then \
        pip install --no-index --no-deps --force-reinstall /wheels/project/*.whl; \
    else \
        pip install /src; \
    fi \
    && dask --help >/dev/null

WORKDIR /work
CMD ["dask", "--help"]
