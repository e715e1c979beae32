//! `totebox inspect`: tenant isolation proved from capabilities.
//!
//! Builds the capability graph of a Microkit system: for every PD, the endpoints it can call
//! or signal (with priorities), the frames it can map and with what rights, the devices and
//! IRQs it owns, its program image and the signing key in it. From the CapDL spec the tool
//! writes (`microkit --capdl-json`) this is derived by walking each PD's CSpace and VSpace
//! ([`model`]); the system description only gives the meaning (which PD is which tenant's
//! ledger: the PD name after `ledger_`; whose each region is). Then it checks the isolation
//! rules on the description, on the CapDL spec, and that the two agree ([`check`]).
#![forbid(unsafe_code)]

pub mod capdl;
pub mod check;
pub mod elf;
pub mod model;
pub mod render;

use std::path::Path;

pub use check::{Finding, Options};
pub use model::Model;

/// Everything one inspection found.
#[derive(Debug)]
pub struct Report {
    /// The description's view.
    pub desc: Model,
    /// The CapDL spec's view, if a spec was given.
    pub capdl: Option<Model>,
    /// Every finding (violations and accepted ones), description first.
    pub findings: Vec<Finding>,
}

impl Report {
    /// The violations (findings not accepted).
    pub fn violations(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| !f.accepted)
    }

    /// The table of the most complete view.
    pub fn table(&self) -> String {
        render::table(self.capdl.as_ref().unwrap_or(&self.desc))
    }

    /// DOT of the most complete view.
    pub fn dot(&self) -> String {
        let flagged: Vec<String> = self.violations().map(|f| f.text.clone()).collect();
        render::dot(self.capdl.as_ref().unwrap_or(&self.desc), &flagged)
    }
}

/// Inspects a system: `system` is the description's text; `capdl` the spec's JSON, if any;
/// `elf_dir` the directory holding the program images the description names (the microkit
/// tool's search path), to read key slots and tie the spec's image bytes to files.
pub fn inspect(
    system: &str,
    capdl: Option<&[u8]>,
    elf_dir: Option<&Path>,
    opts: Options,
) -> Result<Report, String> {
    let sys = sysdesc::System::parse(system).map_err(|e| format!("system description: {e}"))?;
    let elves = elf_dir.map(|d| model::read_elves(&sys, d));
    let desc = Model::from_description(&sys, elves.as_deref());
    let mut findings = check::check(&desc, opts);
    let capdl = match capdl {
        None => None,
        Some(json) => {
            let spec = capdl::Spec::parse(json).map_err(|e| format!("CapDL spec: {e}"))?;
            let cm = Model::from_capdl(&sys, &spec, elves.as_deref());
            findings.extend(check::check(&cm, opts));
            findings.extend(check::compare(&desc, &cm));
            Some(cm)
        }
    };
    Ok(Report {
        desc,
        capdl,
        findings,
    })
}
