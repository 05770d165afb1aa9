//! Each host looked up once per fetch. ureq's default resolver asks the system for every
//! connection, and on hosts where one DNS reply in fifty is lost (glibc then waits its 5 s
//! timeout) a fetch of hundreds of files from one host stalls several times; the answer
//! can't change in a way that matters within one run. Failed lookups are not kept, so a
//! retry asks again.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

#[derive(Debug, Default)]
pub struct CachingResolver {
    inner: DefaultResolver,
    /// scheme://authority → the addresses found.
    found: Mutex<HashMap<String, Vec<SocketAddr>>>,
}

impl Resolver for CachingResolver {
    fn resolve(&self, uri: &Uri, config: &Config, timeout: NextTimeout) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let key = format!(
            "{}://{}",
            uri.scheme_str().unwrap_or(""),
            uri.authority().map(|a| a.as_str()).unwrap_or("")
        );
        let known = self.found.lock().ok().and_then(|m| m.get(&key).cloned());
        let addrs = match known {
            Some(a) => a,
            None => {
                let got: Vec<SocketAddr> = self.inner.resolve(uri, config, timeout)?.iter().copied().collect();
                if let Ok(mut m) = self.found.lock() {
                    m.insert(key, got.clone());
                }
                got
            }
        };
        let mut out = self.empty();
        for a in addrs {
            out.push(a);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_found_host_is_not_looked_up_again() {
        let r = CachingResolver::default();
        let config = Config::default();
        let uri: Uri = "http://localhost:8123/x".parse().unwrap();
        let first = r.resolve(&uri, &config, NextTimeout::default()).unwrap();
        assert!(!first.is_empty() && first.iter().all(|a| a.port() == 8123));
        // A name no resolver knows answers from what was found before.
        let fake: SocketAddr = "192.0.2.7:80".parse().unwrap();
        r.found
            .lock()
            .unwrap()
            .insert("http://no-such-host.invalid".into(), vec![fake]);
        let cached = r.resolve(
            &"http://no-such-host.invalid/y".parse().unwrap(),
            &config,
            NextTimeout::default(),
        );
        assert_eq!(cached.unwrap().iter().collect::<Vec<_>>(), [&fake]);
        // A failed lookup is not kept.
        let miss = r.resolve(
            &"http://other-host.invalid/".parse().unwrap(),
            &config,
            NextTimeout::default(),
        );
        assert!(miss.is_err());
        assert_eq!(r.found.lock().unwrap().len(), 2);
    }
}
