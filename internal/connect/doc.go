// Package connect owns how orderstream reaches each external service:
// Kafka (seed brokers, TLS, SASL PLAIN / SCRAM / OAUTHBEARER), ClickHouse
// (user, password, TLS), the search engine (basic auth, API key, Elastic
// Cloud ID, TLS) and PostgreSQL (a libpq URL and an optional password file).
//
// Each service has one settings type with a Validate method that joins every
// problem and names the setting to fix, and one method that turns it into
// what the service's client takes ([]kgo.Opt, a *tls.Config, an
// http.RoundTripper, a connection string). Every command builds its clients
// from these types, so a new hop cannot forget TLS or credentials.
//
// Secrets are a type of their own (Secret) that prints as "[redacted]" in
// every form (fmt verbs, JSON, text, slog); each may come from a file
// (Kubernetes Secrets mounted as files). URLs that may carry a password are
// printed only through RedactURL. TLS handshake failures, and a plaintext
// client at a TLS port, come back as errors that name the service and the
// setting that fixes them; Explain does the same for the errors of the
// services' own clients (refused logins, PostgreSQL's TLS, the search
// engine's HTTP status).
//
// The flag names (and so the ORDERSTREAM_* variables and YAML keys) are
// registered here, by AddFlags, so that every message names the setting the
// user actually set.
package connect
