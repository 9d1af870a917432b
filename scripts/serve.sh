#!/usr/bin/env bash
# Builds the web page and serves www/ at http://localhost:8080 (PORT and HOST to change).
#   scripts/serve.sh            build, then serve
#   SKIP_BUILD=1 scripts/serve.sh   serve what www/ holds now
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  bash scripts/build-web.sh
fi
if [ ! -f www/models/index.json ]; then
  echo "serve: www/models/index.json is missing; export a model into www/models/ first" >&2
fi

port=${PORT:-8080}
host=${HOST:-127.0.0.1}
echo "serve: kyara is at http://localhost:$port/  (Ctrl-C to stop)"
exec python3 - "$host" "$port" <<'PY'
import functools, http.server, sys

class Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".wasm": "application/wasm",
        ".js": "text/javascript",
        ".mjs": "text/javascript",
        ".json": "application/json",
        ".svg": "image/svg+xml",
        ".bpk": "application/octet-stream",
    }

    def end_headers(self):
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

host, port = sys.argv[1], int(sys.argv[2])
handler = functools.partial(Handler, directory="www")
with http.server.ThreadingHTTPServer((host, port), handler) as httpd:
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
PY
