//! The backing services of a local run or a test run: a real `redis-server`
//! and AWS's DynamoDB Local (and `localstripe`, where Stripe is paid
//! through), each on a free loopback port, each killed when its handle
//! drops or when this process dies, whichever comes first.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    os::unix::process::CommandExt,
    path::PathBuf,
    process::{Command, Stdio},
    sync::{Mutex, mpsc},
    thread,
    time::{Duration, Instant},
};

use shared::{config::Secret, payments::StripeKeys};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// A free TCP port on 127.0.0.1 (the OS picks it; we let go right away).
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Offset of a cluster node's bus port from its client port (Redis's own).
const CLUSTER_BUS_OFFSET: u16 = 10_000;

/// A free port whose cluster bus port (10,000 above it) is free too: the
/// system hands out ports up to 60,999, and a node on one above 55,535
/// would have no bus port at all and exit at start-up.
fn free_cluster_port() -> std::io::Result<u16> {
    loop {
        let port = free_port()?;
        if let Some(bus) = port.checked_add(CLUSTER_BUS_OFFSET)
            && TcpListener::bind(("127.0.0.1", bus)).is_ok()
        {
            return Ok(port);
        }
    }
}

/// A child process that dies with us. The kernel's parent-death signal is
/// tied to the thread that forks, so each child gets a supervisor thread
/// that forks it and then lives exactly as long as it does.
pub(crate) struct Supervised {
    pid: libc::pid_t,
    exited: Mutex<mpsc::Receiver<()>>,
}

impl Supervised {
    pub(crate) fn spawn(mut command: Command) -> Result<Self, Error> {
        let (started_tx, started_rx) = mpsc::channel();
        let (exited_tx, exited_rx) = mpsc::channel();
        // SAFETY: prctl is async-signal-safe and touches only this process.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        thread::spawn(move || match command.spawn() {
            Ok(mut child) => {
                let _ = started_tx.send(Ok(child.id()));
                let _ = child.wait();
                let _ = exited_tx.send(());
            }
            Err(error) => {
                let _ = started_tx.send(Err(error));
            }
        });
        let pid = started_rx.recv()??;
        Ok(Supervised {
            pid: libc::pid_t::try_from(pid)?,
            exited: Mutex::new(exited_rx),
        })
    }

    fn signal_and_wait(&self, signal: libc::c_int) {
        self.signal(signal);
        let _ = self
            .exited
            .lock()
            .map(|exited| exited.recv_timeout(Duration::from_secs(10)));
    }

    fn signal(&self, signal: libc::c_int) {
        // SAFETY: sending a signal to our own child's pid.
        unsafe { libc::kill(self.pid, signal) };
    }

    fn has_exited(&self) -> bool {
        self.exited.lock().map_or(true, |exited| {
            !matches!(exited.try_recv(), Err(mpsc::TryRecvError::Empty))
        })
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        if !self.has_exited() {
            self.signal_and_wait(libc::SIGKILL);
        }
    }
}

pub(crate) fn wait_until(
    what: &str,
    timeout: Duration,
    mut ready: impl FnMut() -> bool,
    child: &Supervised,
) -> Result<(), Error> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if ready() {
            return Ok(());
        }
        if child.has_exited() {
            return Err(format!("{what} exited during start-up").into());
        }
        thread::sleep(Duration::from_millis(50));
    }
    Err(format!("{what} was not ready after {timeout:?}").into())
}

fn redis_answers_ping(port: u16) -> bool {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_millis(200)) else {
        return false;
    };
    let mut reply = [0u8; 7];
    stream.set_read_timeout(Some(Duration::from_millis(500))).is_ok()
        && stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}

