//! The runtime's board table (`microkit::abi::board::TABLE`) against the SDK's own files, for
//! every board and configuration in the table: `address_space_constants.json`
//! (`vspace_user_top`), `invocations_all.json` (`IRQAckIRQ`) and the kernel's `gen_config.h`
//! (`CONFIG_EXPORT_PCNT_USER`). Needs an SDK, so it is ignored by `cargo test`; `make image`
//! runs it (`-- --ignored`) with MICROKIT_SDK before packing any image, and a board or
//! configuration the SDK lacks fails it by name.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use microkit::abi::board::TABLE;

/// The number after `"key":` in a flat JSON object (these files hold only numbers).
fn json_number(text: &str, key: &str) -> Option<u64> {
    let at = text.find(&format!("\"{key}\""))?;
    let rest = text[at + key.len() + 2..].trim_start().strip_prefix(':')?;
    let digits: String = rest
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

#[test]
#[ignore = "needs a Microkit SDK: MICROKIT_SDK=... cargo test -p microkit --test sdk_constants -- --ignored"]
fn board_table_is_what_the_sdk_says() {
    let sdk = std::env::var("MICROKIT_SDK").expect("MICROKIT_SDK names the SDK");
    for (board, config, want) in TABLE {
        let dir = format!("{sdk}/board/{}/{config}", board.name());
        let read = |f: &str| {
            std::fs::read_to_string(format!("{dir}/{f}"))
                .unwrap_or_else(|e| panic!("{dir}/{f}: {e} (an SDK without this board?)"))
        };
        let space = read("address_space_constants.json");
        let top = json_number(&space, "vspace_user_top").expect("vspace_user_top");
        assert_eq!(top, want.vspace_user_top, "{dir}: vspace_user_top");
        let inv = read("invocations_all.json");
        let ack = json_number(&inv, "IRQAckIRQ").expect("IRQAckIRQ");
        assert_eq!(ack, want.irq_ack_irq, "{dir}: IRQAckIRQ");
        let config_h = read("include/kernel/gen_config.h");
        let pcnt = config_h
            .lines()
            .any(|l| l.trim() == "#define CONFIG_EXPORT_PCNT_USER  1");
        assert_eq!(
            pcnt, want.export_pcnt_user,
            "{dir}: CONFIG_EXPORT_PCNT_USER"
        );
        println!("{} {config}: as the SDK says", board.name());
    }
}

#[test]
fn the_table_covers_every_board_in_both_configurations() {
    use microkit::abi::board::{lookup, Board};
    for b in [Board::QemuVirtAarch64, Board::Zcu102] {
        for c in ["debug", "release"] {
            let k = lookup(b, c).expect("in the table");
            assert_eq!(k.vspace_user_top & 0xfff, 0xfff, "{b:?} {c}");
        }
    }
    assert_eq!(lookup(Board::Zcu102, "smp-debug"), None);
    // The default build (no board feature) is the default board.
    assert_eq!(microkit::abi::board::BOARD, Board::QemuVirtAarch64);
    assert_eq!(microkit::abi::IPC_BUFFER_ADDR, 0xff_ffff_f000);
}
