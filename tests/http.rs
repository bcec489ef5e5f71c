//! A minimal HTTP/1.1 client over `std::net` for tests against a real `faultline serve`:
//! keep-alive, Content-Length bodies, reconnect on a closed connection.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A response: status and body text.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub body: String,
}

impl Resp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// One keep-alive connection.
pub struct Client {
    addr: SocketAddr,
    conn: Option<BufReader<TcpStream>>,
    pub token: Option<String>,
}

impl Client {
    pub fn new(addr: SocketAddr) -> Self {
        Client {
            addr,
            conn: None,
            token: None,
        }
    }

    /// Sends one request; reconnects once if the kept-alive connection was closed.
    pub fn send(&mut self, method: &str, path: &str, body: &[u8]) -> std::io::Result<Resp> {
        match self.try_send(method, path, body) {
            Ok(r) => Ok(r),
            Err(_) => {
                self.conn = None;
                self.try_send(method, path, body)
            }
        }
    }

    fn try_send(&mut self, method: &str, path: &str, body: &[u8]) -> std::io::Result<Resp> {
        if self.conn.is_none() {
            let s = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5))?;
            s.set_read_timeout(Some(Duration::from_secs(30)))?;
            s.set_nodelay(true)?;
            self.conn = Some(BufReader::new(s));
        }
        let conn = self.conn.as_mut().unwrap();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
            body.len()
        );
        if let Some(t) = &self.token {
            req.push_str(&format!("authorization: Bearer {t}\r\n"));
        }
        req.push_str("\r\n");
        let s = conn.get_mut();
        s.write_all(req.as_bytes())?;
        // A server may answer (413, 401) before reading a large body and close: that is fine.
        let _ = s.write_all(body);
        let mut line = String::new();
        if conn.read_line(&mut line)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
        let mut len = 0usize;
        let mut close = false;
        loop {
            let mut h = String::new();
            conn.read_line(&mut h)?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let lower = h.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            }
            if lower.starts_with("connection:") && lower.contains("close") {
                close = true;
            }
        }
        let mut buf = vec![0; len];
        conn.read_exact(&mut buf)?;
        if close {
            self.conn = None;
        }
        Ok(Resp {
            status,
            body: String::from_utf8_lossy(&buf).into_owned(),
        })
    }

    pub fn get(&mut self, path: &str) -> Resp {
        self.send("GET", path, b"").expect("GET")
    }

    pub fn post(&mut self, path: &str, body: &str) -> Resp {
        self.send("POST", path, body.as_bytes()).expect("POST")
    }
}

/// A `faultline serve` child on a free loopback port (killed on drop).
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Server {
    /// Starts `faultline serve --data DATA --addr 127.0.0.1:0 EXTRA...` and waits for it to
    /// print its address.
    pub fn start(data: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_faultline"))
            .args(["serve", "--addr", "127.0.0.1:0", "--data"])
            .arg(data)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn faultline serve");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).expect("read address");
        let addr = line
            .trim()
            .rsplit("http://")
            .next()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in out.lines() {});
        Server { child, addr }
    }

    pub fn client(&self) -> Client {
        Client::new(self.addr)
    }

    /// SIGTERM, then wait (graceful shutdown flushes the WAL).
    pub fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        self.child.wait().expect("wait")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
