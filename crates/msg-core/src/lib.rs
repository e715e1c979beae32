//! What every protocol of protected calls between the Totebox PDs shares, so that each
//! protocol's own crate (`msg-ledger`, `msg-audit`, `msg-psdb`, a new PD's module) is only its
//! labels and registers:
//!
//! - **Label ranges.** Request labels lie in [`REQUEST_LABELS`] (from 1), reply labels in
//!   [`REPLY_LABELS`] (from 0x100), in every protocol, so a reply can never be taken for a
//!   request, nor one protocol's reply for another's request. Every protocol's reply type has
//!   a `NotServing` variant with the one label [`NOT_SERVING`] and no registers: what a PD that
//!   could not start answers to every call ([`Image::Failed`]); callers treat it as
//!   "unavailable".
//! - **The message registers are read and written here and nowhere else.** A message is a
//!   [`Message`]: a label and at most [`MAX_MRS`] register values, a plain value that each
//!   protocol's `encode` builds and `decode` takes apart (host-tested without a kernel).
//!   [`Message::set_mrs`] is the only code of the system's PDs that writes message registers,
//!   [`Message::received`] the only code that reads them (`tests/tests/registers.rs` checks).
//! - **Decoding never panics.** A label that is not the type's (or, for a reply, not one that
//!   answers the request made), a register count other than the label's, or a register value
//!   its field cannot take is a [`DecodeError`], which the receiving PD answers with an error
//!   reply (a callee) or treats as "the peer did not answer" (a caller).
//! - **Fail-closed start-up** ([`Image`]): a PD whose init failed keeps answering every call
//!   [`NOT_SERVING`] instead of stopping, the same code on seL4 and in the simulator.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

use core::fmt;
use core::ops::Range;

use microkit::{Channel, ChannelSet, Child, Handler, MessageInfo};

/// Labels of requests, in every protocol.
pub const REQUEST_LABELS: Range<u64> = 1..0x100;
/// Labels of replies, in every protocol.
pub const REPLY_LABELS: Range<u64> = 0x100..0x200;
/// The one "peer not serving" reply label, shared by every protocol's reply type; the reply
/// carries no registers.
pub const NOT_SERVING: u64 = 0x1FF;

/// Most message registers a message of any protocol here carries (psdb's `Usage` reply: 6).
/// seL4 allows 120; a message longer than this is no message of these protocols, and its
/// decode refuses it by its count.
pub const MAX_MRS: usize = 6;

/// One message of a protected call, as it travels: a [`MessageInfo`] (label and register
/// count) and the values of its registers. The count is at most [`MAX_MRS`] for a message
/// built here; a received one keeps the count the kernel reported, whatever it is, and holds
/// the values of its first `MAX_MRS` registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message {
    info: MessageInfo,
    mrs: [u64; MAX_MRS],
}

impl Message {
    /// A message with `label` and the registers `mrs` (MR0 first). More than [`MAX_MRS`]
    /// registers does not compile.
    pub const fn new<const N: usize>(label: u64, mrs: [u64; N]) -> Message {
        const {
            assert!(
                N <= MAX_MRS,
                "more registers than any protocol here carries"
            )
        };
        let mut words = [0; MAX_MRS];
        let mut i = 0;
        while i < N {
            words[i] = mrs[i];
            i += 1;
        }
        Message {
            info: MessageInfo::new(label, N),
            mrs: words,
        }
    }

    /// Its label and register count.
    pub const fn info(&self) -> MessageInfo {
        self.info
    }

    /// Its label.
    pub const fn label(&self) -> u64 {
        self.info.label()
    }

    /// The values of its registers, MR0 first: as many as its count says, at most
    /// [`MAX_MRS`].
    pub fn mrs(&self) -> &[u64] {
        let n = self.info.count().min(MAX_MRS);
        &self.mrs[..n]
    }

    /// Sets the message registers to this message's (MR0 first) and returns its info: what a
    /// PD passes to [`Channel::pp_call`] or returns from [`Handler::protected`]. The only place
    /// a PD writes message registers.
    pub fn set_mrs(&self) -> MessageInfo {
        for (i, w) in self.mrs().iter().enumerate() {
            microkit::set_mr(i, *w);
        }
        self.info
    }

