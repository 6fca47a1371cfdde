# syntax=docker/dockerfile:1
# omnihub: one hub process. Mount your configuration on /etc/omnihub/omnihub.toml and a
# volume on /var/lib/omnihub; without a mounted configuration the image runs on SQLite there.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY hub ./hub
COPY channels ./channels
COPY rules ./rules
COPY templates ./templates
RUN pip install .

WORKDIR /
RUN rm -rf /src \
 && useradd --system --uid 10001 --home-dir /var/lib/omnihub --shell /usr/sbin/nologin omnihub \
 && mkdir -p /etc/omnihub /var/lib/omnihub \
 && python - <<'PY'
from pathlib import Path

from hub import bootstrap, defaults

for kind in defaults.KINDS:
    defaults.copy_defaults(kind, Path("/etc/omnihub") / kind)
text = (bootstrap.config_text()
        .replace('data_dir = "data"', 'data_dir = "/var/lib/omnihub"')
        .replace('url = "sqlite+aiosqlite:///data/omnihub.db"',
                 'url = "sqlite+aiosqlite:////var/lib/omnihub/omnihub.db"')
        .replace('host = "127.0.0.1"', 'host = "0.0.0.0"'))
assert "/var/lib/omnihub/omnihub.db" in text and 'host = "0.0.0.0"' in text
Path("/etc/omnihub/omnihub.toml").write_text(text, encoding="utf-8")
PY
RUN chown omnihub:omnihub /var/lib/omnihub

USER omnihub
WORKDIR /etc/omnihub
VOLUME ["/var/lib/omnihub"]
EXPOSE 8080

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]

CMD ["omnihub", "run", "--config", "/etc/omnihub/omnihub.toml"]
