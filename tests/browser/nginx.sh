#!/usr/bin/env bash
# Runs Debian's nginx on a free loopback port with the documented server block
# (docs/deploy/nginx.conf), serving a page folder and a bundle, for the browser tests.
#   tests/browser/nginx.sh start DIR WWW BUNDLE   prints the page's URL
#   tests/browser/nginx.sh stop DIR
set -euo pipefail
cd "$(dirname "$0")/../.."
cmd=$1
dir=$2
if [ "$cmd" = stop ]; then
  [ -f "$dir/nginx.pid" ] && kill "$(cat "$dir/nginx.pid")" 2>/dev/null || true
  exit 0
fi
www=$3
bundle=$4
mkdir -p "$dir/tmp"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# The documented block, with this run's port and folders.
sed -e "s|listen 8080;|listen 127.0.0.1:$port;|" -e "s|/srv/nook/www|$www|" -e "s|/srv/nook/bundle/|$bundle/|" \
  docs/deploy/nginx.conf >"$dir/server.conf"
user=""
[ "$(id -u)" -ne 0 ] || user="user root;" # the test's files belong to root here
cat >"$dir/nginx.conf" <<EOF
$user
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 256; }
http {
  include /etc/nginx/mime.types;
  access_log $dir/access.log;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  include $dir/server.conf;
}
EOF
nginx -t -q -c "$dir/nginx.conf" -p "$dir" 2>>"$dir/error.log" || { cat "$dir/error.log" >&2; exit 1; }
nginx -c "$dir/nginx.conf" -p "$dir"
for _ in $(seq 50); do
  curl -sf -o /dev/null "http://127.0.0.1:$port/" && break
  sleep 0.1
done
echo "http://127.0.0.1:$port/"
