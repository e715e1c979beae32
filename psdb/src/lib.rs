//! PSDB: the storage engine behind the psdb protection domain.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
