//! Puts the PD linker script on the linker search path of every crate that depends on this one,
//! so a PD binary links with `-C link-arg=-Tmicrokit-pd.ld` (set in `.cargo/config.toml` for
//! `aarch64-unknown-none`), the way `cortex-m-rt` ships `link.x`.

use std::{env, fs, path::PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=microkit-pd.ld");
    let Some(out) = env::var_os("OUT_DIR").map(PathBuf::from) else {
        // Cargo always sets OUT_DIR for build scripts; without it there is nothing to publish.
        return;
    };
    if let Err(e) = fs::copy("microkit-pd.ld", out.join("microkit-pd.ld")) {
        println!("cargo:warning=cannot copy microkit-pd.ld to OUT_DIR: {e}");
        std::process::exit(1);
    }
    println!("cargo:rustc-link-search={}", out.display());
}
