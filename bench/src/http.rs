//! Figures over real HTTP: the API served on a loopback port, as the local
//! server serves it, and `wrk` as the crowd.

use std::{net::SocketAddr, time::Duration};

use axum::Router;
use shared::BoxError;

/// What one `wrk` run reports.
pub struct WrkRun {
    pub requests: u64,
    pub per_second: f64,
    /// Answers that were not 2xx or 3xx.
    pub refused: u64,
}

/// Serves `router` on a free loopback port until the process exits, on a
/// thread of its own with a single-threaded runtime: one core's worth of
/// server, as a Lambda instance is, and the other core for `wrk`. Both
/// `/health` and the figures it is compared with are served alike.
pub fn serve(router: Router) -> Result<SocketAddr, BoxError> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    listener.set_nonblocking(true)?;
    let address = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    std::thread::spawn(move || {
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("a bound loopback listener");
            axum::serve(listener, router).await
        })
    });
    Ok(address)
}

/// How hard and how long `wrk` presses.
#[derive(Clone, Copy)]
pub struct Load {
    pub threads: u32,
    pub connections: u32,
    pub duration: Duration,
}

/// One `wrk` run of `method url` with the bearer `token`, if any.
pub async fn wrk(load: Load, method: &str, url: &str, token: Option<&str>) -> Result<WrkRun, BoxError> {
    let mut lua = format!("wrk.method = \"{method}\"\n");
    if let Some(token) = token {
        lua.push_str(&format!("wrk.headers[\"Authorization\"] = \"Bearer {token}\"\n"));
    }
    wrk_script(load, url, &lua).await
}

/// One `wrk` run against `url` driven by the Lua `lua` (which may build
/// each request itself).
pub async fn wrk_script(load: Load, url: &str, lua: &str) -> Result<WrkRun, BoxError> {
    let script = std::env::temp_dir().join(format!("bench-wrk-{}.lua", std::process::id()));
    std::fs::write(&script, lua)?;
    let output = tokio::process::Command::new("wrk")
        .arg(format!("--threads={}", load.threads))
        .arg(format!("--connections={}", load.connections))
        .arg(format!("--duration={}s", load.duration.as_secs().max(1)))
        .arg(format!("--script={}", script.display()))
        .arg(url)
        .output()
        .await
        .map_err(|e| format!("wrk ({e}); ./scripts/install-deps.sh installs it"))?;
    std::fs::remove_file(&script)?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!("wrk failed: {stdout}{}", String::from_utf8_lossy(&output.stderr)).into());
    }
    parse(&stdout).ok_or_else(|| format!("unexpected wrk output:\n{stdout}").into())
}

/// Reads `N requests in …`, `Non-2xx or 3xx responses: N` and
/// `Requests/sec: X` from wrk's summary.
fn parse(summary: &str) -> Option<WrkRun> {
    let mut run = WrkRun {
        requests: 0,
        per_second: 0.0,
        refused: 0,
    };
    for line in summary.lines().map(str::trim) {
        if let Some(rate) = line.strip_prefix("Requests/sec:") {
            run.per_second = rate.trim().parse().ok()?;
        } else if let Some(refused) = line.strip_prefix("Non-2xx or 3xx responses:") {
            run.refused = refused.trim().parse().ok()?;
        } else if let Some((requests, _)) = line.split_once(" requests in ") {
            run.requests = requests.trim().parse().ok()?;
        }
    }
    (run.requests > 0 && run.per_second > 0.0).then_some(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrk_summary() {
        let summary = "Running 5s test @ http://127.0.0.1:1/health\n  1 threads and 64 connections\n  \
                       250123 requests in 5.00s, 40.1MB read\n  Non-2xx or 3xx responses: 250123\n\
                       Requests/sec:  50024.60\nTransfer/sec:      8.02MB\n";
        let run = parse(summary).unwrap();
        assert_eq!((run.requests, run.refused), (250_123, 250_123));
        assert!((run.per_second - 50_024.6).abs() < 1e-6);
        assert!(parse("wrk: connection refused").is_none());
    }
}
