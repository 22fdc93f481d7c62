# The proxy service of docker-compose.yml: nginx from Debian's packages, TLS and media offload.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends nginx-light openssl gettext-base \
    && rm -rf /var/lib/apt/lists/*
COPY deploy/nginx.conf.template deploy/proxy-entrypoint.sh /opt/lsf-proxy/
EXPOSE 80 443
ENTRYPOINT ["/opt/lsf-proxy/proxy-entrypoint.sh"]
