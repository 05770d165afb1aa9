//! HTTP checks of a booted guest from the host: QEMU forwards a localhost port to the
//! guest's port 80, and once the probe has reported, each asked-for path must answer
//! 200. The guest's network may come up after multi-user.target, so each path is tried
//! until a shared deadline.

use std::time::{Duration, Instant};

/// How long after the probe's report the guest's web server may take to answer. Services
/// behind nginx start after multi-user.target is reached, and under QEMU without KVM
/// Etherpad needs about three minutes before it listens (node loading npm to list its
/// plugins); a passing check costs none of this.
pub const DEADLINE: Duration = Duration::from_secs(360);

/// One path's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCheck {
    pub path: String,
    /// The last HTTP status seen (None: no answer at all).
    pub status: Option<u16>,
    pub bytes: u64,
    /// Why it failed, when it did.
    pub error: Option<String>,
}

impl HttpCheck {
    pub fn passed(&self) -> bool {
        self.status == Some(200) && self.error.is_none()
    }
}

/// A free localhost port for QEMU's forward (released again just before QEMU binds it).
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// GETs every path on `127.0.0.1:port`; one without an answer (or with a 5xx) is tried
/// again until [`DEADLINE`] has passed.
pub fn check(port: u16, paths: &[String]) -> Vec<HttpCheck> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(20)))
        .http_status_as_error(false)
        .build()
        .into();
    let until = Instant::now() + DEADLINE;
    paths
        .iter()
        .map(|path| {
            let url = format!("http://127.0.0.1:{port}{path}");
            loop {
                let got = match agent.get(&url).call() {
                    Ok(mut r) => {
                        let status = r.status().as_u16();
                        match r.body_mut().with_config().limit(64 << 20).read_to_vec() {
                            Ok(body) => HttpCheck {
                                path: path.clone(),
                                status: Some(status),
                                bytes: body.len() as u64,
                                error: (status != 200).then(|| format!("HTTP {status}")),
                            },
                            Err(e) => HttpCheck {
                                path: path.clone(),
                                status: Some(status),
                                bytes: 0,
                                error: Some(format!("reading the body: {e}")),
                            },
                        }
                    }
                    Err(e) => HttpCheck {
                        path: path.clone(),
                        status: None,
                        bytes: 0,
                        error: Some(e.to_string()),
                    },
                };
                // No answer yet, or a 5xx from a service still starting: try again.
                let settled = got.status.is_some_and(|s| s < 500);
                if settled || Instant::now() >= until {
                    return got;
                }
                std::thread::sleep(Duration::from_secs(2));
            }
        })
        .collect()
}
