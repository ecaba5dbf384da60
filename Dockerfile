# semsearch on the CPU. For CUDA, build with
#   --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
FROM python:3.11-slim
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
WORKDIR /app
RUN pip install --no-cache-dir --index-url "$TORCH_INDEX_URL" torch==2.13.0
COPY pyproject.toml constraints.txt README.md ./
COPY search ./search
COPY ingest ./ingest
COPY ui ./ui
COPY migrations ./migrations
RUN pip install --no-cache-dir -c constraints.txt .
ENV HF_HUB_OFFLINE=1
ENTRYPOINT []
CMD ["semsearch", "--help"]
