//! The private PostgreSQL cluster of the zero-configuration start (and of the tests).
//!
//! Haven runs the machine's own PostgreSQL server binaries in a directory it owns, reachable only
//! through a Unix socket in a 0700 directory. `initdb` refuses to run as root, so as root the
//! cluster runs as the unprivileged `postgres` system user (via `setpriv`, which passes signals
//! on, unlike `su`). The server is started under a small shell that holds a pipe from us: when
//! Haven exits for any reason, even `kill -9`, the pipe closes and the server is shut down, so no
//! orphaned cluster keeps the data directory locked.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

const PORT: u16 = 5432;
const SOCKET_PATH_MAX: usize = 100;

/// The data directory: traversable but not listable by others (0711), so the unprivileged
/// `postgres` user reaches its cluster inside while the secrets file stays private (0600).
/// Permissions are only set on a directory Haven creates; an existing one is used as it is, so a
/// mistaken HAVEN_DATA_DIR=/tmp or a home directory is never loosened.
pub fn prepare_data_dir(dir: &std::path::Path) -> Result<(), ClusterError> {
    let fail = |e: std::io::Error| ClusterError::Step { step: "preparing the data directory", detail: e.to_string() };
    if std::fs::symlink_metadata(dir).is_ok() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(fail)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711)).map_err(fail)?;
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "no PostgreSQL server binaries (initdb, postgres) were found on PATH or under \
         /usr/lib/postgresql/*/bin. Install them (Debian/Ubuntu: `apt-get install postgresql`), \
         or set DATABASE_URL to use an existing PostgreSQL server."
    )]
    BinariesMissing,
    #[error(
        "running as root, but there is no unprivileged `postgres` user to run the local cluster \
         as (initdb refuses root). Install the `postgresql` package (it creates the user), run \
         Haven as a normal user, or set DATABASE_URL."
    )]
    NoUnprivilegedUser,
    #[error(
        "HAVEN_PG_BIN_DIR is {0}, but initdb and postgres are not both there. Point it at the \
         directory holding them (e.g. /usr/lib/postgresql/15/bin), or unset it to search."
    )]
    BinariesNotInDir(PathBuf),
    #[error(
        "the unprivileged `postgres` user cannot reach {0} (a parent directory is not traversable \
         by others, e.g. a home directory with mode 0700). Set HAVEN_DATA_DIR to a directory \
         outside it, e.g. /var/lib/haven, or set DATABASE_URL."
    )]
    NotTraversable(PathBuf),
    #[error("the socket path {0} is too long for a Unix socket; set HAVEN_DATA_DIR to a shorter path")]
    SocketPathTooLong(PathBuf),
    #[error("{step} failed: {detail}")]
    Step { step: &'static str, detail: String },
}

fn step(step: &'static str, detail: impl std::fmt::Display) -> ClusterError {
    ClusterError::Step { step, detail: detail.to_string() }
}

#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Directory holding the cluster (`data/`), its socket (`run/`) and its log.
    pub root: PathBuf,
    /// Throw-away settings for tests: no fsync, and the directory is removed when the server stops.
    pub ephemeral: bool,
    /// Where initdb and postgres are; discovered when `None`.
    pub bin_dir: Option<PathBuf>,
}

pub struct LocalCluster {
    /// The shell that owns the server; closing its stdin stops the server.
    guard: Option<(Child, ChildStdin)>,
    socket_dir: PathBuf,
    log_path: PathBuf,
}

struct Binaries {
    dir: PathBuf,
}

/// The directory of the PostgreSQL server binaries the private cluster uses (for `pg_dump` and
/// `pg_restore` beside them, as a backup would use them).
pub fn bin_dir(explicit: Option<&Path>) -> Result<PathBuf, ClusterError> {
    Binaries::find(explicit).map(|b| b.dir)
}

