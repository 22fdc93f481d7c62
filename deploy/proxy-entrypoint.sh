#!/bin/sh
# Render deploy/nginx.conf.template from the environment, make a self-signed certificate when
# none is there, and run nginx in the foreground. The proxy service of docker-compose.yml runs
# it; so does tests/frontend/test_media_browser.py, with every path in a temporary folder.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
: "${NGINX_TEMPLATE:=$here/nginx.conf.template}"
: "${NGINX_CONF_DIR:=/etc/nginx/lsf}"
: "${NGINX_RUN_DIR:=/var/lib/nginx/lsf}"
: "${NGINX_MIME_TYPES:=/etc/nginx/mime.types}"
: "${NGINX_USER:=www-data}"
: "${NGINX_ACCESS_LOG:=/dev/stdout}"
: "${LSF_UPSTREAM:=web:8000}"
: "${LSF_HTTP_PORT:=80}"
: "${LSF_HTTPS_PORT:=443}"
: "${LSF_PUBLIC_HTTPS_PORT:=$LSF_HTTPS_PORT}"
: "${LSF_MEDIA_ROOT:=/data/media}"
: "${LSF_ACCEL_PREFIX:=/_protected_media/}"
: "${LSF_MAX_BODY:=210m}"
: "${LSF_TLS_CERT:=/certs/tls.crt}"
: "${LSF_TLS_KEY:=/certs/tls.key}"
: "${LSF_TLS_NAME:=localhost}"
export NGINX_USER NGINX_RUN_DIR NGINX_MIME_TYPES NGINX_ACCESS_LOG LSF_UPSTREAM LSF_HTTP_PORT LSF_HTTPS_PORT \
    LSF_PUBLIC_HTTPS_PORT LSF_MEDIA_ROOT LSF_ACCEL_PREFIX LSF_MAX_BODY LSF_TLS_CERT LSF_TLS_KEY

mkdir -p "$NGINX_CONF_DIR" "$NGINX_RUN_DIR"
if [ ! -s "$LSF_TLS_CERT" ] || [ ! -s "$LSF_TLS_KEY" ]; then
    # No certificate mounted: a self-signed one, so TLS works from the first start. Mount a
    # real certificate and key at LSF_TLS_CERT / LSF_TLS_KEY to replace it.
    mkdir -p "$(dirname "$LSF_TLS_CERT")" "$(dirname "$LSF_TLS_KEY")"
    openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=$LSF_TLS_NAME" \
        -addext "subjectAltName=DNS:$LSF_TLS_NAME,DNS:localhost,IP:127.0.0.1" \
        -keyout "$LSF_TLS_KEY" -out "$LSF_TLS_CERT" 2>/dev/null
    chmod 600 "$LSF_TLS_KEY"
    echo "proxy: made a self-signed certificate for $LSF_TLS_NAME at $LSF_TLS_CERT" >&2
fi
names='${NGINX_USER} ${NGINX_RUN_DIR} ${NGINX_MIME_TYPES} ${NGINX_ACCESS_LOG} ${LSF_UPSTREAM} ${LSF_HTTP_PORT}
${LSF_HTTPS_PORT} ${LSF_PUBLIC_HTTPS_PORT} ${LSF_MEDIA_ROOT} ${LSF_ACCEL_PREFIX} ${LSF_MAX_BODY}
${LSF_TLS_CERT} ${LSF_TLS_KEY}'
envsubst "$names" < "$NGINX_TEMPLATE" > "$NGINX_CONF_DIR/nginx.conf"
exec nginx -e stderr -c "$NGINX_CONF_DIR/nginx.conf" -g "daemon off;" "$@"
