# Image for the web, worker and beat services of docker-compose.yml.
FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY labelstudio_ferv ./labelstudio_ferv
COPY clips ./clips
COPY annotations ./annotations
COPY frontend ./frontend
COPY manage.py ./
RUN pip install --no-cache-dir ".[s3]" && python manage.py collectstatic --noinput
ENV LSF_DATA_DIR=/data
EXPOSE 8000
CMD ["gunicorn", "labelstudio_ferv.wsgi", "-b", "0.0.0.0:8000", "-w", "4"]
