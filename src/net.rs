//! Small HTTP helpers for checks and key downloads (ureq, with timeouts). Downloads of
//! mirror content have their own client in the fetch stage.

use anyhow::{Context, Result};
use std::time::Duration;

/// The TLS settings every client uses: the system's trust store (with `SSL_CERT_FILE`),
/// so hosts behind a company or CI proxy with its own CA work as they do for curl.
pub fn tls() -> ureq::tls::TlsConfig {
    ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::PlatformVerifier)
        .build()
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .tls_config(tls())
        .timeout_global(Some(Duration::from_secs(60)))
        .timeout_connect(Some(Duration::from_secs(15)))
        .http_status_as_error(false)
        .user_agent(concat!("imgbuild/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// Whether `url` answers 2xx to HEAD (Ok(false) for 404 and other client errors).
pub fn head_ok(url: &str) -> Result<bool> {
    let resp = agent().head(url).call().with_context(|| format!("HEAD {url}"))?;
    let status = resp.status().as_u16();
    if status >= 500 {
        anyhow::bail!("{url} answered {status}");
    }
    Ok((200..300).contains(&status))
}

/// The body of `url`, failing on any non-2xx status.
pub fn get_bytes(url: &str) -> Result<Vec<u8>> {
    let mut resp = agent().get(url).call().with_context(|| format!("GET {url}"))?;
    let status = resp.status().as_u16();
    if !(200..300).contains(&status) {
        anyhow::bail!("{url} answered {status}");
    }
    resp.body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_vec()
        .with_context(|| format!("reading {url}"))
}