impl Binaries {
    fn find(explicit: Option<&Path>) -> Result<Binaries, ClusterError> {
        let has_both = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
        if let Some(dir) = explicit {
            return if has_both(dir) {
                Ok(Binaries { dir: dir.to_owned() })
            } else {
                Err(ClusterError::BinariesNotInDir(dir.to_owned()))
            };
        }
        // Debian keeps the server binaries outside PATH; the newest version wins.
        let mut versioned: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let version = e.file_name().to_str()?.parse::<u32>().ok()?;
                Some((version, e.path().join("bin")))
            })
            .filter(|(_, dir)| has_both(dir))
            .collect();
        versioned.sort();
        if let Some((_, dir)) = versioned.pop() {
            return Ok(Binaries { dir });
        }
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .find(|dir| has_both(dir))
            .map(|dir| Binaries { dir })
            .ok_or(ClusterError::BinariesMissing)
    }

    fn bin(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// Who the server runs as: ourselves, or (as root) the `postgres` user.
struct RunAs {
    ids: Option<(nix::unistd::Uid, nix::unistd::Gid)>,
}

impl RunAs {
    fn detect() -> Result<RunAs, ClusterError> {
        if !nix::unistd::geteuid().is_root() {
            return Ok(RunAs { ids: None });
        }
        let user = nix::unistd::User::from_name("postgres").ok().flatten().ok_or(ClusterError::NoUnprivilegedUser)?;
        Ok(RunAs { ids: Some((user.uid, user.gid)) })
    }

    fn command(&self, program: &Path) -> Command {
        match self.ids {
            None => Command::new(program),
            Some((uid, gid)) => {
                let mut cmd = Command::new("setpriv");
                cmd.arg(format!("--reuid={uid}")).arg(format!("--regid={gid}")).arg("--init-groups").arg(program);
                cmd
            }
        }
    }

    /// As root, every existing ancestor of `path` must let others through, or the server (running
    /// as `postgres`) cannot reach its own directory.
    fn check_reachable(&self, path: &Path) -> Result<(), ClusterError> {
        if self.ids.is_none() {
            return Ok(());
        }
        for dir in path.ancestors().skip(1).filter(|d| d.exists()) {
            let mode = fs::metadata(dir).map_err(|e| step("inspecting the data directory", e))?.permissions().mode();
            if mode & 0o001 == 0 {
                return Err(ClusterError::NotTraversable(dir.to_owned()));
            }
        }
        Ok(())
    }

    fn own(&self, path: &Path) -> Result<(), ClusterError> {
        if let Some((uid, gid)) = self.ids {
            nix::unistd::chown(path, Some(uid), Some(gid)).map_err(|e| step("chown", e))?;
        }
        Ok(())
    }
}

/// Haven (as root) changes ownership and modes inside a directory the server user controls: it
/// must never follow a link planted there, or that user could have root chown any file.
fn refuse_link(path: &Path) -> Result<(), ClusterError> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(step(
            "checking the data directory",
            format!("{} is a symbolic link; refusing to use it", path.display()),
        )),
        _ => Ok(()),
    }
}

fn make_private_dir(path: &Path, run_as: &RunAs) -> Result<(), ClusterError> {
    refuse_link(path)?;
    fs::create_dir_all(path).map_err(|e| step("creating the data directory", e))?;
    refuse_link(path)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o700))
        .map_err(|e| step("setting data directory permissions", e))?;
    run_as.own(path)
}

impl LocalCluster {
    /// Initialises (first time only) and starts the cluster, and waits until it accepts
    /// connections. Blocking: call it outside the async runtime.
    pub fn start(options: &ClusterOptions) -> Result<LocalCluster, ClusterError> {
        let binaries = Binaries::find(options.bin_dir.as_deref())?;
        let run_as = RunAs::detect()?;
        let root = std::path::absolute(&options.root).map_err(|e| step("resolving the data directory", e))?;
        let data = root.join("data");
        let socket_dir = root.join("run");
        let socket = socket_dir.join(format!(".s.PGSQL.{PORT}"));
        if socket.as_os_str().len() > SOCKET_PATH_MAX {
            return Err(ClusterError::SocketPathTooLong(socket));
        }
        run_as.check_reachable(&root)?;
        make_private_dir(&root, &run_as)?;
        make_private_dir(&socket_dir, &run_as)?;
        // Another Haven process (the server, while `haven seed` runs) already runs this cluster:
        // use it, and leave it running when done. Only after the directories are ours and private
        // (no links, mode 0700), so nobody else can have put a server behind that socket; and
        // only with this cluster's own postmaster.pid.
        if data.join("postmaster.pid").is_file() && std::os::unix::net::UnixStream::connect(&socket).is_ok() {
            return Ok(LocalCluster { guard: None, socket_dir, log_path: root.join("postgres.log") });
        }
        if !data.join("PG_VERSION").exists() {
            make_private_dir(&data, &run_as)?;
            let mut initdb = run_as.command(&binaries.bin("initdb"));
            initdb
                .current_dir(&root)
                .args(["--auth=trust", "--username=postgres", "--encoding=UTF8", "--locale=C.UTF-8"])
                .arg("--pgdata")
                .arg(&data);
            if options.ephemeral {
                initdb.arg("--no-sync");
            }
            let output = initdb.output().map_err(|e| step("running initdb", e))?;
            if !output.status.success() {
                let stderr = String::from_utf8_lossy(&output.stderr);
                return Err(step("initdb", stderr.trim()));
            }
        }
        let log_path = root.join("postgres.log");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
            .open(&log_path)
            .map_err(|e| step("opening the PostgreSQL log", e))?;
        if let Some((uid, gid)) = run_as.ids {
            nix::unistd::fchown(&log, Some(uid), Some(gid)).map_err(|e| step("chown", e))?;
        }

        let mut server_args: Vec<String> = vec![
            binaries.bin("postgres").display().to_string(),
            "-D".into(),
            data.display().to_string(),
            "-k".into(),
            socket_dir.display().to_string(),
            "-p".into(),
            PORT.to_string(),
            "-c".into(),
            "listen_addresses=".into(),
            "-c".into(),
            "unix_socket_permissions=0700".into(),
            "-c".into(),
            "max_connections=200".into(),
        ];
        if options.ephemeral {
            for setting in ["fsync=off", "synchronous_commit=off", "full_page_writes=off"] {
                server_args.push("-c".into());
                server_args.push(setting.into());
            }
        }
        // `$0 "$@"` is the server command line; the shell waits for our pipe to close, then asks
        // the server for a fast shutdown and waits for it.
        let cleanup = if options.ephemeral { "; rm -rf \"$ROOT\"" } else { "" };
        let script = format!("\"$0\" \"$@\" & p=$!; cat >/dev/null; kill -INT $p 2>/dev/null; wait $p{cleanup}");
        let mut shell = run_as.command(Path::new("/bin/sh"));
        shell
            .current_dir(&root)
            .env("ROOT", &root)
            .arg("-c")
            .arg(script)
            .args(&server_args)
            .stdin(Stdio::piped())
            .stdout(log.try_clone().map_err(|e| step("opening the PostgreSQL log", e))?)
            .stderr(log)
            // Its own process group: a Ctrl-C meant for Haven must not stop the database while
            // Haven is still finishing requests.
            .process_group(0);
        let mut child = shell.spawn().map_err(|e| step("starting postgres", e))?;
        let stdin = child.stdin.take().expect("stdin is piped");
        let mut cluster = LocalCluster { guard: Some((child, stdin)), socket_dir, log_path };
        cluster.wait_until_ready(&socket, Duration::from_secs(60))?;
        Ok(cluster)
    }

