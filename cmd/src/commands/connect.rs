//! Flags for reaching a live etcd cluster for `diagnose` and `server` (etcdctl's
//! names and defaults: dial timeout 2 s, command timeout 5 s). Passwords are kept
//! in [`Secret`], which `Debug` never prints.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use etcd_tools::diagnose::{ConnectOptions, TlsOptions};

use crate::cli::parse_duration;

/// `--endpoints`, TLS, auth and timeouts.
#[derive(Debug, Args)]
pub struct EtcdConnectArgs {
    /// Comma-separated client URLs (`https://10.0.0.1:2379`, or `host:port`).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "127.0.0.1:2379",
        env = "SALVOR_ENDPOINTS"
    )]
    pub endpoints: Vec<String>,
    /// CA bundle that signs the members' server certificates.
    #[arg(long, env = "SALVOR_CACERT")]
    pub cacert: Option<PathBuf>,
    /// Client certificate (for members started with --client-cert-auth).
    #[arg(long, env = "SALVOR_CERT", requires = "key")]
    pub cert: Option<PathBuf>,
    /// Private key of the client certificate.
    #[arg(long, env = "SALVOR_KEY", requires = "cert")]
    pub key: Option<PathBuf>,
    /// etcd user, `name` or `name:password` (as etcdctl's --user).
    #[arg(long, env = "SALVOR_USER", hide_env_values = true)]
    pub user: Option<UserArg>,
    /// Password of --user (prefer the SALVOR_PASSWORD environment variable).
    #[arg(long, env = "SALVOR_PASSWORD", hide_env_values = true)]
    pub password: Option<Secret>,
    /// Time allowed for a member's first answer (connect, TLS, Status): a dead or
    /// frozen member costs at most this. `500ms`, `2s`, `1m`.
    #[arg(long, default_value = "2s", value_parser = parse_duration, env = "SALVOR_DIAL_TIMEOUT")]
    pub dial_timeout: Duration,
    /// Time allowed for every later call to a member.
    #[arg(
        long,
        default_value = "5s",
        value_parser = parse_duration,
        env = "SALVOR_COMMAND_TIMEOUT"
    )]
    pub command_timeout: Duration,
}

impl EtcdConnectArgs {
    /// Connection options for etcd-rpc: TLS files read, user and password split.
    pub fn connect_options(&self) -> anyhow::Result<ConnectOptions> {
        let tls = if self.cacert.is_some() || self.cert.is_some() {
            Some(
                TlsOptions::from_files(
                    self.cacert.as_deref(),
                    self.cert.as_deref(),
                    self.key.as_deref(),
                )
                .context("reading the TLS files")?,
            )
        } else {
            None
        };
        let (user, password) = match (&self.user, &self.password) {
            (Some(user), password) => {
                let password = password.as_ref().or(user.password.as_ref());
                let Some(password) = password else {
                    anyhow::bail!(
                        "--user {} needs a password: give --user {}:PASSWORD, --password, or set \
                         SALVOR_PASSWORD",
                        user.name,
                        user.name
                    );
                };
                (Some(user.name.clone()), Some(password.0.clone()))
            }
            (None, Some(_)) => anyhow::bail!("--password needs --user"),
            (None, None) => (None, None),
        };
        Ok(ConnectOptions {
            dial_timeout: self.dial_timeout,
            request_timeout: Some(self.command_timeout),
            keep_alive_interval: None,
            tls,
            user,
            password,
            ..ConnectOptions::default()
        })
    }
}

/// A secret from the command line or the environment; `Debug` never prints it.
#[derive(Clone)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(Secret(text.to_string()))
    }
}

/// `--user name[:password]`; `Debug` never prints the password.
#[derive(Clone, Debug)]
pub struct UserArg {
    /// The user name.
    pub name: String,
    /// The password after the first `:`, if any.
    pub password: Option<Secret>,
}

impl FromStr for UserArg {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (name, password) = match text.split_once(':') {
            Some((name, password)) => (name, Some(Secret(password.to_string()))),
            None => (text, None),
        };
        if name.is_empty() {
            return Err("the user name is empty".to_string());
        }
        Ok(UserArg {
            name: name.to_string(),
            password,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_not_printed() {
        let user: UserArg = "root:hunter2".parse().unwrap();
        assert_eq!(user.name, "root");
        assert!(!format!("{user:?}").contains("hunter2"));
        assert!(!format!("{:?}", Secret("hunter2".into())).contains("hunter2"));
    }
}
