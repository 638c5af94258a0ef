//! Turning etcdctl-style flags into a connection, and running async work.

use etcd_rpc::{ConnectOptions, TlsOptions};

use crate::cli::{EtcdConnArgs, EtcdSecurityArgs};

/// Connection options from the flags: TLS when any of --cacert/--cert/--key is given
/// (or an endpoint says https://), and `--user user:password` split as etcdctl does.
pub fn connect_options(conn: &EtcdConnArgs) -> anyhow::Result<ConnectOptions> {
    let https = conn.endpoints.iter().any(|e| e.starts_with("https://"));
    security_options(&conn.security, https)
}

/// Connection options from the TLS/auth/timeout flags alone.
pub fn security_options(args: &EtcdSecurityArgs, https: bool) -> anyhow::Result<ConnectOptions> {
    let any_tls = args.cacert.is_some() || args.cert.is_some() || args.key.is_some();
    let tls = if any_tls || https {
        Some(TlsOptions::from_files(
            args.cacert.as_deref(),
            args.cert.as_deref(),
            args.key.as_deref(),
        )?)
    } else {
        None
    };
    let (user, password) = match (&args.user, &args.password) {
        (Some(u), Some(p)) => (Some(u.name.clone()), Some(p.0.clone())),
        (Some(u), None) => match &u.password {
            Some(p) => (Some(u.name.clone()), Some(p.0.clone())),
            None => anyhow::bail!(
                "--user {} needs a password: give --user {}:PASSWORD or set SALVOR_PASSWORD",
                u.name,
                u.name
            ),
        },
        (None, Some(_)) => anyhow::bail!("--password needs --user"),
        (None, None) => (None, None),
    };
    Ok(ConnectOptions {
        dial_timeout: args.dial_timeout,
        request_timeout: Some(args.command_timeout),
        tls,
        user,
        password,
        ..Default::default()
    })
}

/// A multi-threaded runtime for one command.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
