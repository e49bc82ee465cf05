# The official Airflow image with Auto-Refunds' requirements baked in (docker-compose.yaml).
# Only the product's requirements: the development tools (requirements-dev.txt) stay out.
FROM apache/airflow:3.3.2-python3.11

# GnuPG encrypts and decrypts the files of a location that names an OpenPGP key (CONTRACT 9).
USER root
RUN apt-get update \
    && apt-get install -y --no-install-recommends gnupg \
    && apt-get clean && rm -rf /var/lib/apt/lists/*
USER airflow

COPY --chown=airflow:root requirements.txt constraints.txt /opt/auto-refunds/
# Pinning apache-airflow again keeps pip from moving the image's own Airflow; constraints.txt
# holds every version the project was tested with.
RUN pip install --no-cache-dir "apache-airflow==3.3.2" -r /opt/auto-refunds/requirements.txt \
    -c /opt/auto-refunds/constraints.txt
