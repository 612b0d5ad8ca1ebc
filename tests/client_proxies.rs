//! Clients through real proxies: Debian's `tinyproxy` (HTTP CONNECT, with
//! and without Basic credentials) and `microsocks` (SOCKS5, with and
//! without user and password), `ws://` and `wss://`, both adapters; and
//! the failures a user meets, each reported clearly: 407 without
//! credentials, a SOCKS5 server refusing the credentials, a SOCKS5 server
//! that cannot reach the target. Run by tests/proxies/run, which installs
//! the two proxies.
#![cfg(all(
    feature = "rustls-tls-webpki-roots",
    feature = "tokio",
    feature = "blocking"
))]

#[path = "common/tls.rs"]
mod tls;

use rfc6455::Driver;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rfc6455::proxy::{Proxy, ProxyError};
use rfc6455::tokio::{Connector, Error};
use rfc6455::{Config, Message};
use tls::{echo_server, TestPki};

/// A proxy process, killed on drop.
struct Running {
    child: Child,
    port: u16,
    _dir: Option<TempDir>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A directory removed on drop.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_listening(port: u16) {
    for _ in 0..200 {
        // Not a connection to itself (see tests/common/example.rs).
        if let Ok(probe) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            if probe.local_addr().map(|a| a.port()).ok() != Some(port) {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("the proxy did not listen on {port}");
}

/// tinyproxy on a free port; with `credentials`, it wants Basic auth.
/// No `ConnectPort` line: CONNECT to any port is allowed.
fn tinyproxy(credentials: Option<(&str, &str)>) -> Running {
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("rfc6455-tinyproxy-{port}"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut config = format!(
        "Port {port}\nListen 127.0.0.1\nTimeout 60\nMaxClients 100\nAllow 127.0.0.1\n\
         LogLevel Warning\nUser nobody\nGroup nogroup\n"
    );
    if let Some((user, password)) = credentials {
        config.push_str(&format!("BasicAuth {user} {password}\n"));
    }
    let path = dir.join("tinyproxy.conf");
    std::fs::write(&path, config).unwrap();
    let child = Command::new("tinyproxy")
        .arg("-d")
        .arg("-c")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tinyproxy (tests/proxies/run installs it)");
    wait_listening(port);
    Running {
        child,
        port,
        _dir: Some(TempDir(dir)),
    }
}

/// microsocks on a free port; with `credentials`, it wants them.
fn microsocks(credentials: Option<(&str, &str)>) -> Running {
    let port = free_port();
    let mut command = Command::new("microsocks");
    command.args(["-i", "127.0.0.1", "-p", &port.to_string()]);
    if let Some((user, password)) = credentials {
        command.args(["-u", user, "-P", password]);
    }
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("microsocks (tests/proxies/run installs it)");
    wait_listening(port);
    Running {
        child,
        port,
        _dir: None,
    }
}

/// The two echo servers every test talks to: ws:// and wss:// (a private
/// CA, trusted through the connector).
struct Targets {
    plain: SocketAddr,
    secure: SocketAddr,
    pki: TestPki,
}

fn targets() -> Targets {
    let pki = TestPki::new(&["localhost"]);
    Targets {
        plain: echo_server(None),
        secure: echo_server(Some(pki.acceptor())),
        pki,
    }
}

/// A round trip through `proxy` to ws:// and wss://, with the tokio
/// adapter and then the blocking one.
async fn round_trips(proxy: Proxy, targets: &Targets) {
    let connector = Connector::new()
        .proxy(proxy)
        .rustls(targets.pki.client_config());
    let urls = [
        format!("ws://localhost:{}/via-proxy", targets.plain.port()),
        format!("wss://localhost:{}/via-proxy", targets.secure.port()),
    ];
    for url in &urls {
        let mut ws = rfc6455::tokio::connect_with_connector(url, Config::default(), &connector)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        ws.send_text(url).await.unwrap();
        assert_eq!(ws.recv().await.unwrap(), Some(Message::from(url.as_str())));
        ws.close(rfc6455::CloseCode::NORMAL, "").await.unwrap();
        while ws.recv().await.unwrap().is_some() {}
    }
    tokio::task::spawn_blocking(move || {
        for url in &urls {
            let mut ws =
                rfc6455::blocking::connect_with_connector(url, Config::default(), &connector)
                    .unwrap_or_else(|e| panic!("{url}: {e}"));
            ws.send_text(url).unwrap();
            assert_eq!(ws.recv().unwrap(), Some(Message::from(url.as_str())));
        }
    })
    .await
    .unwrap();
}

async fn refused(proxy: Proxy, targets: &Targets) -> Error {
    let connector = Connector::new().proxy(proxy);
    let url = format!("ws://localhost:{}/", targets.plain.port());
    rfc6455::tokio::connect_with_connector(&url, Config::default(), &connector)
        .await
        .unwrap_err()
}

#[tokio::test]
#[ignore = "needs tinyproxy and microsocks: tests/proxies/run"]
async fn through_tinyproxy() {
    let targets = targets();
    let open = tinyproxy(None);
    round_trips(
        Proxy::parse(&format!("http://127.0.0.1:{}", open.port)).unwrap(),
        &targets,
    )
    .await;

    let guarded = tinyproxy(Some(("ann", "s3cret")));
    let with = format!("http://ann:s3cret@127.0.0.1:{}", guarded.port);
    round_trips(Proxy::parse(&with).unwrap(), &targets).await;
    let without = Proxy::parse(&format!("http://127.0.0.1:{}", guarded.port)).unwrap();
    let err = refused(without, &targets).await;
    assert!(
        matches!(err, Error::Proxy(ProxyError::Refused(407))),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("407 Proxy Authentication Required"),
        "{err}"
    );
}

#[tokio::test]
#[ignore = "needs tinyproxy and microsocks: tests/proxies/run"]
async fn through_microsocks() {
    let targets = targets();
    let open = microsocks(None);
    round_trips(
        Proxy::parse(&format!("socks5://127.0.0.1:{}", open.port)).unwrap(),
        &targets,
    )
    .await;

    let guarded = microsocks(Some(("ann", "s3cret")));
    let with = format!("socks5h://ann:s3cret@127.0.0.1:{}", guarded.port);
    round_trips(Proxy::parse(&with).unwrap(), &targets).await;
    let wrong = format!("socks5://ann:wrong@127.0.0.1:{}", guarded.port);
    let err = refused(Proxy::parse(&wrong).unwrap(), &targets).await;
    assert!(matches!(err, Error::Proxy(ProxyError::SocksAuth)), "{err}");

    // A target nobody listens on: the proxy says why.
    let connector =
        Connector::new().proxy(Proxy::parse(&format!("socks5://127.0.0.1:{}", open.port)).unwrap());
    let url = format!("ws://127.0.0.1:{}/", free_port());
    let err = rfc6455::tokio::connect_with_connector(&url, Config::default(), &connector)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Proxy(ProxyError::Socks(_))), "{err}");
    assert!(
        err.to_string()
            .starts_with("proxy: the SOCKS5 proxy refused: "),
        "{err}"
    );
}

/// `connect` reads the proxy from the environment as curl does: run in a
/// child process (the environment is the process's), which this test
/// starts with `HTTP_PROXY` naming a tinyproxy that wants credentials.
/// Through it the connection gets 407; with the target in `NO_PROXY` it
/// goes direct and succeeds.
#[tokio::test]
#[ignore = "needs tinyproxy and microsocks: tests/proxies/run"]
async fn connect_reads_the_proxy_from_the_environment() {
    let targets = targets();
    let guarded = tinyproxy(Some(("ann", "s3cret")));
    let url = format!("ws://localhost:{}/from-env", targets.plain.port());
    let child = |no_proxy: &str| {
        let output = Command::new(std::env::current_exe().unwrap())
            .args(["--ignored", "--exact", "env_child", "--nocapture"])
            .env("RFC6455_ENV_CHILD_URL", &url)
            .env("http_proxy", format!("http://127.0.0.1:{}", guarded.port))
            .env("NO_PROXY", no_proxy)
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let through = child("");
    assert!(
        through.contains("CHILD: proxy: the proxy wants authentication (407"),
        "{through}"
    );
    let direct = child("localhost");
    assert!(direct.contains("CHILD: connected"), "{direct}");
}

/// The child of the test above: connects with the environment's proxy.
#[tokio::test]
#[ignore = "run by connect_reads_the_proxy_from_the_environment"]
async fn env_child() {
    let Ok(url) = std::env::var("RFC6455_ENV_CHILD_URL") else {
        return;
    };
    match rfc6455::tokio::connect(&url).await {
        Ok(_) => println!("CHILD: connected"),
        Err(e) => println!("CHILD: {e}"),
    }
}
