//! The CLI's error type: client errors plus local input/output problems.
use crate::client::ClientError;
use crate::security::tls::TlsError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    #[error(transparent)]
    Client(#[from] ClientError),

    #[error("cannot read {path}: {source}")]
    Input {
        path: String,
        #[source]
        source: std::io::Error,
    },

    #[error("TLS client settings: {0}")]
    Tls(#[from] TlsError),

    #[error("cannot write output: {0}")]
    Output(#[source] std::io::Error),

    #[error("{0}")]
    Usage(String),
}
