//! TLS set-up with rustls: one client configuration per run, shared by every connection so
//! sessions resume across reconnects.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{ring, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use std::sync::Arc;

use super::Protocol;
use crate::EngineError;

/// The name a TLS connection presents (SNI) and checks the certificate against.
pub(crate) type ServerName = rustls::pki_types::ServerName<'static>;

/// Sessions kept for resumption; enough for every connection of a large run to resume.
const RESUMABLE_SESSIONS: usize = 4096;

/// How `https://` targets are trusted. The default verifies certificates against the
/// platform's roots (on Linux, the system bundle such as `/etc/ssl/certs`).
#[derive(Clone, Debug, Default)]
pub struct TlsOptions {
    /// PEM certificates to trust instead of the platform's roots (`--ca-cert`). Default: none.
    pub ca_certs_pem: Option<Vec<u8>>,
    /// Skip certificate verification (`--insecure`). Default: false.
    pub insecure: bool,
    /// Client certificate chain and its private key, both PEM (`--cert`, `--key`). Default: none.
    pub client_cert_pem: Option<(Vec<u8>, Vec<u8>)>,
}

impl TlsOptions {
    /// The rustls client configuration these options describe.
    pub(crate) fn client_config(&self) -> Result<Arc<ClientConfig>, EngineError> {
        let bad = |why: String| EngineError::Tls(why);
        let provider = Arc::new(ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| bad(e.to_string()))?;
        let builder = if self.insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
        } else {
            let roots = Arc::new(self.roots()?);
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider)
                .build()
                .map_err(|e| bad(e.to_string()))?;
            let pinned = self.pinned()?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Pinned { webpki, pinned }))
        };
        let mut config = match &self.client_cert_pem {
            Some((chain, key)) => {
                let chain = CertificateDer::pem_slice_iter(chain)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| bad(format!("cannot read the client certificate: {e}")))?;
                let key = PrivateKeyDer::from_pem_slice(key)
                    .map_err(|e| bad(format!("cannot read the client key: {e}")))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| bad(format!("unusable client certificate: {e}")))?
            }
            None => builder.with_no_client_auth(),
        };
        config.resumption = rustls::client::Resumption::in_memory_sessions(RESUMABLE_SESSIONS);
        Ok(Arc::new(config))
    }

    /// The certificates of `--ca-cert`, each of which a server may present as itself.
    fn pinned(&self) -> Result<Vec<CertificateDer<'static>>, EngineError> {
        let Some(pem) = &self.ca_certs_pem else {
            return Ok(Vec::new());
        };
        CertificateDer::pem_slice_iter(pem)
            .collect::<Result<_, _>>()
            .map_err(|e| EngineError::Tls(format!("cannot read the CA certificate: {e}")))
    }

    fn roots(&self) -> Result<RootCertStore, EngineError> {
        let mut roots = RootCertStore::empty();
        match &self.ca_certs_pem {
            Some(pem) => {
                for cert in CertificateDer::pem_slice_iter(pem) {
                    let cert = cert.map_err(|e| {
                        EngineError::Tls(format!("cannot read the CA certificate: {e}"))
                    })?;
                    roots
                        .add(cert)
                        .map_err(|e| EngineError::Tls(format!("unusable CA certificate: {e}")))?;
                }
                if roots.is_empty() {
                    return Err(EngineError::Tls(
                        "the CA file holds no PEM certificate".into(),
                    ));
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(found.certs);
                if roots.is_empty() {
                    return Err(EngineError::Tls(
                        "this system has no trusted root certificates: pass --ca-cert FILE".into(),
                    ));
                }
            }
        }
        Ok(roots)
    }
}

/// `config` offering `protocols` by ALPN, in order of preference; it shares the session cache.
pub(crate) fn with_alpn(config: &ClientConfig, protocols: &[Protocol]) -> Arc<ClientConfig> {
    let mut config = config.clone();
    config.alpn_protocols = protocols.iter().map(|p| p.alpn().to_vec()).collect();
    Arc::new(config)
}

/// Why a TLS handshake failed, in one line a user can act on.
pub(crate) fn tls_reason(e: &std::io::Error) -> String {
    let Some(tls) = e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) else {
        return match e.kind() {
            std::io::ErrorKind::UnexpectedEof => {
                "the server closed the connection during the TLS handshake".into()
            }
            _ => e.to_string(),
        };
    };
    match tls {
        // A chain that ends at no trusted root, or at a root whose name matches but whose key
        // does not (another self-signed certificate with the same subject), is not trusted.
        rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer | CertificateError::BadSignature,
        ) => "the server's certificate is not trusted: pass its CA with --ca-cert, or --insecure"
            .into(),
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => "the server's certificate is not valid for this host name".into(),
        rustls::Error::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        ) => "the server's certificate has expired".into(),
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. },
        ) => "the server's certificate is not valid yet".into(),
        // A CA certificate served as the server's own, and not the one passed (that one would
        // be trusted as itself).
        rustls::Error::InvalidCertificate(CertificateError::Other(e))
            if e.to_string().contains("CaUsedAsEndEntity") =>
        {
            "the server presents a CA certificate (CA:TRUE) as its own: pass that very certificate with --ca-cert, or --insecure".into()
        }
        rustls::Error::AlertReceived(rustls::AlertDescription::NoApplicationProtocol) => {
            "the server takes none of the protocols offered by ALPN (--http2 offers only h2)".into()
        }
        rustls::Error::InvalidMessage(_) => {
            "the server did not answer in TLS (is it a plain http:// port?)".into()
        }
        other => format!("TLS handshake failed: {other}"),
    }
}

/// Verification against the roots, and one exception for a certificate the user pinned: a
/// server certificate byte-identical to one passed with `--ca-cert` is trusted as itself, as
/// curl and wrk do with `openssl req -x509` certificates (which are CA:TRUE, so webpki would
/// refuse them as a server's own). Its name and validity dates are still checked.
#[derive(Debug)]
struct Pinned {
    webpki: Arc<WebPkiServerVerifier>,
    pinned: Vec<CertificateDer<'static>>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &rustls::pki_types::ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        match verdict {
            Err(_)
                if self
                    .pinned
                    .iter()
                    .any(|p| p.as_ref() == end_entity.as_ref()) =>
            {
                check_pinned(end_entity, server_name, now)?;
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// A pinned certificate must still name the server and be within its validity dates.
fn check_pinned(
    cert: &CertificateDer<'_>,
    server_name: &rustls::pki_types::ServerName<'_>,
    now: UnixTime,
) -> Result<(), rustls::Error> {
    let invalid = rustls::Error::InvalidCertificate;
    let parsed = webpki::EndEntityCert::try_from(cert)
        .map_err(|_| invalid(CertificateError::BadEncoding))?;
    parsed
        .verify_is_valid_for_subject_name(server_name)
        .map_err(|_| invalid(CertificateError::NotValidForName))?;
    let (_, x509) = x509_parser::parse_x509_certificate(cert.as_ref())
        .map_err(|_| invalid(CertificateError::BadEncoding))?;
    let validity = x509.validity();
    let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    if now < validity.not_before.timestamp() {
        return Err(invalid(CertificateError::NotValidYet));
    }
    if now > validity.not_after.timestamp() {
        return Err(invalid(CertificateError::Expired));
    }
    Ok(())
}

/// `--insecure`: accepts any certificate, but still checks the handshake's signatures so the
/// connection is a real TLS connection.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
