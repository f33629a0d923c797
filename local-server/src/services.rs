//! The backing services of a local run or a test run: a real `redis-server`
//! and AWS's DynamoDB Local, each on a free loopback port, each killed when
//! its handle drops or when this process dies, whichever comes first.

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

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// A free TCP port on 127.0.0.1 (the OS picks it; we let go right away).
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A child process that dies with us. The kernel's parent-death signal is
/// tied to the thread that forks, so each child gets a supervisor thread
/// that forks it and then lives exactly as long as it does.
struct Supervised {
    pid: libc::pid_t,
    exited: Mutex<mpsc::Receiver<()>>,
}

impl Supervised {
    fn spawn(mut command: Command) -> Result<Self, Error> {
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
        // SAFETY: sending a signal to our own child's pid.
        unsafe { libc::kill(self.pid, signal) };
        let _ = self
            .exited
            .lock()
            .map(|exited| exited.recv_timeout(Duration::from_secs(10)));
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

fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool, child: &Supervised) -> Result<(), Error> {
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

/// `redis-server` (from the Debian package) with an append-only file in a
/// private directory, so a restart keeps the data as a replicated,
/// persistent ElastiCache node would.
pub struct Redis {
    port: u16,
    dir: tempfile::TempDir,
    process: Option<Supervised>,
}

impl Redis {
    pub fn start() -> Result<Self, Error> {
        let mut redis = Redis {
            port: free_port()?,
            dir: tempfile::tempdir()?,
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

    /// Stops the server gracefully (it flushes its append-only file).
    pub fn stop(&mut self) {
        if let Some(process) = self.process.take() {
            process.signal_and_wait(libc::SIGTERM);
        }
    }

    /// Starts it again on the same port with the same data.
    pub fn restart(&mut self) -> Result<(), Error> {
        self.stop();
        self.launch()
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

/// Both backing services, each on a free loopback port.
pub struct Stack {
    pub redis: Redis,
    pub dynamo: DynamoLocal,
}

impl Stack {
    pub fn start() -> Result<Self, Error> {
        Ok(Stack {
            redis: Redis::start()?,
            dynamo: DynamoLocal::start()?,
        })
    }

    /// Settings for an app on this stack, signing tokens with `jwt_secret`.
    pub fn config(&self, jwt_secret: String) -> shared::config::Config {
        shared::config::Config::local(self.redis.url(), self.dynamo.endpoint(), jwt_secret)
    }
}
