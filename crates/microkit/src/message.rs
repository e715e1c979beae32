//! `seL4_MessageInfo`: the word that travels in x1 with every IPC.

use core::fmt;

use crate::abi::MSG_MAX_LENGTH;

/// A message label: the 52 high bits of a [`MessageInfo`] word.
pub type MessageLabel = u64;
/// The value of one message register.
pub type MessageRegisterValue = u64;

const LENGTH_BITS: u32 = 7;
const EXTRA_CAPS_SHIFT: u32 = 7;
const EXTRA_CAPS_BITS: u32 = 2;
const CAPS_UNWRAPPED_SHIFT: u32 = 9;
const CAPS_UNWRAPPED_BITS: u32 = 3;
const LABEL_SHIFT: u32 = 12;
const LABEL_BITS: u32 = 52;

const fn mask(bits: u32) -> u64 {
    (1 << bits) - 1
}

/// Label and length of an IPC message, packed as seL4 packs it:
/// `label << 12 | caps_unwrapped << 9 | extra_caps << 7 | length`.
///
/// Microkit messages carry no capabilities, so [`MessageInfo::new`] only sets the label and the
/// number of message registers.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Default)]
pub struct MessageInfo(u64);

impl MessageInfo {
    /// A message with `label` and `count` message registers.
    ///
    /// `label` keeps its low [`label_width`](Self::label_width) (52) bits; `count` is clamped to
    /// [`MSG_MAX_LENGTH`] (120), as the kernel clamps a longer length.
    pub const fn new(label: MessageLabel, count: usize) -> Self {
        let count = if count > MSG_MAX_LENGTH {
            MSG_MAX_LENGTH
        } else {
            count
        };
        Self(((label & mask(LABEL_BITS)) << LABEL_SHIFT) | count as u64)
    }

    /// The info word exactly as the kernel passes it.
    pub const fn from_word(word: u64) -> Self {
        Self(word)
    }

    /// The info word to hand to the kernel.
    pub const fn into_word(self) -> u64 {
        self.0
    }

    /// The label of this message.
    pub const fn label(&self) -> MessageLabel {
        self.0 >> LABEL_SHIFT
    }

    /// The number of meaningful bits in a [`MessageLabel`].
    pub const fn label_width() -> usize {
        LABEL_BITS as usize
    }

    /// The number of message registers this message fills (the 7-bit length field; a kernel
    /// never reports more than [`MSG_MAX_LENGTH`], a raw word from elsewhere may).
    pub const fn count(&self) -> usize {
        (self.0 & mask(LENGTH_BITS)) as usize
    }

    /// Number of extra capabilities (always 0 for Microkit messages).
    pub const fn extra_caps(&self) -> usize {
        ((self.0 >> EXTRA_CAPS_SHIFT) & mask(EXTRA_CAPS_BITS)) as usize
    }

    /// Capabilities-unwrapped bitmap (always 0 for Microkit messages).
    pub const fn caps_unwrapped(&self) -> u64 {
        (self.0 >> CAPS_UNWRAPPED_SHIFT) & mask(CAPS_UNWRAPPED_BITS)
    }
}

impl fmt::Debug for MessageInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageInfo")
            .field("label", &self.label())
            .field("count", &self.count())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_like_sel4() {
        // seL4_MessageInfo_new(label=3, caps_unwrapped=0, extra_caps=0, length=2)
        assert_eq!(MessageInfo::new(3, 2).into_word(), (3 << 12) | 2);
        // An IRQAckIRQ invocation in the debug config: label 31, no registers.
        assert_eq!(MessageInfo::new(31, 0).into_word(), 31 << 12);
        assert_eq!(MessageInfo::default().into_word(), 0);
    }

    #[test]
    fn round_trips_fields() {
        let m = MessageInfo::new(0xabc, 7);
        assert_eq!(
            (m.label(), m.count(), m.extra_caps(), m.caps_unwrapped()),
            (0xabc, 7, 0, 0)
        );
        let w = (5 << 12) | (0b101 << 9) | (0b11 << 7) | 9;
        let m = MessageInfo::from_word(w);
        assert_eq!(
            (m.label(), m.caps_unwrapped(), m.extra_caps(), m.count()),
            (5, 0b101, 3, 9)
        );
        assert_eq!(m.into_word(), w);
    }

    #[test]
    fn label_is_52_bits_and_count_is_clamped() {
        let m = MessageInfo::new(u64::MAX, 500);
        assert_eq!(m.label(), (1 << 52) - 1);
        assert_eq!(m.count(), MSG_MAX_LENGTH);
        assert_eq!(MessageInfo::label_width(), 52);
        assert_eq!(MessageInfo::new(1 << 52, 0).label(), 0);
    }

    #[test]
    fn debug_shows_label_and_count() {
        let s = format!("{:?}", MessageInfo::new(9, 1));
        assert_eq!(s, "MessageInfo { label: 9, count: 1 }");
    }
}