    fn wait_until_ready(&mut self, socket: &Path, timeout: Duration) -> Result<(), ClusterError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some((child, _)) = self.guard.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(step(
                    "starting postgres",
                    format!("server exited ({status}); its log says: {}", self.log_tail()),
                ));
            }
            if socket.exists() && std::os::unix::net::UnixStream::connect(socket).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(step("starting postgres", format!("not ready in time; log: {}", self.log_tail())));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_tail(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = fs::File::open(&self.log_path) {
            let _ = f.read_to_string(&mut text);
        }
        let lines: Vec<&str> = text.lines().rev().take(5).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
    }

    /// Whether this process started the server (and stops it when dropped), rather than finding
    /// it already running.
    pub fn started_here(&self) -> bool {
        self.guard.is_some()
    }

    /// Connection URL for a database of this cluster.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres:///{database}?host={}&port={PORT}&user=postgres",
            percent_encode(&self.socket_dir.display().to_string())
        )
    }

    /// Stops the server and waits for it (also done on drop).
    pub fn stop(&mut self) {
        if let Some((mut child, stdin)) = self.guard.take() {
            drop(stdin);
            let _ = child.wait();
        }
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        self.stop();
    }
}

fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Creates `name` on the server behind `admin_url` (a URL to its `postgres` database) unless it
/// exists, optionally from a template. Retries while the server is still starting up.
pub fn ensure_database(admin_url: &str, name: &str, template: Option<&str>) -> Result<(), ClusterError> {
    let admin_url = admin_url.to_owned();
    let name = name.to_owned();
    let template = template.map(str::to_owned);
    std::thread::spawn(move || {
        use diesel::{Connection, RunQueryDsl};
        use diesel_async::AsyncPgConnection;
        use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut conn = loop {
            match AsyncConnectionWrapper::<AsyncPgConnection>::establish(&admin_url) {
                Ok(conn) => break conn,
                Err(e) if Instant::now() > deadline => return Err(step("connecting to PostgreSQL", e)),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        };
        #[derive(diesel::QueryableByName)]
        struct Exists {
            #[diesel(sql_type = diesel::sql_types::Bool)]
            exists: bool,
        }
        let found: Exists = diesel::sql_query("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS exists")
            .bind::<diesel::sql_types::Text, _>(&name)
            .get_result(&mut conn)
            .map_err(|e| step("looking up the database", e))?;
        if !found.exists {
            let quoted = quote_ident(&name);
            let sql = match &template {
                Some(t) => format!("CREATE DATABASE {quoted} TEMPLATE {}", quote_ident(t)),
                None => format!("CREATE DATABASE {quoted}"),
            };
            diesel::sql_query(sql).execute(&mut conn).map_err(|e| step("creating the database", e))?;
        }
        Ok(())
    })
    .join()
    .unwrap_or_else(|_| Err(step("creating the database", "thread panicked")))
}

pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
