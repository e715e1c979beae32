//! Channels, child PDs and sets of channels.

use core::fmt;

use crate::{abi::MAX_CHANNELS, backend, MessageInfo};

/// One end of a Microkit channel, by this PD's id for it (`<end pd=".." id="N"/>`).
///
/// Ids are per end: the same channel may be 0 here and 5 in the peer.
#[derive(Debug, Copy, Clone, Eq, PartialEq, Ord, PartialOrd, Hash)]
pub struct Channel {
    index: usize,
}

impl Channel {
    /// The channel with id `index`.
    ///
    /// # Panics
    /// If `index` >= 62 (ids 62 and 63 do not exist: those badge bits are flags). Meant for
    /// constants (`const SERVER: Channel = Channel::new(0);`), where this is a compile error.
    pub const fn new(index: usize) -> Self {
        assert!(index < MAX_CHANNELS, "Microkit channel ids are 0..=61");
        Self { index }
    }

    /// The channel with id `index`, or `None` if `index` >= 62.
    pub const fn try_new(index: usize) -> Option<Self> {
        if index < MAX_CHANNELS {
            Some(Self { index })
        } else {
            None
        }
    }

    /// This channel's id.
    pub const fn index(&self) -> usize {
        self.index
    }

    /// Signal the PD at the other end (`microkit_notify`).
    ///
    /// Fails loudly (panics, so the PD stops and the monitor reports it) if system.xml gives
    /// this PD no notification right on this channel: that is a build error, not a runtime one.
    #[track_caller]
    pub fn notify(&self) {
        backend::notify(*self)
    }

    /// Call the PD at the other end and wait for its reply (`microkit_ppcall`). The message
    /// registers set with [`set_mr`](crate::set_mr) go out; the reply's are read with
    /// [`get_mr`](crate::get_mr). The callee must have a strictly higher priority.
    ///
    /// Fails loudly (as [`notify`](Self::notify)) if this PD may not ppcall this channel.
    #[track_caller]
    pub fn pp_call(&self, msg_info: MessageInfo) -> MessageInfo {
        backend::pp_call(*self, msg_info)
    }

    /// Acknowledge the interrupt delivered on this channel (`microkit_irq_ack`).
    ///
    /// Fails loudly (as [`notify`](Self::notify)) if this channel is not an IRQ of this PD;
    /// returns the kernel's error if the acknowledgement itself fails.
    #[track_caller]
    pub fn irq_ack(&self) -> Result<(), IrqAckError> {
        backend::irq_ack(*self)
    }
}

/// The kernel refused an IRQ acknowledgement: `code` is the seL4 error number it returned.
#[derive(Debug, Copy, Clone, PartialEq, Eq)]
pub struct IrqAckError {
    /// The seL4 error (`seL4_Error`) returned in the reply's label.
    pub code: u64,
}

impl fmt::Display for IrqAckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "irq ack error: seL4 error {}", self.code)
    }
}

/// A child PD, by the id its parent gave it (`<protection_domain id="N">`).
#[derive(Debug, Copy, Clone, Eq, PartialEq, Ord, PartialOrd, Hash)]
pub struct Child {
    index: usize,
}

impl Child {
    /// The child with id `index`.
    pub const fn new(index: usize) -> Self {
        Self { index }
    }

    /// This child's id.
    pub const fn index(&self) -> usize {
        self.index
    }
}

/// The channels a notification badge names: seL4 ORs pending signals, so one wake-up may carry
/// several channels.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Default)]
pub struct ChannelSet(u64);

const CHANNEL_BITS: u64 = (1 << MAX_CHANNELS) - 1;

impl ChannelSet {
    /// The set a notification badge names. Bits 62 and 63 are flags, never channels, and are
    /// dropped.
    pub const fn from_badge(badge: u64) -> Self {
        Self(badge & CHANNEL_BITS)
    }

    /// The empty set.
    pub const fn empty() -> Self {
        Self(0)
    }