    /// The message just received with `info` (a protected call's, or the reply a `pp_call`
    /// got): its first `info.count()` registers, at most [`MAX_MRS`] of them. The only place a
    /// PD reads message registers. A register past the count is never read: on seL4 it still
    /// holds whatever the receiver last put there, not anything the sender sent.
    pub fn received(info: MessageInfo) -> Message {
        let mut mrs = [0; MAX_MRS];
        let n = info.count().min(MAX_MRS);
        for (i, w) in mrs.iter_mut().enumerate().take(n) {
            *w = microkit::get_mr(i);
        }
        Message { info, mrs }
    }

    /// Calls the PD at the other end of `channel` with this message; its reply.
    pub fn call(&self, channel: Channel) -> Message {
        Message::received(channel.pp_call(self.set_mrs()))
    }
}

/// Why a received message is not one of its type's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The label is none of the type's (for a reply: none that answers the request made).
    UnknownLabel(u64),
    /// The label's message has `expected` registers; this one has `got`.
    Count {
        /// The message's label.
        label: u64,
        /// Registers the label's message carries.
        expected: usize,
        /// Registers the message carries.
        got: usize,
    },
    /// Register `register` holds a value its field cannot take (a flag other than 0 or 1, a
    /// number past its field's width, a register that must be 0 and is not, figures that
    /// contradict each other).
    Value {
        /// The message's label.
        label: u64,
        /// The register (0 for MR0).
        register: usize,
    },
}

impl DecodeError {
    /// The label of the message that did not decode.
    pub const fn label(&self) -> u64 {
        match *self {
            DecodeError::UnknownLabel(label)
            | DecodeError::Count { label, .. }
            | DecodeError::Value { label, .. } => label,
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DecodeError::UnknownLabel(l) => write!(f, "unknown label {l:#x}"),
            DecodeError::Count {
                label,
                expected,
                got,
            } => write!(
                f,
                "label {label:#x} carries {expected} message registers, not {got}"
            ),
            DecodeError::Value { label, register } => {
                write!(f, "label {label:#x}: MR{register} out of range")
            }
        }
    }
}

/// The `N` registers of a message whose label carries exactly `N`, for a decoder to take its
/// fields from. Every accessor checks; none panics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registers<const N: usize> {
    label: u64,
    words: [u64; N],
}

impl<const N: usize> Registers<N> {
    /// The registers of the message `info`, `mrs` (what [`Message::mrs`] gives): a
    /// [`DecodeError::Count`] unless its count is `N` and `mrs` holds them.
    pub fn of(info: MessageInfo, mrs: &[u64]) -> Result<Self, DecodeError> {
        let label = info.label();
        let count = DecodeError::Count {
            label,
            expected: N,
            got: info.count(),
        };
        if info.count() != N {
            return Err(count);
        }
        let src = mrs.get(..N).ok_or(count)?;
        let mut words = [0; N];
        words.copy_from_slice(src);
        Ok(Registers { label, words })
    }

    fn value(&self, i: usize) -> DecodeError {
        DecodeError::Value {
            label: self.label,
            register: i,
        }
    }

    /// MR`i`, any value.
    pub fn word(&self, i: usize) -> Result<u64, DecodeError> {
        self.words.get(i).copied().ok_or(self.value(i))
    }

    /// MR`i` as a length or an offset.
    pub fn length(&self, i: usize) -> Result<usize, DecodeError> {
        usize::try_from(self.word(i)?).map_err(|_| self.value(i))
    }

    /// MR`i` as a 32-bit number.
    pub fn u32(&self, i: usize) -> Result<u32, DecodeError> {
        u32::try_from(self.word(i)?).map_err(|_| self.value(i))
    }

    /// MR`i` as a flag: 0 or 1, nothing else.
    pub fn flag(&self, i: usize) -> Result<bool, DecodeError> {
        match self.word(i)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(self.value(i)),
        }
    }

    /// Checks that MR`i`, which the label does not use, is 0 (what its encoder writes).
    pub fn zero(&self, i: usize) -> Result<(), DecodeError> {
        match self.word(i)? {
            0 => Ok(()),
            _ => Err(self.value(i)),
        }
    }

    /// A [`DecodeError::Value`] for MR`i` (fields that contradict each other).
    pub fn bad(&self, i: usize) -> DecodeError {
        self.value(i)
    }
}

