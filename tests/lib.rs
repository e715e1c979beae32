//! Whole-system tests (see `tests/`) and benchmarks (`examples/`): what they share.
#![forbid(unsafe_code)]

pub mod access_cases;
pub mod footprint;

use std::collections::VecDeque;
use std::io::{self, Read, Write};

/// A byte stream to the simulated wire, for `protocol::client::Client`: what the client writes
/// is fed to the wire, and the wire's responses are read back.
#[derive(Debug)]
pub struct SimStream {
    /// The system.
    pub sim: sim::Sim,
    /// Response bytes not yet read.
    pub inbox: VecDeque<u8>,
}

impl SimStream {
    /// A stream to `sim`'s wire.
    pub fn new(sim: sim::Sim) -> Self {
        SimStream {
            sim,
            inbox: VecDeque::new(),
        }
    }
}

impl Read for SimStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.inbox.len());
        for (d, s) in buf.iter_mut().zip(self.inbox.drain(..n)) {
            *d = s;
        }
        // 0 = "connection closed": a request that got no answer fails.
        Ok(n)
    }
}

impl Write for SimStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let inbox = &mut self.inbox;
        // A system that stopped (a PD faulted during a call) answers nothing, ever: the
        // request fails with the simulator's report.
        self.sim
            .feed(buf, &mut |b| inbox.extend(b))
            .map_err(|e| io::Error::other(e.0))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The committed system description, or the one `SYSTEM_XML` names.
pub fn system() -> sysdesc::System {
    // SYSTEM_XML (as for the scripts and the Makefile) names another generated system, for a
    // run built with TOTEBOX_SYSTEM naming its description (e.g. four tenants).
    let path = std::env::var("SYSTEM_XML")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../system.xml").to_string());
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    match sysdesc::System::parse(&text) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{path}: {e}");
            std::process::exit(2)
        }
    }
}
