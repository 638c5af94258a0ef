//! A throwaway certificate authority for TLS clusters on loopback.

use std::fs;
use std::path::{Path, PathBuf};

use etcd_rpc::TlsOptions;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::Error;

/// PEM files of a generated CA, a server certificate for `127.0.0.1`,
/// `localhost` and `::1`, and a client certificate, all signed by the CA.
///
/// Paths are named like etcdctl's flags: `--cacert` is [`TlsFiles::ca_cert`],
/// `--cert` [`TlsFiles::client_cert`] and `--key` [`TlsFiles::client_key`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TlsFiles {
    /// The CA certificate (trusted by the members for client certificates, and by clients).
    pub ca_cert: PathBuf,
    /// The members' serving certificate.
    pub server_cert: PathBuf,
    /// Its private key.
    pub server_key: PathBuf,
    /// A client certificate, CN `testenv-client`.
    pub client_cert: PathBuf,
    /// Its private key.
    pub client_key: PathBuf,
}

/// Common name of the generated client certificate.
pub const CLIENT_COMMON_NAME: &str = "testenv-client";

impl TlsFiles {
    /// Generates a CA and the server and client certificates into `dir`.
    pub fn generate(dir: &Path) -> Result<Self, Error> {
        fs::create_dir_all(dir)
            .map_err(|source| Error::io("create the PKI directory", dir, source))?;

        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "testenv CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate()?;
        let mut server_params = CertificateParams::new(vec![
            "127.0.0.1".to_string(),
            "localhost".to_string(),
            "::1".to_string(),
        ])?;
        server_params
            .distinguished_name
            .push(DnType::CommonName, "testenv etcd");
        server_params.use_authority_key_identifier_extension = true;
        server_params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        // Members also present it as clients of each other.
        server_params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let server_cert = server_params.signed_by(&server_key, &issuer)?;

        let client_key = KeyPair::generate()?;
        let mut client_params = CertificateParams::new(Vec::<String>::new())?;
        client_params
            .distinguished_name
            .push(DnType::CommonName, CLIENT_COMMON_NAME);
        client_params.use_authority_key_identifier_extension = true;
        client_params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_cert = client_params.signed_by(&client_key, &issuer)?;

        let files = TlsFiles {
            ca_cert: dir.join("ca.crt"),
            server_cert: dir.join("server.crt"),
            server_key: dir.join("server.key"),
            client_cert: dir.join("client.crt"),
            client_key: dir.join("client.key"),
        };
        write(&files.ca_cert, &ca_cert.pem())?;
        write(&files.server_cert, &server_cert.pem())?;
        write(&files.server_key, &server_key.serialize_pem())?;
        write(&files.client_cert, &client_cert.pem())?;
        write(&files.client_key, &client_key.serialize_pem())?;
        Ok(files)
    }

    /// TLS options for `etcd_rpc` with the CA and the client certificate.
    pub fn client_tls(&self) -> Result<TlsOptions, Error> {
        TlsOptions::from_files(
            Some(&self.ca_cert),
            Some(&self.client_cert),
            Some(&self.client_key),
        )
        .map_err(Error::rpc("reading the client TLS files"))
    }

    /// TLS options for `etcd_rpc` with the CA only (no client certificate).
    pub fn ca_only_tls(&self) -> Result<TlsOptions, Error> {
        TlsOptions::from_files(Some(&self.ca_cert), None, None)
            .map_err(Error::rpc("reading the CA file"))
    }

    /// etcdctl's `--cacert`, `--cert` and `--key` flags for these files.
    pub fn etcdctl_flags(&self) -> Vec<String> {
        vec![
            format!("--cacert={}", self.ca_cert.display()),
            format!("--cert={}", self.client_cert.display()),
            format!("--key={}", self.client_key.display()),
        ]
    }
}

fn write(path: &Path, pem: &str) -> Result<(), Error> {
    fs::write(path, pem).map_err(|source| Error::io("write", path, source))
}
