# The demo gateway app (examples/gateway) under opentelemetry-instrument with otel_sentry, for
# docker-compose.yml. Build context: the repository root.
ARG PYTHON_IMAGE=python:3.12.8-slim-bookworm
FROM ${PYTHON_IMAGE}
WORKDIR /src
COPY . /src
RUN pip install --no-cache-dir '/src[demo]'
WORKDIR /src/examples/gateway
EXPOSE 8000
ENTRYPOINT ["opentelemetry-instrument", "uvicorn", "app:app", "--host", "0.0.0.0", "--port", "8000"]
