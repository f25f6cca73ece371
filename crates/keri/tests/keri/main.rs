//! Integration tests of welkin-keri: known answers from keripy, validation rules, bad
//! input, properties, and live interop with keripy (installed by `tests/interop/setup.sh`).

mod common;
mod fixtures;
mod interop;
mod parsing;
mod props;
mod rules;
