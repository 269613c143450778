//! `--ca-cert` against a real server, nginx, serving a certificate made the usual way
//! (`openssl req -x509`, which marks it CA:TRUE): passed as itself it is trusted, as curl and
//! wrk trust it; a different self-signed certificate is still refused, with a message that
//! names both ways out. nginx and openssl are installed by `.ci/run`.

use socket2::{Domain, Socket, Type};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// A self-signed certificate for 127.0.0.1 and localhost, as `openssl req -x509` makes it.
fn self_signed(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
        .args(["-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl runs (.ci/run installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

/// nginx serving HTTPS with `cert` on a port the test bound (port 0), handed over the way
/// nginx's binary upgrade hands its sockets over (the `NGINX` variable); killed when dropped.
struct Nginx {
    child: Child,
    port: u16,
}

impl Nginx {
    fn start(dir: &Path, cert: &Path, key: &Path) -> Nginx {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        socket
            .bind(
                &"127.0.0.1:0"
                    .parse::<std::net::SocketAddr>()
                    .unwrap()
                    .into(),
            )
            .unwrap();
        socket.listen(128).unwrap();
        socket.set_cloexec(false).unwrap();
        let port = socket.local_addr().unwrap().as_socket().unwrap().port();
        let conf = dir.join("nginx.conf");
        let d = dir.display();
        std::fs::write(
            &conf,
            format!(
                "daemon off; worker_processes 1; pid {d}/nginx.pid; error_log {d}/error.log;\n\
                 events {{}}\n\
                 http {{ access_log off; server {{ listen 127.0.0.1:{port} ssl;\n\
                 ssl_certificate {}; ssl_certificate_key {};\n\
                 location / {{ return 200 \"ok\\n\"; }} }} }}\n",
                cert.display(),
                key.display()
            ),
        )
        .unwrap();
        let child = Command::new(nginx())
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(&conf)
            .env("NGINX", format!("{};", socket.as_raw_fd()))
            // Its workers must not hold the test's output open after it.
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx starts");
        // nginx has its own copy now; connections wait in the socket's queue until it accepts.
        drop(socket);
        Nginx { child, port }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // TERM (not KILL): the master stops its workers before it exits.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// nginx's binary (Debian puts it in /usr/sbin, often not on a user's PATH).
fn nginx() -> &'static str {
    ["/usr/sbin/nginx", "nginx"]
        .into_iter()
        .find(|b| Command::new(b).arg("-v").output().is_ok())
        .expect("nginx is installed (.ci/run installs it: apt-get install nginx)")
}

fn blast(port: u16, ca: &Path, json: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_blast"))
        .arg(format!("https://127.0.0.1:{port}/"))
        .args(["-u", "2", "-t", "1s", "-q", "--no-pin", "--ca-cert"])
        .arg(ca)
        .arg("--json")
        .arg(json)
        .output()
        .unwrap()
}

#[test]
#[ignore = "needs nginx and openssl: .ci/run installs them and runs the ignored tests"]
fn a_pinned_openssl_certificate_is_trusted_and_another_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path(), "served");
    let (other, _) = self_signed(dir.path(), "other");
    let nginx = Nginx::start(dir.path(), &cert, &key);

    let json = dir.path().join("pinned.json");
    let out = blast(nginx.port, &cert, &json);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(record["requests"].as_u64().unwrap() > 0, "{record}");
    assert_eq!(record["failures"], 0, "{record}");

    let out = blast(nginx.port, &other, &dir.path().join("other.json"));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--ca-cert") && err.contains("--insecure"),
        "{err}"
    );
}
