//! nginx in front of the local server, where CloudFront stands in the
//! cloud (the seed's own architecture has Nginx there): it serves the
//! rendered item pages as static files, keeps each stock document (and
//! each waiting room's) for as long as its `Cache-Control` allows (one request at a time fills it,
//! the rest wait or are served the stale copy while it refreshes), and
//! passes everything else to the API, telling it the viewer's address as
//! CloudFront does, with the edge's key to prove it.

use std::{fs, net::SocketAddr, path::Path};

use shared::http::identity::{EDGE_KEY_HEADER, VIEWER_ADDRESS_HEADER};

use crate::services::{Error, Supervised, start_listening};

/// Where Debian's package puts nginx.
const NGINX: &str = "/usr/sbin/nginx";

/// The edge's configuration: `pages` the folder whose `items/` it serves,
/// `key` the one it proves itself to the API with.
fn config(dir: &Path, port: u16, upstream: SocketAddr, pages: &Path, key: &str) -> String {
    let dir = dir.display();
    let pages = pages.display();
    let (key_header, viewer_header) = (EDGE_KEY_HEADER, VIEWER_ADDRESS_HEADER);
    format!(
        r#"worker_processes 1;
error_log {dir}/error.log warn;
pid {dir}/nginx.pid;
events {{ worker_connections 8192; }}
http {{
  types {{ text/html html; application/javascript js; text/css css; }}
  access_log off;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  proxy_cache_path {dir}/cache keys_zone=stock:10m max_size=64m inactive=1m use_temp_path=off;
  upstream api {{ server {upstream}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port};
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header {key_header} "{key}";
    proxy_set_header {viewer_header} $remote_addr:$remote_port;
    # The rendered pages: files, as the pages bucket behind CloudFront.
    location /items/ {{
      root {pages};
      add_header Cache-Control "public, max-age=60";
    }}
    # The stock documents and the waiting rooms' documents: as long as the
    # API's Cache-Control says (a place taken, a POST, is never cached).
    location ~ ^/(seckill/items|red-packets)/[^/]+/(stock|queue)$ {{
      proxy_pass http://api;
      proxy_cache stock;
      proxy_cache_lock on;
      proxy_cache_lock_timeout 2s;
      proxy_cache_background_update on;
      proxy_cache_use_stale updating error timeout;
      proxy_cache_revalidate on;
      add_header X-Edge-Cache $upstream_cache_status always;
    }}
    location / {{
      proxy_pass http://api;
    }}
  }}
}}
"#
    )
}

/// nginx on a free loopback port, in front of `upstream`, until dropped.
pub struct Edge {
    pub address: SocketAddr,
    _dir: tempfile::TempDir,
    _process: Supervised,
}

impl Edge {
    pub fn start(upstream: SocketAddr, pages: &Path, key: &str) -> Result<Self, Error> {
        let dir = tempfile::tempdir()?;
        let (port, process) = start_listening("nginx", NGINX.into(), |command, port| {
            let conf = dir.path().join("nginx.conf");
            fs::write(&conf, config(dir.path(), port, upstream, pages, key))?;
            command
                .args(["-p", &dir.path().display().to_string(), "-c"])
                .arg(&conf)
                .args(["-g", "daemon off;"]);
            Ok(())
        })?;
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        Ok(Edge {
            address,
            _dir: dir,
            _process: process,
        })
    }
}
