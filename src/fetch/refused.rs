//! What `--offline` or `--locked` forbid: the command line's own choice, so a user error
//! (exit 2), with the way out carried as a hint rather than written into the message.

/// A fetch the command line's flags do not allow.
#[derive(Debug, thiserror::Error)]
#[error("{what}")]
pub struct Refused {
    pub what: String,
    pub hint: String,
}

impl Refused {
    pub fn new(what: impl Into<String>, hint: impl Into<String>) -> Self {
        Refused {
            what: what.into(),
            hint: hint.into(),
        }
    }
}

impl crate::fault::Fault for Refused {
    fn kind(&self) -> crate::fault::Kind {
        crate::fault::Kind::User
    }
    fn hints(&self) -> Vec<String> {
        vec![self.hint.clone()]
    }
}