    /// This set with `channel` added.
    #[must_use]
    pub const fn with(self, channel: Channel) -> Self {
        Self(self.0 | (1 << channel.index))
    }

    /// The badge bits of this set.
    pub const fn bits(&self) -> u64 {
        self.0
    }

    /// Whether `channel` is in the set.
    pub const fn contains(&self, channel: Channel) -> bool {
        self.0 & (1 << channel.index) != 0
    }

    /// Whether the set is empty.
    pub const fn is_empty(&self) -> bool {
        self.0 == 0
    }

    /// The number of channels in the set.
    pub const fn len(&self) -> usize {
        self.0.count_ones() as usize
    }

    /// The channels in the set, lowest id first.
    pub fn iter(&self) -> ChannelSetIter {
        ChannelSetIter(self.0)
    }

    /// A `{0, 3}`-style rendering.
    pub fn display(&self) -> DisplayChannelSet {
        DisplayChannelSet(*self)
    }
}

impl IntoIterator for ChannelSet {
    type Item = Channel;
    type IntoIter = ChannelSetIter;

    fn into_iter(self) -> ChannelSetIter {
        ChannelSetIter(self.0)
    }
}

impl fmt::Debug for ChannelSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChannelSet{}", self.display())
    }
}

/// Iterator over a [`ChannelSet`], lowest id first.
#[derive(Debug, Clone)]
pub struct ChannelSetIter(u64);

impl Iterator for ChannelSetIter {
    type Item = Channel;

    fn next(&mut self) -> Option<Channel> {
        if self.0 == 0 {
            return None;
        }
        let i = self.0.trailing_zeros() as usize;
        self.0 &= self.0 - 1; // clear the lowest set bit
        Some(Channel { index: i })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.0.count_ones() as usize;
        (n, Some(n))
    }
}

impl ExactSizeIterator for ChannelSetIter {}

/// Displays a [`ChannelSet`] as `{0, 3}`.
#[derive(Debug, Clone, Copy)]
pub struct DisplayChannelSet(ChannelSet);

impl fmt::Display for DisplayChannelSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (n, channel) in self.0.iter().enumerate() {
            if n > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}", channel.index())?;
        }
        f.write_str("}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iterates_lowest_first_and_drops_flag_bits() {
        let set = ChannelSet::from_badge((1 << 63) | (1 << 62) | (1 << 61) | (1 << 5) | 1);
        let ids: Vec<usize> = set.iter().map(|c| c.index()).collect();
        assert_eq!(ids, [0, 5, 61]);
        assert_eq!(set.len(), 3);
        assert_eq!(set.iter().len(), 3);
        assert!(set.contains(Channel::new(5)));
        assert!(!set.contains(Channel::new(4)));
        assert_eq!(set.into_iter().count(), 3);
    }

    #[test]
    fn empty_and_builder() {
        assert!(ChannelSet::empty().is_empty());
        assert_eq!(ChannelSet::empty().iter().next(), None);
        let set = ChannelSet::empty()
            .with(Channel::new(2))
            .with(Channel::new(0));
        assert_eq!(set.bits(), 0b101);
        assert_eq!(set.display().to_string(), "{0, 2}");
        assert_eq!(format!("{set:?}"), "ChannelSet{0, 2}");
        assert_eq!(ChannelSet::empty().display().to_string(), "{}");
    }

    #[test]
    fn channel_ids_stop_at_61() {
        assert_eq!(Channel::try_new(61).map(|c| c.index()), Some(61));
        assert_eq!(Channel::try_new(62), None);
        assert_eq!(ChannelSet::from_badge(u64::MAX).len(), 62);
    }

    #[test]
    #[should_panic(expected = "0..=61")]
    fn channel_62_is_refused() {
        let _ = Channel::new(62);
    }

    #[test]
    fn irq_ack_error_displays_code() {
        assert_eq!(
            IrqAckError { code: 3 }.to_string(),
            "irq ack error: seL4 error 3"
        );
    }
}
