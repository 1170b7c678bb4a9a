//! A proxy in front of PostgreSQL that passes everything but notices, as a connection pooler in
//! transaction mode does to a client that has issued `LISTEN`: every query is answered, no
//! notification ever arrives.

use std::path::PathBuf;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_postgres::config::Host;

#[derive(Clone)]
enum Upstream {
    Tcp(String),
    Unix(PathBuf),
}

/// Starts the proxy in front of the server `url` names; returns a URL of the same database through
/// it.
pub async fn start(url: &str) -> String {
    let config: tokio_postgres::Config = url.parse().expect("a database URL");
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let upstream = match config.get_hosts().first() {
        Some(Host::Tcp(host)) => Upstream::Tcp(format!("{host}:{port}")),
        Some(Host::Unix(dir)) => Upstream::Unix(dir.join(format!(".s.PGSQL.{port}"))),
        None => Upstream::Unix(PathBuf::from(format!("/var/run/postgresql/.s.PGSQL.{port}"))),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
    let address = listener.local_addr().expect("an address");
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(relay(client, upstream.clone()));
        }
    });
    let user = config.get_user().expect("a user in the database URL");
    let password = config.get_password().map(|p| format!(":{}", encoded(p))).unwrap_or_default();
    let database = config.get_dbname().expect("a database in the URL");
    format!("postgres://{user}{password}@127.0.0.1:{}/{database}?sslmode=disable", address.port())
}

fn encoded(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02X}")).collect()
}

async fn relay(client: tokio::net::TcpStream, upstream: Upstream) -> std::io::Result<()> {
    let (from_client, to_client) = client.into_split();
    match upstream {
        Upstream::Tcp(address) => pipe(from_client, to_client, tokio::net::TcpStream::connect(address).await?).await,
        Upstream::Unix(path) => pipe(from_client, to_client, tokio::net::UnixStream::connect(path).await?).await,
    }
}

async fn pipe(
    mut from_client: impl AsyncRead + Unpin + Send + 'static,
    to_client: impl AsyncWrite + Unpin,
    server: impl AsyncRead + AsyncWrite + Send + 'static,
) -> std::io::Result<()> {
    let (from_server, mut to_server) = tokio::io::split(server);
    tokio::spawn(async move { tokio::io::copy(&mut from_client, &mut to_server).await });
    without_notices(from_server, to_client).await
}

/// Copies the server's messages (a type byte, then a length that counts itself) except
/// NotificationResponse ('A'). With `sslmode=disable` no message comes before the first typed one.
async fn without_notices(mut from: impl AsyncRead + Unpin, mut to: impl AsyncWrite + Unpin) -> std::io::Result<()> {
    loop {
        let mut head = [0u8; 5];
        from.read_exact(&mut head).await?;
        let length = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let mut body = vec![0u8; length.saturating_sub(4)];
        from.read_exact(&mut body).await?;
        if head[0] != b'A' {
            to.write_all(&head).await?;
            to.write_all(&body).await?;
            to.flush().await?;
        }
    }
}
