//! How Tributary reaches a Schema Registry: its URL(s), basic-auth
//! credentials, and the CA that signed its TLS certificate. The Kafka
//! source's decoder and the Kafka sink's schema registration build their
//! client (schema_registry_converter's blocking client over rustls) here,
//! so both take the same settings and fail the same way.
//!
//! ```
//! use tributary_formats::registry::RegistryAccess;
//! let access = RegistryAccess::new("https://registry.example:8081");
//! assert!(access.settings("kafka source", std::time::Duration::from_secs(10)).is_ok());
//! ```

use std::path::PathBuf;
use std::time::Duration;

use schema_registry_converter::blocking::schema_registry::SrSettings;
use tributary_connector::{Error, Result, redact_uri};

/// Where a Schema Registry is and how to get in.
#[derive(Clone, Default)]
pub struct RegistryAccess {
    /// `http(s)://host:port`; several, comma-separated, are tried in order.
    pub url: String,
    /// Basic auth (Confluent's `basic.auth.user.info`; on Confluent Cloud
    /// the API key).
    pub username: Option<String>,
    /// Basic auth password (the API secret); never shown in a message.
    pub password: Option<String>,
    /// A PEM file with the CA certificate(s) to trust instead of the
    /// system's, for a registry whose certificate a private CA signed.
    pub ca: Option<PathBuf>,
}

impl std::fmt::Debug for RegistryAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryAccess")
            .field("url", &redact_uri(&self.url))
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("ca", &self.ca)
            .finish()
    }
}

impl RegistryAccess {
    /// A registry reached with no credentials and the system's CAs.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ..Self::default()
        }
    }

    /// The client settings: each request bounded by `timeout`, basic auth
    /// when a username is given, and with `ca` only that CA trusted. Checks
    /// the URLs' scheme and reads the CA file now, so a mistake is a config
    /// error at start (`who` names the connector in it).
    pub fn settings(&self, who: &str, timeout: Duration) -> Result<SrSettings> {
        let registry = redact_uri(&self.url);
        let urls: Vec<&str> = self
            .url
            .split(',')
            .map(|u| u.trim().trim_end_matches('/'))
            .collect();
        if let Some(bad) = urls
            .iter()
            .find(|u| !(u.starts_with("http://") || u.starts_with("https://")))
        {
            return Err(Error::config(format!(
                "{who}: schema registry URL `{}` must start with http:// or https://",
                redact_uri(bad)
            )));
        }
        if self.password.is_some() && self.username.is_none() {
            return Err(Error::config(format!(
                "{who}: schema_registry_password is set but schema_registry_username is not; set both (basic auth)"
            )));
        }
        let mut builder = SrSettings::new_builder(urls[0].to_string());
        for more in &urls[1..] {
            builder.add_url(more.to_string());
        }
        if let Some(user) = &self.username {
            builder.set_basic_authorization(user, self.password.as_deref());
        }
        let mut client = reqwest::blocking::Client::builder();
        if let Some(ca) = &self.ca {
            let pem = std::fs::read(ca).map_err(|e| {
                Error::config(format!(
                    "{who}: cannot read schema_registry_ca {}: {e}; give a PEM file with the CA certificate \
                     that signed the registry's certificate",
                    ca.display()
                ))
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .ok()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| {
                    Error::config(format!(
                        "{who}: schema_registry_ca {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                        ca.display()
                    ))
                })?;
            client = client.tls_certs_only(certs);
        }
        builder
            .set_timeout(timeout)
            .build_with(client)
            .map_err(|e| {
                Error::config(format!(
                    "{who}: cannot set up a client for the schema registry {registry}: {e}"
                ))
            })
    }
}

/// Whether `e`, or an error it was caused by, says the server's TLS
/// certificate is not trusted (rustls: "invalid peer certificate").
pub fn untrusted_certificate(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(e) = next {
        let text = e.to_string();
        if text.contains("invalid peer certificate") || text.contains("UnknownIssuer") {
            return true;
        }
        next = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(access: RegistryAccess) -> String {
        access
            .settings("kafka source", Duration::from_secs(1))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn mistakes_are_config_errors_that_name_the_field() {
        let url = "https://r:8081";
        let no_user = RegistryAccess {
            password: Some("pw".into()),
            ..RegistryAccess::new(url)
        };
        assert!(err(no_user).contains("schema_registry_username is not"));
        let missing = RegistryAccess {
            ca: Some("/nonexistent/ca.pem".into()),
            ..RegistryAccess::new(url)
        };
        assert!(err(missing).contains("cannot read schema_registry_ca /nonexistent/ca.pem"));
        let dir = std::env::temp_dir().join(format!("trib-registry-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, "not a certificate").unwrap();
        let not_pem = RegistryAccess {
            ca: Some(junk),
            ..RegistryAccess::new(url)
        };
        assert!(err(not_pem).contains("holds no PEM certificate"));
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(err(RegistryAccess::new("ftp://r")).contains("must start with http://"));
    }

    #[test]
    fn debug_hides_the_password() {
        let access = RegistryAccess {
            username: Some("u".into()),
            password: Some("hunter2".into()),
            ..RegistryAccess::new("https://r")
        };
        assert!(!format!("{access:?}").contains("hunter2"));
    }
}
