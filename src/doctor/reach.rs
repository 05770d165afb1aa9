//! Is a host reachable? A name lookup and a TCP connection, all hosts at once, each
//! bounded by a short timeout: enough to tell "this network cannot reach CRAN" in a
//! second or two instead of half-way through a build.

use std::net::{TcpStream, ToSocketAddrs};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A host and port a recipe's URL names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    /// The endpoint of an http(s)/git/ssh URL; None for local paths and `file:` URLs.
    pub fn of(url: &str) -> Option<Endpoint> {
        let u = url::Url::parse(url).ok()?;
        let host = u.host_str()?.trim_start_matches('[').trim_end_matches(']').to_string();
        let port = u.port_or_known_default().or(match u.scheme() {
            "git" => Some(9418),
            "ssh" => Some(22),
            _ => None,
        })?;
        Some(Endpoint { host, port })
    }
}

/// Probes every endpoint in parallel; the answers come back in the same order. No probe
/// takes longer than `timeout` (a name lookup that hangs is given up on, not waited for).
pub fn probe_all(endpoints: &[Endpoint], timeout: Duration) -> Vec<Result<(), String>> {
    let (tx, rx) = mpsc::channel();
    for (i, e) in endpoints.iter().enumerate() {
        let tx = tx.clone();
        let e = e.clone();
        std::thread::spawn(move || {
            let _ = tx.send((i, probe(&e, timeout)));
        });
    }
    drop(tx);
    let mut out: Vec<Result<(), String>> = endpoints
        .iter()
        .map(|_| Err(format!("no answer within {}s", timeout.as_secs())))
        .collect();
    let deadline = Instant::now() + timeout + Duration::from_millis(500);
    let mut left = endpoints.len();
    while left > 0 {
        let Some(wait) = deadline.checked_duration_since(Instant::now()) else {
            break;
        };
        match rx.recv_timeout(wait) {
            Ok((i, r)) => {
                out[i] = r;
                left -= 1;
            }
            Err(_) => break,
        }
    }
    out
}

fn probe(e: &Endpoint, timeout: Duration) -> Result<(), String> {
    let addrs: Vec<_> = (e.host.as_str(), e.port)
        .to_socket_addrs()
        .map_err(|_| "name lookup failed".to_string())?
        .collect();
    if addrs.is_empty() {
        return Err("the name has no address".into());
    }
    let started = Instant::now();
    let mut last = String::new();
    for a in addrs {
        let Some(left) = timeout.checked_sub(started.elapsed()) else {
            break;
        };
        match TcpStream::connect_timeout(&a, left) {
            Ok(_) => return Ok(()),
            Err(err) => last = format!("connecting to {a}: {err}"),
        }
    }
    Err(if last.is_empty() {
        format!("no connection within {}s", timeout.as_secs())
    } else {
        last
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_come_from_urls() {
        let e = Endpoint::of("https://dl.gitea.com/gitea/1.24.6/").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("dl.gitea.com", 443));
        let e = Endpoint::of("http://127.0.0.1:8080/x").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("127.0.0.1", 8080));
        assert_eq!(Endpoint::of("git://example.org/r.git").unwrap().port, 9418);
        assert!(Endpoint::of("file:///srv/mirror").is_none());
        assert!(Endpoint::of("relative/path").is_none());
    }

    #[test]
    fn a_listening_port_answers_and_a_closed_one_does_not() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let open = Endpoint {
            host: "127.0.0.1".into(),
            port: l.local_addr().unwrap().port(),
        };
        // A port just freed is closed: connecting is refused at once.
        let closed = {
            let l2 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l2.local_addr().unwrap().port()
        };
        let closed = Endpoint {
            host: "127.0.0.1".into(),
            port: closed,
        };
        let bad_name = Endpoint {
            host: "no-such-host.invalid".into(),
            port: 80,
        };
        let r = probe_all(&[open, closed, bad_name], Duration::from_secs(3));
        assert!(r[0].is_ok(), "{r:?}");
        assert!(r[1].as_ref().unwrap_err().contains("refused"), "{r:?}");
        assert!(r[2].as_ref().unwrap_err().contains("name lookup failed"), "{r:?}");
    }
}