/// The reply every protocol gives when its PD is not serving: [`NOT_SERVING`], no registers.
pub const NOT_SERVING_REPLY: Message = Message::new(NOT_SERVING, []);

/// What a PD image runs, on seL4 and in the simulator alike: its handler, or, when its init
/// failed, a PD that answers every protected call [`NOT_SERVING`] (no registers), ignores
/// notifications and leaves a faulted child stopped, instead of stopping. So its callers fail
/// their own requests cleanly ("unavailable") and the rest of the system carries on; the PD's
/// start-up prints why on its `|ERROR:` line. `E` is that reason, kept for tests and reports.
#[derive(Debug)]
pub enum Image<H, E> {
    /// Init succeeded: every event goes to the handler.
    Serving(H),
    /// Init failed, for this reason.
    Failed(E),
}

impl<H, E> Image<H, E> {
    /// The handler, if init succeeded.
    pub fn serving(&self) -> Option<&H> {
        match self {
            Image::Serving(h) => Some(h),
            Image::Failed(_) => None,
        }
    }

    /// The handler, if init succeeded.
    pub fn serving_mut(&mut self) -> Option<&mut H> {
        match self {
            Image::Serving(h) => Some(h),
            Image::Failed(_) => None,
        }
    }

    /// Why init failed, if it did.
    pub fn failed(&self) -> Option<&E> {
        match self {
            Image::Serving(_) => None,
            Image::Failed(e) => Some(e),
        }
    }
}

impl<H, E> From<Result<H, E>> for Image<H, E> {
    fn from(started: Result<H, E>) -> Self {
        match started {
            Ok(h) => Image::Serving(h),
            Err(e) => Image::Failed(e),
        }
    }
}

impl<H: Handler, E> Handler for Image<H, E> {
    type Error = H::Error;

    fn notified(&mut self, channels: ChannelSet) -> Result<(), Self::Error> {
        match self {
            Image::Serving(h) => h.notified(channels),
            Image::Failed(_) => Ok(()),
        }
    }

    fn protected(
        &mut self,
        channel: Channel,
        msg_info: MessageInfo,
    ) -> Result<MessageInfo, Self::Error> {
        match self {
            Image::Serving(h) => h.protected(channel, msg_info),
            Image::Failed(_) => Ok(NOT_SERVING_REPLY.set_mrs()),
        }
    }

