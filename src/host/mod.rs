//! Facts about the build host that several stages and `imgbuild doctor` need: whether
//! foreign architectures run here ([`binfmt`]), and quick probes of the host's programs
//! (against [`crate::process::programs`]), tools and disks ([`probe`]). It imports no
//! pipeline stage.

pub mod binfmt;
pub mod probe;

/// Something about this host that stops a build, with the command that fixes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// What is wrong, naming the program, file or host.
    pub what: String,
    /// The exact command (or, where none exists, the action) that fixes it here.
    pub fix: String,
}

impl Problem {
    pub fn new(what: impl Into<String>, fix: impl Into<String>) -> Problem {
        Problem {
            what: what.into(),
            fix: fix.into(),
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}; fix: {}", self.what, self.fix)
    }
}

/// Problems found before a build's first slow stage: the build stops with all of them.
#[derive(Debug, thiserror::Error)]
#[error("this host cannot build it yet:\n{}", .0.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
pub struct HostError(pub Vec<Problem>);

impl crate::fault::Fault for HostError {
    fn kind(&self) -> crate::fault::Kind {
        crate::fault::Kind::Environment
    }
    fn hints(&self) -> Vec<String> {
        vec!["`imgbuild doctor RECIPE` runs the same checks".into()]
    }
}
