//! Whole-system tests (see `tests/`): nothing here but the test files' shared home.
#![forbid(unsafe_code)]
