//! Kafka over TLS and SASL: a broker that refuses the credentials or a TLS
//! handshake that fails is a mistake in the config, not an outage, so the
//! source and the sink stop at once with a message that says which and the
//! setting to fix, instead of retrying until a timeout says "unreachable".
//!
//! librdkafka reports such a failure as an error event with a code
//! (`Authentication`, `SSL`) and its reason in words; [`Failures`] keeps the
//! last one, [`refused`] turns it into the error. Credentials reach librdkafka through the
//! connectors' `properties` (`security.protocol`, `sasl.mechanism`,
//! `sasl.username`, `sasl.password`, `ssl.ca.location`), where a password is
//! best given as a secret reference (`${env:VAR}`, `${file:/path:key}`),
//! resolved when the pipeline starts. No message here quotes a password.
//!
//! ```
//! use std::collections::BTreeMap;
//! use rdkafka::error::RDKafkaErrorCode;
//! let props = BTreeMap::from([("sasl.username".to_string(), "alice".to_string())]);
//! let e = tributary_kafka::security::refused(
//!     "kafka source", RDKafkaErrorCode::Authentication, None, "b:9093", &props,
//! )
//! .unwrap();
//! assert!(e.to_string().contains("authentication failed for user `alice`"));
//! ```

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::client::{Client, ClientContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::metadata::Metadata;
use tributary_connector::Error;

/// The last error event that says the brokers refused this client
/// (authentication or TLS), with librdkafka's reason: rdkafka hands the
/// reason only to the client context's `error`, not to the error a poll
/// returns.
#[derive(Default)]
pub(crate) struct Failures {
    last: Mutex<Option<(RDKafkaErrorCode, String)>>,
}

impl Failures {
    /// What a client context's `error` does: the error logged (as rdkafka's
    /// default does), a refusal kept.
    pub(crate) fn error(&self, error: &KafkaError, reason: &str) {
        tracing::error!("librdkafka: {error}: {reason}");
        if let Some(
            code @ (RDKafkaErrorCode::Authentication
            | RDKafkaErrorCode::SaslAuthenticationFailed
            | RDKafkaErrorCode::SSL),
        ) = error.rdkafka_error_code()
        {
            *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some((code, reason.to_string()));
        }
    }

    /// The last refusal: its code and librdkafka's reason.
    pub(crate) fn last(&self) -> Option<(RDKafkaErrorCode, String)> {
        self.last.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// How long one metadata request may wait in [`metadata`]: short, so that a
/// refusal seen meanwhile ends the wait within about this long.
const TRY: Duration = Duration::from_millis(500);

/// `topic`'s metadata, asked for in short tries until the brokers answer or
/// `limit` passes. Between tries `refusal` is asked whether the brokers
/// refused this client (authentication or TLS, see [`refused`]): such an
/// error ends the wait at once (the outer `Err`); the inner `Err` is the last
/// request's error when `limit` passed.
pub(crate) fn metadata<C: ClientContext>(
    client: &Client<C>,
    topic: &str,
    limit: Duration,
    mut refusal: impl FnMut() -> Option<Error>,
) -> Result<Result<Metadata, KafkaError>, Error> {
    let deadline = Instant::now() + limit;
    loop {
        let started = Instant::now();
        let tried = client.fetch_metadata(Some(topic), TRY);
        if let Some(e) = refusal() {
            return Err(e);
        }
        match tried {
            Ok(md) => return Ok(Ok(md)),
            Err(e) if Instant::now() >= deadline => return Ok(Err(e)),
            // A request that failed at once (no broker up): not a busy loop.
            Err(_) if started.elapsed() < TRY / 5 => std::thread::sleep(TRY / 5),
            Err(_) => {}
        }
    }
}

/// The error for a broker that refused this client, when `code` says so
/// (`None` otherwise): authentication failed (names the user and the
/// mechanism) or the TLS handshake failed (an untrusted certificate names
/// `ssl.ca.location`). A config error: retrying does not help.
/// `reason` is librdkafka's text for it, `who` the connector
/// (`kafka source`), `props` its `properties`.
pub fn refused(
    who: &str,
    code: RDKafkaErrorCode,
    reason: Option<&str>,
    bootstrap: &str,
    props: &BTreeMap<String, String>,
) -> Option<Error> {
    let said = reason
        .map(|r| format!(" (librdkafka: {r})"))
        .unwrap_or_default();
    match code {
        RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SaslAuthenticationFailed => {
            let user = match props.get("sasl.username") {
                Some(u) => format!("user `{u}`"),
                None => "no user (properties.`sasl.username` is not set)".to_string(),
            };
            let mechanism = props
                .get("sasl.mechanism")
                .or_else(|| props.get("sasl.mechanisms"))
                .map(String::as_str)
                .unwrap_or("GSSAPI, librdkafka's default");
            Some(Error::config(format!(
                "{who}: authentication failed for {user} with SASL mechanism {mechanism} on {bootstrap}: the \
                 broker refused the credentials. Check properties.`sasl.password` (when it is a secret reference \
                 such as ${{env:VAR}} or ${{file:/path:key}}, what it resolves to), properties.`sasl.username`, and \
                 that the user has credentials for this mechanism on the cluster{said}"
            )))
        }
        RDKafkaErrorCode::SSL => {
            let untrusted = reason.is_some_and(|r| {
                r.contains("certificate verify failed") || r.contains("could not be verified")
            });
            Some(Error::config(if untrusted {
                let ca = match props.get("ssl.ca.location") {
                    Some(path) => format!("the CA certificates in properties.`ssl.ca.location` ({path}) did not sign it"),
                    None => "properties.`ssl.ca.location` is not set and the system's CA certificates did not sign it"
                        .to_string(),
                };
                format!(
                    "{who}: the TLS certificate of the broker at {bootstrap} is not trusted: {ca}. Set \
                     properties.`ssl.ca.location` to a PEM file with the CA certificate that signed the broker's \
                     certificate{said}"
                )
            } else {
                format!(
                    "{who}: the TLS handshake with the broker at {bootstrap} failed. Check properties.`ssl.*` and that \
                     properties.`security.protocol` (SSL or SASL_SSL) matches the broker's listener{said}"
                )
            }))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn authentication_names_the_user_and_mechanism_never_the_password() {
        let p = props(&[
            ("sasl.username", "alice"),
            ("sasl.password", "s3cret-value"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
        ]);
        let e = refused(
            "kafka sink",
            RDKafkaErrorCode::Authentication,
            Some("SASL authentication error: Authentication failed"),
            "h:1",
            &p,
        )
        .unwrap()
        .to_string();
        assert!(e.contains("authentication failed for user `alice`"), "{e}");
        assert!(
            e.contains("SCRAM-SHA-512") && e.contains("sasl.password"),
            "{e}"
        );
        assert!(!e.contains("s3cret-value"), "{e}");
    }

    #[test]
    fn an_untrusted_certificate_names_ssl_ca_location() {
        let reason = "SSL handshake failed: error:0A000086:SSL routines::certificate verify failed: broker \
                      certificate could not be verified";
        let with = refused(
            "kafka source",
            RDKafkaErrorCode::SSL,
            Some(reason),
            "h:1",
            &props(&[("ssl.ca.location", "/tmp/ca.pem")]),
        )
        .unwrap()
        .to_string();
        assert!(
            with.contains("is not trusted") && with.contains("(/tmp/ca.pem)"),
            "{with}"
        );
        let without = refused(
            "kafka source",
            RDKafkaErrorCode::SSL,
            Some(reason),
            "h:1",
            &props(&[]),
        )
        .unwrap()
        .to_string();
        assert!(
            without.contains("`ssl.ca.location` is not set"),
            "{without}"
        );
        assert!(
            refused(
                "x",
                RDKafkaErrorCode::BrokerTransportFailure,
                None,
                "h:1",
                &props(&[])
            )
            .is_none()
        );
    }
}
