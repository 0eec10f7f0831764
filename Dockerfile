# ticker: a small image; state lives in /data (mount a volume there).

# The wheel is built where a C compiler is, so the image gets the broadcast loop in C
# (ticker/feed/_fanout.c) without carrying gcc.
FROM python:3.11-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY ticker ./ticker
COPY subscribers ./subscribers
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    TICKER_HOST=0.0.0.0 TICKER_PORT=8080 TICKER_DATA_DIR=/data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
    && useradd --system --uid 10001 ticker && mkdir /data && chown ticker /data
USER ticker
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)" || exit 1
ENTRYPOINT ["ticker"]
CMD ["serve"]