/// Runs `redis-cli -p <port> <args>` and returns what it printed.
fn redis_cli(port: u16, args: &[&str]) -> Result<String, Error> {
    let output = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run redis-cli (scripts/install-deps.sh installs it): {e}"))?;
    let printed = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() || printed.starts_with("ERR") {
        return Err(format!(
            "redis-cli {}: {printed}{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    Ok(printed)
}

/// `redis-server` (from the Debian package) with an append-only file in a
/// private directory, so a restart keeps the data as a replicated,
/// persistent ElastiCache node would.
pub struct Redis {
    port: u16,
    dir: tempfile::TempDir,
    /// What makes this node a cluster member or a replica.
    role: Vec<String>,
    process: Option<Supervised>,
}

impl Redis {
    pub fn start() -> Result<Self, Error> {
        Self::start_as(Vec::new())
    }

    /// A replica of `primary` (`--replicaof`), as ElastiCache keeps one in
    /// another availability zone.
    pub fn replica_of(primary: &Redis) -> Result<Self, Error> {
        let replica = Self::start_as(vec!["--replicaof".into(), "127.0.0.1".into(), primary.port.to_string()])?;
        wait_for_link(&replica)?;
        Ok(replica)
    }

    fn start_as(role: Vec<String>) -> Result<Self, Error> {
        let clustered = role.iter().any(|arg| arg == "--cluster-enabled");
        let mut redis = Redis {
            port: if clustered { free_cluster_port()? } else { free_port()? },
            dir: tempfile::tempdir()?,
            role,
            process: None,
        };
        redis.launch()?;
        Ok(redis)
    }

    fn launch(&mut self) -> Result<(), Error> {
        let mut command = Command::new("redis-server");
        command
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "yes", "--appendfsync", "everysec"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.role)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let process = Supervised::spawn(command)
            .map_err(|e| format!("cannot start redis-server (is it installed? scripts/install-deps.sh): {e}"))?;
        wait_until(
            "redis-server",
            Duration::from_secs(10),
            || redis_answers_ping(self.port),
            &process,
        )?;
        self.process = Some(process);
        Ok(())
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Runs one command on this node through `redis-cli`.
    pub fn cli(&self, args: &[&str]) -> Result<String, Error> {
        redis_cli(self.port, args)
    }

    /// Scripts this node has run (`EVALSHA` calls since it started), to see
    /// how a load spread over a cluster's masters.
    pub fn script_calls(&self) -> Result<u64, Error> {
        let stats = self.cli(&["INFO", "commandstats"])?;
        Ok(stats
            .lines()
            .find_map(|line| line.strip_prefix("cmdstat_evalsha:calls="))
            .and_then(|rest| rest.split(',').next())
            .and_then(|calls| calls.parse().ok())
            .unwrap_or(0))
    }

    /// Stops the server gracefully (it flushes its append-only file).
    pub fn stop(&mut self) {
        self.end(libc::SIGTERM);
    }

    /// Kills the server outright, as a crashed host would.
    pub fn kill(&mut self) {
        self.end(libc::SIGKILL);
    }

    fn end(&mut self, signal: libc::c_int) {
        if let Some(process) = self.process.take() {
            process.signal_and_wait(signal);
        }
    }

    /// Freezes (`true`) or thaws the process: a node that stalls without
    /// closing its connections, as a replica behind a congested link.
    pub fn freeze(&self, frozen: bool) {
        if let Some(process) = &self.process {
            process.signal(if frozen { libc::SIGSTOP } else { libc::SIGCONT });
        }
    }

    /// Starts it again on the same port with the same data.
    pub fn restart(&mut self) -> Result<(), Error> {
        self.stop();
        self.launch()
    }
}

/// Waits until `replica` has synchronised with its primary.
fn wait_for_link(replica: &Redis) -> Result<(), Error> {
    let start = Instant::now();
    while !replica.cli(&["INFO", "replication"])?.contains("master_link_status:up") {
        if start.elapsed() > Duration::from_secs(10) {
            return Err(format!("replica {} did not catch up with its primary in 10 s", replica.port).into());
        }
        thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// A Redis Cluster of three masters on loopback, as ElastiCache runs the
/// gate in cluster mode. A master that goes down leaves the other two
/// serving their slots (`cluster-require-full-coverage no`), as shards of
/// ElastiCache do.
pub struct RedisCluster {
    masters: Vec<Redis>,
    replicas: Vec<Redis>,
}

impl RedisCluster {
    /// Three masters, no replicas (a master that dies takes its slots down
    /// until it is back).
    pub fn start() -> Result<Self, Error> {
        Self::start_with(0)
    }

    /// Three masters, each with `replicas_each` replicas, as the gate's
    /// replication group keeps one in another zone.
    pub fn start_with(replicas_each: usize) -> Result<Self, Error> {
        let cluster_args = || {
            ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
                .into_iter()
                .chain([
                    "--cluster-node-timeout",
                    "2000",
                    "--cluster-require-full-coverage",
                    "no",
                ])
                .map(String::from)
                .collect()
        };
        let nodes = (0..3 * (1 + replicas_each))
            .map(|_| Redis::start_as(cluster_args()))
            .collect::<Result<Vec<_>, _>>()?;
        let addresses: Vec<String> = nodes.iter().map(|m| format!("127.0.0.1:{}", m.port)).collect();
        let replicas = replicas_each.to_string();
        let mut create = vec!["--cluster", "create"];
        create.extend(addresses.iter().map(String::as_str));
        create.extend(["--cluster-replicas", &replicas, "--cluster-yes"]);
        redis_cli(nodes[0].port, &create)?;
        let mut masters = Vec::new();
        let mut replicas = Vec::new();
        for node in nodes {
            if node.cli(&["ROLE"])?.starts_with("master") {
                masters.push(node);
            } else {
                replicas.push(node);
            }
        }
        let cluster = RedisCluster { masters, replicas };
        for node in cluster.masters.iter().chain(&cluster.replicas) {
            cluster.wait_until_serving(node)?;
        }
        for replica in &cluster.replicas {
            wait_for_link(replica)?;
        }
        Ok(cluster)
    }

    /// The replicas of the master at `index` in [`masters`](Self::masters).
    pub fn replicas_of(&self, index: usize) -> Result<Vec<&Redis>, Error> {
        let port = format!("master_port:{}", self.masters[index].port);
        let mut of = Vec::new();
        for replica in &self.replicas {
            if replica.cli(&["INFO", "replication"])?.lines().any(|l| l.trim() == port) {
                of.push(replica);
            }
        }
        Ok(of)
    }

    /// Waits until `node` says the cluster is whole and serves its slots.
    fn wait_until_serving(&self, node: &Redis) -> Result<(), Error> {
        let start = Instant::now();
        while !node.cli(&["CLUSTER", "INFO"])?.contains("cluster_state:ok") {
            if start.elapsed() > Duration::from_secs(15) {
                return Err(format!("cluster node {} did not join in 15 s", node.port).into());
            }
            thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    pub fn masters(&self) -> &[Redis] {
        &self.masters
    }

    pub fn masters_mut(&mut self) -> &mut [Redis] {
        &mut self.masters
    }

    /// The index in [`masters`](Self::masters) of the master serving
    /// `key`'s slot, from `CLUSTER NODES` (`<id> <ip:port@bus> <flags> …
    /// <first-last> …`).
    pub fn master_of(&self, key: &str) -> Result<usize, Error> {
        let slot: u16 = self.masters[0].cli(&["CLUSTER", "KEYSLOT", key])?.trim().parse()?;
        let nodes = self.masters[0].cli(&["CLUSTER", "NODES"])?;
        let serves = |range: &str| {
            let (first, last) = range.split_once('-').unwrap_or((range, range));
            first.parse().is_ok_and(|first: u16| first <= slot) && last.parse().is_ok_and(|last: u16| slot <= last)
        };
        let port = nodes
            .lines()
            .map(|line| line.split_whitespace().collect::<Vec<_>>())
            .find(|fields| fields.len() > 8 && fields[2].contains("master") && fields[8..].iter().any(|r| serves(r)))
            .and_then(|fields| fields[1].split(['@']).next()?.rsplit(':').next()?.parse::<u16>().ok())
            .ok_or_else(|| format!("no master serves slot {slot}"))?;
        self.masters
            .iter()
            .position(|m| m.port == port)
            .ok_or_else(|| format!("slot {slot} is served by {port}, not one of ours").into())
    }

    /// Restarts `node` (same port, data and cluster identity) and waits
    /// until it serves its slots again.
    pub fn restart(&mut self, index: usize) -> Result<(), Error> {
        self.masters[index].restart()?;
        self.wait_until_serving(&self.masters[index])
    }
}

/// Where `scripts/install-deps.sh` unpacks the npm package
/// `amplify-dynamodb-simulator`, whose `emulator/` is DynamoDB Local.
pub fn dynamodb_local_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("DYNAMODB_LOCAL_DIR") {
        return dir.into();
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    PathBuf::from(home).join(".cache/flashsale/dynamodb-local/package/emulator")
}

/// AWS's DynamoDB Local, in memory, run with the machine's Java.
pub struct DynamoLocal {
    port: u16,
    _process: Supervised,
}

impl DynamoLocal {
    pub fn start() -> Result<Self, Error> {
        let dir = dynamodb_local_dir();
        let jar = dir.join("DynamoDBLocal.jar");
        if !jar.exists() {
            return Err(format!(
                "{} not found: run scripts/install-deps.sh or set DYNAMODB_LOCAL_DIR",
                jar.display()
            )
            .into());
        }
        let port = free_port()?;
        let mut command = Command::new("java");
        command
            .arg(format!(
                "-Djava.library.path={}",
                dir.join("DynamoDBLocal_lib").display()
            ))
            .args(["-Xmx512m", "-XX:+UseSerialGC", "-jar"])
            .arg(&jar)
            .args(["-inMemory", "-port", &port.to_string()])
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let process = Supervised::spawn(command)
            .map_err(|e| format!("cannot start java for DynamoDB Local (is a JRE installed?): {e}"))?;
        // It binds every interface; we only ever talk to it on loopback.
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        wait_until(
            "DynamoDB Local",
            Duration::from_secs(30),
            || TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok(),
            &process,
        )?;
        Ok(DynamoLocal {
            port,
            _process: process,
        })
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// A router served by this process on a free loopback port (a provider's
/// stand-in), until dropped.
pub struct Served {
    pub address: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Served {
    pub async fn start(router: axum::Router) -> std::io::Result<Served> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Served { address, task })
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The program `bin` of the virtualenv `venv` that `scripts/install-deps.sh`
/// installs a PyPI stand-in into.
fn venv_program(venv: &str, bin: &str) -> PathBuf {
    let cache = std::env::var_os("FLASHSALE_CACHE").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into())).join(".cache/flashsale"),
        PathBuf::from,
    );
    cache.join(venv).join("bin").join(bin)
}

/// Starts `program` (installed by `scripts/install-deps.sh`) on a free
/// loopback port, which `command` is given to set its arguments (and write
/// anything they name), and waits until it listens.
pub(crate) fn start_listening(
    name: &str,
    program: PathBuf,
    command: impl FnOnce(&mut Command, u16) -> Result<(), Error>,
) -> Result<(u16, Supervised), Error> {
    if !program.exists() {
        return Err(format!("{} not found: run scripts/install-deps.sh", program.display()).into());
    }
    let port = free_port()?;
    let mut process = Command::new(&program);
    process.stdout(Stdio::null()).stderr(Stdio::inherit());
    command(&mut process, port)?;
    let process = Supervised::spawn(process).map_err(|e| format!("cannot start {name}: {e}"))?;
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    wait_until(
        name,
        Duration::from_secs(30),
        || TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok(),
        &process,
    )?;
    Ok((port, process))
}

/// `localstripe`, a stateful stand-in for Stripe's API that sends signed
/// webhooks, on loopback (its own command binds every interface, so it is
/// started from its app object instead).
pub struct LocalStripe {
    port: u16,
    _process: Supervised,
}

/// The secret key any `sk_…` of six or more characters passes for.
pub const LOCALSTRIPE_SECRET_KEY: &str = "sk_test_localstripe";

impl LocalStripe {
    pub fn start() -> Result<Self, Error> {
        let (port, process) = start_listening(
            "localstripe",
            venv_program("localstripe-venv", "python"),
            |command, port| {
                command
                    .args([
                        "-c",
                        "import sys\nfrom aiohttp import web\nfrom localstripe.server import app\n\
                     web.run_app(app, host='127.0.0.1', port=int(sys.argv[1]), print=None, access_log=None)",
                    ])
                    .arg(port.to_string());
                Ok(())
            },
        )?;
        Ok(LocalStripe {
            port,
            _process: process,
        })
    }

    /// Its API's base, as `STRIPE_API_BASE` takes it.
    pub fn api_base(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// Has localstripe send every event, signed with `secret`, to `url`
    /// (as a Stripe account's webhook endpoint). Each registration is sent
    /// every event.
    pub async fn send_webhooks_to(&self, url: &str, secret: &str) -> Result<(), Error> {
        let id = format!("we_{}", rand::random::<u64>());
        let reply = reqwest::Client::new()
            .post(format!("{}_config/webhooks/{id}", self.api_base()))
            .form(&[("url", url), ("secret", secret)])
            .send()
            .await?;
        match reply.status().is_success() {
            true => Ok(()),
            false => Err(format!("localstripe refused the webhook: {}", reply.status()).into()),
        }
    }

    /// Keys for an app that pays through this localstripe, its webhooks
    /// signed with `webhook_secret`.
    pub fn keys(&self, webhook_secret: &str) -> StripeKeys {
        StripeKeys {
            secret_key: Secret(LOCALSTRIPE_SECRET_KEY.into()),
            webhook_secret: Secret(webhook_secret.into()),
            api_base: self.api_base(),
            shop: None,
        }
    }
}

/// moto (PyPI `moto[server]`) on loopback: AWS's services stood in, S3
/// for the pages bucket and Secrets Manager for the cold-start benchmark.
pub struct Moto {
    port: u16,
    _process: Supervised,
}

impl Moto {
    pub fn start() -> Result<Self, Error> {
        let (port, process) = start_listening(
            "moto_server",
            venv_program("moto-venv", "moto_server"),
            |command, port| {
                // It logs every request on stderr.
                command
                    .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                    .stderr(Stdio::null());
                Ok(())
            },
        )?;
        Ok(Moto {
            port,
            _process: process,
        })
    }

    /// Its endpoint, as a client's `endpoint_url`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// The gate's Redis as the stack runs it: one node, or a cluster.
pub enum Cache {
    Single(Redis),
    Cluster(RedisCluster),
}

impl Cache {
    /// A cluster of three masters when `cluster`, else one node.
    pub fn start(cluster: bool) -> Result<Self, Error> {
        Ok(if cluster {
            Cache::Cluster(RedisCluster::start()?)
        } else {
            Cache::Single(Redis::start()?)
        })
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self, Cache::Cluster(_))
    }

    /// Every node, the first of which the gate is given to discover the rest.
    pub fn nodes(&self) -> &[Redis] {
        match self {
            Cache::Single(node) => std::slice::from_ref(node),
            Cache::Cluster(cluster) => cluster.masters(),
        }
    }

    pub fn url(&self) -> String {
        self.nodes()[0].url()
    }

    /// Takes the whole cache down (every node, gracefully).
    pub fn stop(&mut self) {
        match self {
            Cache::Single(node) => node.stop(),
            Cache::Cluster(cluster) => cluster.masters.iter_mut().for_each(Redis::stop),
        }
    }

    /// Brings every node back with its data and waits until it serves.
    pub fn restart(&mut self) -> Result<(), Error> {
        match self {
            Cache::Single(node) => node.restart(),
            Cache::Cluster(cluster) => {
                cluster.masters.iter_mut().try_for_each(Redis::launch)?;
                cluster.masters.iter().try_for_each(|m| cluster.wait_until_serving(m))
            }
        }
    }
}

/// Both backing services, each on a free loopback port.
pub struct Stack {
    pub redis: Cache,
    pub dynamo: DynamoLocal,
}

impl Stack {
    /// `cluster` runs the gate on a three-master Redis Cluster.
    pub fn start(cluster: bool) -> Result<Self, Error> {
        Ok(Stack {
            redis: Cache::start(cluster)?,
            dynamo: DynamoLocal::start()?,
        })
    }

    /// Settings for an app on this stack, signing tokens with `jwt_secret`.
    pub fn config(&self, jwt_secret: String) -> shared::config::Config {
        shared::config::Config {
            redis_cluster: self.redis.is_cluster(),
            ..shared::config::Config::local(self.redis.url(), self.dynamo.endpoint(), jwt_secret)
        }
    }
}
