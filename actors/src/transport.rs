//! How a connection reaches its SMSC: a TCP connection, optionally wrapped
//! in TLS (SMPP over TLS, as SMSCs offer it on a port of its own, often
//! through a TLS terminator in front of a plain SMPP server).
//!
//! SMPP 3.4 itself knows nothing of TLS: the PDUs are the same, the stream
//! under them is encrypted. So TLS is only here; the session logic and the
//! connection actor see a reader and a writer.
//!
//! The TLS settings ([`Tls`]) name files, not their contents: each connect
//! reads them again, so a renewed certificate or CA bundle is used from the
//! next reconnect on, and a file that became unreadable ends that connect
//! with a clear reason (the session then backs off like any failed
//! connect). The config check reads them once up front
//! ([`Tls::client_config`]) so that a typo is refused at load.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tokio_util::either::Either;

/// The receiving half of a connection to an SMSC.
pub type Reader = Either<OwnedReadHalf, ReadHalf<TlsStream<TcpStream>>>;
/// The sending half of a connection to an SMSC.
pub type Writer = Either<OwnedWriteHalf, WriteHalf<TlsStream<TcpStream>>>;

/// A channel's TLS settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    /// PEM file of the certificate authorities trusted to sign the SMSC's
    /// certificate; `None`: the Mozilla root certificates (webpki-roots).
    pub ca_file: Option<PathBuf>,
    /// The name the SMSC's certificate must be valid for: a DNS name or an
    /// IP address.
    pub server_name: String,
    /// The certificate chain and private key (PEM files) presented to an
    /// SMSC that asks for a client certificate.
    pub client_identity: Option<(PathBuf, PathBuf)>,
}

/// Why a channel's TLS settings cannot be used, by cause. Each names the
/// config key at fault ([`TlsError::key`]).
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The CA file cannot be read, or holds no certificate.
    #[error("cannot use {path} as CA certificates: {reason}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The client certificate file cannot be read, or holds none.
    #[error("cannot use {path} as the client certificate: {reason}")]
    CertFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The client key file cannot be read, or holds no private key.
    #[error("cannot use {path} as the client key: {reason}")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The key does not go with the certificate, or rustls refused them.
    #[error("the client certificate and key do not go together: {0}")]
    Identity(rustls::Error),
    /// Not a DNS name or an IP address.
    #[error("{0:?} is not a DNS name or an IP address")]
    ServerName(String),
    /// rustls has no TLS version in common with ring's algorithms (a
    /// build problem, not a setting).
    #[error("no usable TLS version: {0}")]
    Versions(rustls::Error),
}

impl TlsError {
    /// The channel key whose value is at fault.
    pub fn key(&self) -> &'static str {
        match self {
            TlsError::CaFile { .. } => "tls_ca_file",
            TlsError::CertFile { .. } | TlsError::Identity(_) => "tls_cert_file",
            TlsError::KeyFile { .. } => "tls_key_file",
            TlsError::ServerName(_) => "tls_server_name",
            TlsError::Versions(_) => "tls",
        }
    }
}

impl Tls {
    /// Reads the files and builds what a connect needs: the rustls client
    /// configuration (TLS 1.2 and 1.3, ring's algorithms) and the name the
    /// certificate is checked against.
    pub fn client_config(&self) -> Result<(Arc<ClientConfig>, ServerName<'static>), TlsError> {
        let server_name = ServerName::try_from(self.server_name.clone())
            .map_err(|_| TlsError::ServerName(self.server_name.clone()))?;
        let mut roots = RootCertStore::empty();
        match &self.ca_file {
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            Some(path) => {
                let ca_error = |reason: String| TlsError::CaFile {
                    path: path.clone(),
                    reason,
                };
                for cert in certificates(path).map_err(ca_error)? {
                    roots
                        .add(cert)
                        .map_err(|e| ca_error(format!("not a CA certificate: {e}")))?;
                }
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Versions)?
            .with_root_certificates(roots);
        let config = match &self.client_identity {
            None => builder.with_no_client_auth(),
            Some((cert_file, key_file)) => {
                let chain = certificates(cert_file).map_err(|reason| TlsError::CertFile {
                    path: cert_file.clone(),
                    reason,
                })?;
                let key =
                    PrivateKeyDer::from_pem_file(key_file).map_err(|e| TlsError::KeyFile {
                        path: key_file.clone(),
                        reason: pem_reason(e),
                    })?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(TlsError::Identity)?
            }
        };
        Ok((Arc::new(config), server_name))
    }
}

/// Every certificate in a PEM file; at least one.
pub(crate) fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(pem_reason)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_reason)?;
    if certs.is_empty() {
        return Err("no PEM certificate in it".into());
    }
    Ok(certs)
}

/// What is wrong with a PEM file, as a phrase.
pub(crate) fn pem_reason(e: rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(e) => e.to_string(),
        rustls::pki_types::pem::Error::NoItemsFound => "no PEM item of that kind in it".into(),
        other => format!("not valid PEM: {other:?}"),
    }
}

/// Connects to `host:port` and, with `tls`, completes a TLS handshake that
/// checks the SMSC's certificate, all within `timeout`. The error is a
/// sentence for the log and `GET /v1/connections`.
pub async fn connect(
    host: &str,
    port: u16,
    timeout: Duration,
    tls: Option<&Tls>,
) -> Result<(Reader, Writer), String> {
    let addr = format!("{host}:{port}");
    let tls = tls
        .map(Tls::client_config)
        .transpose()
        .map_err(|e| format!("TLS settings: {e}"))?;
    let connect = async {
        let stream = TcpStream::connect(&addr)
            .await
            .map_err(|e| format!("connect to {addr} failed: {e}"))?;
        if let Err(e) = stream.set_nodelay(true) {
            log::warn!("TCP_NODELAY on {addr} failed: {e}");
        }
        match tls {
            None => {
                let (read, write) = stream.into_split();
                Ok((Either::Left(read), Either::Left(write)))
            }
            Some((config, server_name)) => {
                let stream = TlsConnector::from(config)
                    .connect(server_name, stream)
                    .await
                    .map_err(|e| format!("TLS handshake with {addr} failed: {e}"))?;
                let (read, write) = tokio::io::split(stream);
                Ok((Either::Right(read), Either::Right(write)))
            }
        }
    };
    match tokio::time::timeout(timeout, connect).await {
        Ok(result) => result,
        Err(_) => Err(format!("connect to {addr} timed out after {timeout:?}")),
    }
}
