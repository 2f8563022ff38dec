//! Harness for integration tests: starts moto server on a loopback port, builds SDK config.
