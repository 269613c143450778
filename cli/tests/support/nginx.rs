//! nginx for the tests that check blast against it: started on sockets the test bound (port 0)
//! and handed over the way nginx's binary upgrade hands its sockets over (the `NGINX`
//! variable); stopped when dropped. nginx and openssl are installed by `.ci/run`.

use socket2::{Domain, Socket, Type};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A self-signed certificate for 127.0.0.1 and localhost, as `openssl req -x509` makes it.
pub fn self_signed(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
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

/// A socket listening on a free port of 127.0.0.1, with that port, left open across `exec`
/// so a server started after it can take it over (nginx's `NGINX` variable, hypercorn's
/// `fd://`): the port is never freed and bound again.
pub fn listener() -> (Socket, u16) {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    socket.bind(&any.into()).unwrap();
    socket.listen(1024).unwrap();
    socket.set_cloexec(false).unwrap();
    let port = socket.local_addr().unwrap().as_socket().unwrap().port();
    (socket, port)
}

/// A running nginx; TERM when dropped.
pub struct Nginx {
    child: Child,
    /// The ports of its listeners, in the order the config was given them.
    pub ports: Vec<u16>,
}

impl Nginx {
    /// nginx with one worker, serving `http` (the inside of its `http {}` block, made from the
    /// ports of `listeners` sockets bound here), its files in `dir`.
    pub fn start(dir: &Path, listeners: usize, http: impl FnOnce(&[u16]) -> String) -> Nginx {
        let (sockets, ports): (Vec<Socket>, Vec<u16>) = (0..listeners).map(|_| listener()).unzip();
        let conf = dir.join("nginx.conf");
        let d = dir.display();
        std::fs::write(
            &conf,
            format!(
                "daemon off; worker_processes 1; pid {d}/nginx.pid; error_log {d}/error.log;\n\
                 events {{}}\n\
                 http {{ {} }}\n",
                http(&ports)
            ),
        )
        .unwrap();
        let fds: String = sockets
            .iter()
            .map(|s| format!("{};", s.as_raw_fd()))
            .collect();
        let child = Command::new(binary())
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(&conf)
            .env("NGINX", fds)
            // Its workers must not hold the test's output open after it.
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx starts");
        // nginx has its own copies now; connections wait in the queues until it accepts.
        drop(sockets);
        Nginx { child, ports }
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
fn binary() -> &'static str {
    ["/usr/sbin/nginx", "nginx"]
        .into_iter()
        .find(|b| Command::new(b).arg("-v").output().is_ok())
        .expect("nginx is installed (.ci/run installs it: apt-get install nginx)")
}
