# The official Airflow image with Auto-Refunds' requirements baked in (docker-compose.yaml).
FROM apache/airflow:3.3.2-python3.11

COPY --chown=airflow:root requirements.txt /opt/auto-refunds/requirements.txt
# Pinning apache-airflow again keeps pip from moving the image's own Airflow.
RUN pip install --no-cache-dir "apache-airflow==3.3.2" -r /opt/auto-refunds/requirements.txt
