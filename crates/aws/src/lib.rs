//! Adapters: the ports of firebreak-core over aws-sdk-rust.
