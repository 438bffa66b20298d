// Package server is the ergomake server ("kitchen", ARCHITECTURE.md decision 16): an HTTPS API
// in the cluster for developers who hold no cluster credentials. `ergomake-operator server` runs
// it (2 replicas, stateless: tokens, configuration and environments all live in the cluster).
//
// What is here: bearer tokens stored hashed in Secrets (TokenStore), the namespace of each user's
// environment and its quota (Namespace, Tenancy), the API handler with its size limits, per-token
// rate limits and audit lines (NewHandler), the TLS material install generates and the pinning
// `ergomake login` does (NewCA, Fingerprint, VerifyPinned), and the CLI's side (Credentials,
// Client). The API is documented in docs/server-api.md.
//
// Not yet here: `up`, `ps`, `logs`, `forward` and `build` through the server. They take the same
// shape: a route in NewHandler wrapped by action (auth, limits, audit), acting in the namespace
// Tenancy.EnsureNamespace returns.
package server