    fn fault(
        &mut self,
        child: Child,
        msg_info: MessageInfo,
    ) -> Result<Option<MessageInfo>, Self::Error> {
        match self {
            Image::Serving(h) => h.fault(child, msg_info),
            Image::Failed(_) => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use microkit::host::{set_backend, Backend};
    use microkit::IrqAckError;

    use super::*;

    /// A kernel holding one PD's message registers; its peer echoes every call back with the
    /// label plus 0x100.
    struct Kernel {
        mrs: RefCell<[u64; 120]>,
    }

    impl Backend for Kernel {
        fn pd_name(&self) -> &str {
            "test"
        }
        fn notify(&self, _: Channel) {}
        fn pp_call(&self, _: Channel, info: MessageInfo) -> MessageInfo {
            MessageInfo::new(info.label() + 0x100, info.count())
        }
        fn irq_ack(&self, _: Channel) -> Result<(), IrqAckError> {
            Ok(())
        }
        fn get_mr(&self, i: usize) -> u64 {
            self.mrs.borrow()[i]
        }
        fn set_mr(&self, i: usize, v: u64) {
            self.mrs.borrow_mut()[i] = v;
        }
        fn debug_put_str(&self, _: &str) {}
    }

    fn kernel() -> Rc<Kernel> {
        let k = Rc::new(Kernel {
            mrs: RefCell::new([0xdead; 120]),
        });
        set_backend(Some(k.clone()));
        k
    }

    #[test]
    fn registers_are_written_and_read_as_many_as_the_count() {
        let k = kernel();
        let m = Message::new(7, [1, 2, 3]);
        assert_eq!(
            (m.label(), m.info().count(), m.mrs()),
            (7, 3, &[1, 2, 3][..])
        );
        assert_eq!(m.set_mrs(), MessageInfo::new(7, 3));
        assert_eq!(k.mrs.borrow()[..4], [1, 2, 3, 0xdead]);
        // Reading takes the count's registers only, however many the kernel holds.
        let r = Message::received(MessageInfo::new(9, 2));
        assert_eq!(r.mrs(), &[1, 2]);
        // A count past MAX_MRS keeps its count (so decoders refuse it) and reads MAX_MRS.
        let r = Message::received(MessageInfo::new(9, 100));
        assert_eq!((r.info().count(), r.mrs().len()), (100, MAX_MRS));
        // A call sets the registers, then reads the reply's.
        let reply = Message::new(1, [5]).call(Channel::new(0));
        assert_eq!((reply.label(), reply.mrs()), (0x101, &[5][..]));
        set_backend(None);
    }

    #[test]
    fn registers_refuse_other_counts_and_bad_values() {
        let info = MessageInfo::new(4, 3);
        let r = Registers::<3>::of(info, &[5, 2, 1 << 40]).unwrap();
        assert_eq!(
            (r.length(0), r.flag(1), r.u32(2)),
            (
                Ok(5),
                Err(DecodeError::Value {
                    label: 4,
                    register: 1
                }),
                Err(DecodeError::Value {
                    label: 4,
                    register: 2
                })
            )
        );
        assert_eq!(
            r.zero(0),
            Err(DecodeError::Value {
                label: 4,
                register: 0
            })
        );
        // An index past N is an error, not a panic.
        assert_eq!(
            r.word(3),
            Err(DecodeError::Value {
                label: 4,
                register: 3
            })
        );
        for (count, mrs) in [(2, &[5, 2][..]), (4, &[5, 2, 1, 0][..]), (3, &[5, 2][..])] {
            assert_eq!(
                Registers::<3>::of(MessageInfo::new(4, count), mrs),
                Err(DecodeError::Count {
                    label: 4,
                    expected: 3,
                    got: count
                })
            );
        }
        assert_eq!(DecodeError::UnknownLabel(9).label(), 9);
    }

    #[test]
    fn not_serving_is_a_reply_with_no_registers() {
        assert!(REPLY_LABELS.contains(&NOT_SERVING));
        const { assert!(REQUEST_LABELS.end <= REPLY_LABELS.start) };
        assert_eq!(NOT_SERVING_REPLY.info(), MessageInfo::new(NOT_SERVING, 0));
    }

    /// Counts the calls it serves.
    #[derive(Debug, Default)]
    struct Echo(u64);

    impl Handler for Echo {
        type Error = core::convert::Infallible;
        fn protected(&mut self, _: Channel, info: MessageInfo) -> Result<MessageInfo, Self::Error> {
            self.0 += 1;
            Ok(MessageInfo::new(info.label() + 0x100, 0))
        }
    }

    #[test]
    fn a_failed_image_answers_not_serving_a_serving_one_forwards() {
        let k = kernel();
        let mut up: Image<Echo, &str> = Ok(Echo::default()).into();
        assert_eq!(
            up.protected(Channel::new(1), MessageInfo::new(3, 0)),
            Ok(MessageInfo::new(0x103, 0))
        );
        assert_eq!(up.serving().map(|e| e.0), Some(1));
        assert!(up.failed().is_none());
        let mut down: Image<Echo, &str> = Err("no key").into();
        for label in [1, 3, 0x100, u64::MAX] {
            let r = down
                .protected(Channel::new(0), MessageInfo::new(label, 2))
                .unwrap();
            assert_eq!(r, MessageInfo::new(NOT_SERVING, 0));
        }
        assert_eq!(down.notified(ChannelSet::empty()), Ok(()));
        assert_eq!(down.failed(), Some(&"no key"));
        assert!(down.serving_mut().is_none());
        assert_eq!(
            k.mrs.borrow()[0],
            0xdead,
            "a not-serving reply sets no register"
        );
        set_backend(None);
    }
}
