//! Shared helpers for sb's cross-crate tests: finding the `sb` binary and the real Go
//! sing-box binary they are compared against.
