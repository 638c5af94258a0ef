//! Values of the etcd credential flags (`--user`, `--password`) that must never be
//! printed: passwords are kept in [`Secret`], which `Debug` never shows.

use std::fmt;
use std::str::FromStr;

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
