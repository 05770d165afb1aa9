//! How a failed command is told to the user: the error and its causes, the hints every
//! typed error in the chain carries, and the exit code its kind decides (see
//! [`crate::fault`]). The one place that knows every stage's error type.

use crate::fault::{DISK_FULL_HINT, Fault, Kind};
use std::error::Error;

/// A failure, ready to render.
#[derive(Debug, PartialEq, Eq)]
pub struct Explained {
    pub kind: Kind,
    pub hints: Vec<String>,
}

/// The typed error `e` is, as a [`Fault`].
fn fault_of<'a>(e: &'a (dyn Error + 'static)) -> Option<&'a dyn Fault> {
    macro_rules! try_as {
        ($($t:ty),* $(,)?) => {
            $(if let Some(f) = e.downcast_ref::<$t>() {
                return Some(f);
            })*
        };
    }
    try_as!(
        crate::recipe::RecipeError,
        crate::build_info::BadEpoch,
        crate::fetch::refused::Refused,
        crate::fetch::http::FetchError,
        crate::host::HostError,
        crate::process::ProcessError,
        crate::rootfs::ArchiveError,
        crate::image::fs::ext4::Ext4Error,
        crate::verify::boot::Interrupted,
        crate::verify::boot::Failed,
    );
    None
}

/// The kind is the outermost typed error's (context added on the way up keeps it); an
/// error no stage typed is the tool's or the environment's.
pub fn explain(err: &anyhow::Error) -> Explained {
    let faults: Vec<&dyn Fault> = err.chain().filter_map(fault_of).collect();
    let kind = faults.first().map_or(Kind::Environment, |f| f.kind());
    let mut hints: Vec<String> = Vec::new();
    for h in faults.iter().flat_map(|f| f.hints()) {
        if !hints.contains(&h) {
            hints.push(h);
        }
    }
    let full = err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(crate::fault::is_disk_full)
    });
    if full && !hints.iter().any(|h| h.starts_with(DISK_FULL_HINT)) {
        hints.push(DISK_FULL_HINT.into());
    }
    Explained { kind, hints }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn the_outermost_typed_error_decides_and_hints_are_collected() {
        let recipe = crate::recipe::RecipeError::Input { message: "x".into() };
        let err = Err::<(), _>(recipe).context("while building").unwrap_err();
        assert_eq!(
            explain(&err),
            Explained {
                kind: Kind::User,
                hints: vec![]
            }
        );

        let refused = crate::fetch::refused::Refused::new("no", "drop --offline");
        let err = anyhow::Error::new(refused).context("fetching");
        assert_eq!(explain(&err).hints, ["drop --offline"]);
        assert_eq!(explain(&err).kind, Kind::User);

        let err = anyhow::anyhow!("something broke");
        assert_eq!(explain(&err).kind, Kind::Environment);

        let full = std::io::Error::from_raw_os_error(libc::ENOSPC);
        let err = anyhow::Error::new(full).context("writing out/x.img");
        assert_eq!(
            explain(&err),
            Explained {
                kind: Kind::Environment,
                hints: vec![DISK_FULL_HINT.into()]
            }
        );

        let err = anyhow::Error::new(crate::verify::boot::Interrupted);
        assert_eq!(explain(&err).kind, Kind::Interrupted);

        let unreachable = crate::fetch::http::FetchError::Network {
            url: "https://carpentries-incubator.github.io/hpc-intro/".into(),
            message: "no route".into(),
            attempts: 5,
        };
        let e = explain(&anyhow::Error::new(unreachable).context("content `site/hpc-intro`"));
        assert_eq!(e.kind, Kind::Environment);
        assert!(
            e.hints.len() == 1 && e.hints[0].starts_with("this host cannot reach carpentries-incubator.github.io:"),
            "{:?}",
            e.hints
        );
    }
}
